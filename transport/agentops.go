package transport

import "sync"

// DefaultDeviceOpQueue is the default Config.DeviceOpQueue.
const DefaultDeviceOpQueue = 16

// deviceOps runs one agent device's operations (its hello, set_status,
// activity, background, foreground, subscribe_roster before the session
// started, bye, and the end of its session once the socket closed) one at
// a time, in the order the socket read them, off the socket's reader. An
// operation may wait on NATS for as long as a write takes to ride out a
// stream leader election (hub.WriteRetry), and the reader must go on
// meanwhile: answering pings, taking the peer's close, answering at once
// the frames that need no NATS.
//
// A goroutine runs the queue while it holds operations: the push that finds
// the queue idle starts it, and it ends when it finds the queue empty, so a
// device with nothing to do costs no goroutine here. It counts in the
// server's sockets, so that CloseSockets also waits for the operations of
// sockets already closed; every push comes from the socket's reader, while
// the socket is still counted there, so that count is never zero when the
// goroutine adds itself.
type deviceOps struct {
	srv *Server
	// limit bounds the operations pending (running or waiting); see push.
	limit int

	mu sync.Mutex
	// waiting are the operations not started yet, oldest first; pending
	// counts them and the one running. running says the goroutine runs.
	// Guarded by mu.
	waiting []deviceOp
	pending int
	running bool
}

// deviceOp is one operation of a device.
type deviceOp struct {
	run func()
	// activity marks an activity, which the next one merges into while it
	// waits.
	activity bool
}

// push queues op, unless limit operations are pending already; it reports
// whether op was queued. Forced operations (a bye, the end of the session:
// neither may be lost, and each is the last thing the reader queues) and
// activities are never refused: an activity that finds another waiting
// last in the queue merges into it, so activities pass the bound by one
// at most.
func (q *deviceOps) push(op deviceOp, force bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if op.activity && len(q.waiting) > 0 && q.waiting[len(q.waiting)-1].activity {
		// Two activities in a row are one: both say the person is there
		// now, and an activity takes the time when it runs.
		return true
	}
	if !force && !op.activity && q.pending >= q.limit {
		return false
	}
	q.waiting = append(q.waiting, op)
	q.pending++
	if !q.running {
		q.running = true
		q.srv.sockets.Add(1)
		go q.drain()
	}
	return true
}

// drain is the queue's goroutine: it runs the operations waiting, in
// order, until there are none.
func (q *deviceOps) drain() {
	defer q.srv.sockets.Done()
	for {
		q.mu.Lock()
		if len(q.waiting) == 0 {
			q.waiting, q.running = nil, false
			q.mu.Unlock()
			return
		}
		op := q.waiting[0]
		q.waiting[0] = deviceOp{}
		q.waiting = q.waiting[1:]
		q.mu.Unlock()
		op.run()
		q.mu.Lock()
		q.pending--
		q.mu.Unlock()
	}
}
