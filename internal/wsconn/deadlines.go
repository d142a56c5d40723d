package wsconn

import (
	"sync"
	"time"
)

// deadlineQueue holds the deadlines of many connections (their next ping or
// pong deadline, their close timeout) in one min-heap, behind one runtime
// timer set for the earliest: what a connection served by the poller has
// instead of timers of its own. When the timer fires, the connections whose
// deadline has come are called (onDeadline) one after the other, on the
// timer's goroutine, which then ends.
//
// A heap rather than a timing wheel: the deadlines are exact, whatever the
// intervals configured (the tests use milliseconds, production tens of
// seconds), and moving one costs O(log n), about 14 steps at 10,000
// connections, a few times per ping interval.
type deadlineQueue struct {
	mu sync.Mutex
	// h is the heap, ordered by Conn.dlAt; each Conn's dlIdx is its index
	// in h, -1 when absent. Guarded by mu (with the Conns' dlAt, dlIdx).
	h []*Conn
	// timer fires at armed (unix nanoseconds; 0 when stopped), no later
	// than h[0]'s deadline. Guarded by mu.
	timer *time.Timer
	armed int64
}

// set makes at (unix nanoseconds) c's deadline, or removes c with 0. c's
// mu is held: the order is Conn.mu, then the queue's.
func (q *deadlineQueue) set(c *Conn, at int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case at == 0 && c.dlIdx < 0:
		return
	case at == 0:
		q.remove(c.dlIdx)
	case c.dlIdx < 0:
		c.dlAt, c.dlIdx = at, len(q.h)
		q.h = append(q.h, c)
		q.up(c.dlIdx)
	default:
		c.dlAt = at
		q.fix(c.dlIdx)
	}
	q.armLocked()
}

// armLocked sets the timer for the earliest deadline unless it fires
// before it anyway (fire re-arms it).
func (q *deadlineQueue) armLocked() {
	if len(q.h) == 0 {
		return // a timer that fires finds nothing due
	}
	at := q.h[0].dlAt
	if q.armed != 0 && q.armed <= at {
		return
	}
	q.armed = at
	d := time.Duration(at - time.Now().UnixNano())
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.fire)
		return
	}
	q.timer.Reset(d)
}

// fire runs on the timer: it takes the connections whose deadline has come
// out of the heap, re-arms the timer, and calls them.
func (q *deadlineQueue) fire() {
	now := time.Now().UnixNano()
	var due []*Conn
	q.mu.Lock()
	q.armed = 0
	for len(q.h) > 0 && q.h[0].dlAt <= now {
		due = append(due, q.h[0])
		q.remove(0)
	}
	q.armLocked()
	q.mu.Unlock()
	for _, c := range due {
		c.onDeadline()
	}
}

// stop stops the timer of a queue no connection uses any more.
func (q *deadlineQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer != nil {
		q.timer.Stop()
	}
	q.armed = 0
}

func (q *deadlineQueue) less(i, j int) bool { return q.h[i].dlAt < q.h[j].dlAt }

func (q *deadlineQueue) swap(i, j int) {
	q.h[i], q.h[j] = q.h[j], q.h[i]
	q.h[i].dlIdx, q.h[j].dlIdx = i, j
}

func (q *deadlineQueue) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			return
		}
		q.swap(i, parent)
		i = parent
	}
}

// down moves h[i] down and reports whether it moved.
func (q *deadlineQueue) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(q.h) {
			break
		}
		j := l
		if r := l + 1; r < len(q.h) && q.less(r, l) {
			j = r
		}
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		i = j
	}
	return i > start
}

func (q *deadlineQueue) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q *deadlineQueue) remove(i int) {
	last := len(q.h) - 1
	c := q.h[i]
	if i != last {
		q.swap(i, last)
	}
	q.h[last] = nil
	q.h = q.h[:last]
	if i != last {
		q.fix(i)
	}
	c.dlIdx = -1
}

// rearmLocked sets the connection's one deadline, the earlier of its
// keepalive's (pingAt) and its close timeout (closeAt), in its poller's
// queue, or on its own timer on the goroutine path; none once it is closed.
func (c *Conn) rearmLocked() {
	at := c.pingAt
	if c.closeAt != 0 && (at == 0 || c.closeAt < at) {
		at = c.closeAt
	}
	if c.tcpClosed {
		at = 0
	}
	if c.dq != nil {
		c.dq.set(c, at)
		return
	}
	if at == 0 {
		if c.timer != nil {
			c.timer.Stop()
		}
		return
	}
	d := time.Duration(at - time.Now().UnixNano())
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onDeadline)
		return
	}
	c.timer.Reset(d)
}

// onDeadline runs when the connection's deadline may have come (a timer
// can fire early, or late for a deadline moved since): the close timeout
// closes it; the keepalive pings it or closes it.
func (c *Conn) onDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tcpClosed {
		return
	}
	now := time.Now().UnixNano()
	if c.closeAt != 0 && now >= c.closeAt {
		c.closeTCPLocked()
		return
	}
	if c.pingAt != 0 && now >= c.pingAt {
		c.keepAliveLocked(now)
	}
	c.rearmLocked()
}
