//go:build linux

package wsconn

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPoller is the poller used when Options.Poller is empty: epoll, on
// Linux.
const DefaultPoller = PollerEpoll

const epollAvailable = true

// epoll is an epoll instance that connections' sockets are added to, and
// the one goroutine that waits on it while any socket is. Each socket stays
// registered with Go's own poller as well (a socket may be in several epoll
// sets), so that the writer goroutine's writes still block with a deadline;
// nobody waits for its reads there. An epoll runs from its first socket to
// its last: then its goroutine ends, and the next socket starts a new one.
//
// The goroutine does not block in epoll_wait(2), which would hold an OS
// thread and, until the scheduler takes it back, a P: the epoll instance
// is itself non-blocking and in Go's poller (an epoll fd is readable when
// it has events), so the goroutine parks there like any reader, and calls
// epoll_wait with no timeout only once it is woken.
type epoll struct {
	fd   int      // the epoll instance
	file *os.File // fd, in Go's poller; closed to end the goroutine
	// conns are the connections whose sockets are in the set, by file
	// descriptor. Guarded by pollers.mu.
	conns map[int32]*Conn
	// deadlines hold the pings and close timeouts of its connections.
	deadlines deadlineQueue
}

// pollers holds the running epoll, if any.
var pollers struct {
	mu sync.Mutex
	// cur takes new sockets; nil when no socket is registered. Guarded by
	// mu.
	cur *epoll
}

// pollEvents are the events a socket is registered for, edge-triggered: a
// connection reads until the kernel has nothing more (serveReadable), and
// each new arrival is an edge.
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// startPolled serves the connection from the epoll instead of a reader
// goroutine, and reports whether it does: not for a connection without a
// file descriptor of its own (TLS), nor if the socket cannot be added.
func (c *Conn) startPolled(handle func(MessageType, []byte), done func()) bool {
	if c.opts.poller() != PollerEpoll || c.fd == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tcpClosed {
		return false // the reader goroutine finds it closed and ends at once
	}
	// Set before the socket is added: the poller may wake it at once, and
	// a worker then owns early.
	c.handle, c.done = handle, done
	early := c.early != nil
	p, err := register(c, c.sysfd)
	if err != nil {
		c.handle, c.done = nil, nil
		return false
	}
	c.poll, c.dq = p, &p.deadlines
	if c.timer != nil {
		c.timer.Stop() // a close timeout armed before Run: the queue has it now
	}
	c.rearmLocked()
	// The bytes that came with the handshake are parsed now. Those that
	// came before the socket was added need no wake-up of ours: adding a
	// socket that is readable already reports it.
	if early {
		c.readable()
	}
	return true
}

// register adds fd, c's socket, to the running epoll, starting one if none
// runs.
func register(c *Conn, fd int) (*epoll, error) {
	pollers.mu.Lock()
	defer pollers.mu.Unlock()
	p := pollers.cur
	if p == nil {
		var err error
		if p, err = newEpoll(); err != nil {
			return nil, err
		}
		pollers.cur = p
		go p.run()
	}
	ev := unix.EpollEvent{Events: pollEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(p.fd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.stopIfEmptyLocked()
		return nil, fmt.Errorf("failed to add a socket to epoll: %w", err)
	}
	p.conns[int32(fd)] = c
	return p, nil
}

func newEpoll() (*epoll, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("failed to create an epoll instance: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("failed to make an epoll instance non-blocking: %w", err)
	}
	// A non-blocking descriptor given to os.NewFile goes into Go's poller.
	return &epoll{fd: fd, file: os.NewFile(uintptr(fd), "epoll"), conns: make(map[int32]*Conn)}, nil
}

// unpollLocked takes the connection's socket out of the epoll before it is
// closed (its descriptor's number may then be reused by another socket).
// The connection's mu is held.
func (c *Conn) unpollLocked() {
	p := c.poll
	if p == nil {
		return
	}
	pollers.mu.Lock()
	defer pollers.mu.Unlock()
	unix.EpollCtl(p.fd, unix.EPOLL_CTL_DEL, c.sysfd, nil)
	delete(p.conns, int32(c.sysfd))
	p.stopIfEmptyLocked()
}

// stopIfEmptyLocked ends the epoll's goroutine once it has no socket left;
// the next socket starts another. pollers.mu is held. Closing the file wakes
// the goroutine (and waits, briefly, for an epoll_wait under way).
func (p *epoll) stopIfEmptyLocked() {
	if len(p.conns) > 0 || pollers.cur != p {
		return
	}
	pollers.cur = nil
	p.file.Close()
}

// run is the epoll's goroutine: it waits for readiness and wakes each
// ready connection, until stopIfEmptyLocked says it is done.
func (p *epoll) run() {
	defer p.deadlines.stop()
	rc, err := p.file.SyscallConn()
	if err != nil {
		panic(fmt.Sprintf("failed to get the epoll's raw descriptor: %v", err))
	}
	events := make([]unix.EpollEvent, 256)
	ready := make([]*Conn, 0, len(events))
	for {
		var n int
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			// With nothing ready, park in Go's poller until there is.
			return n > 0 || (werr != nil && werr != unix.EINTR)
		})
		if err != nil {
			return // closed: no socket left (stopIfEmptyLocked)
		}
		if werr != nil {
			// Cannot happen with a valid instance and buffer; the sockets
			// would be stranded, so fail loudly.
			panic(fmt.Sprintf("failed to wait on epoll: %v", werr))
		}
		pollers.mu.Lock()
		for _, ev := range events[:n] {
			if c := p.conns[ev.Fd]; c != nil {
				ready = append(ready, c)
			}
		}
		pollers.mu.Unlock()
		for i, c := range ready {
			c.readable()
			ready[i] = nil
		}
		ready = ready[:0]
	}
}

// endPolled ends a connection served by the poller once reading failed,
// which closes it: done is called now, unless the writer goroutine runs,
// which then calls it as it ends (doneAfterWriterLocked): a worker never
// waits for a writer (closing the connection ends its write soon, not at
// once).
func (c *Conn) endPolled(err error) {
	c.mu.Lock()
	if !c.closing && !c.peerClosed && c.lost == nil {
		c.lost = fmt.Errorf("failed to read: %w", err)
	}
	c.closing = true
	c.closeTCPLocked()
	c.readOver = true
	writing, done := c.writing, c.done
	c.mu.Unlock()
	if !writing {
		done()
	}
}

// readable runs when the poller says the socket has bytes (or was closed),
// and when the connection must notice that it is closed: unless a worker
// reads the connection already (it then reads again), it queues the
// connection for the workers, and starts one if none waits and fewer than
// maxWorkers run.
func (c *Conn) readable() {
	if c.wakes.Add(1) != 1 {
		return
	}
	select {
	case ready <- c:
	default:
		go c.serveReadable() // the queue is full: a goroutine of its own
		return
	}
	if workers.idle.Load() > 0 {
		return
	}
	workers.mu.Lock()
	start := workers.n < maxWorkers
	if start {
		workers.n++
	}
	workers.mu.Unlock()
	if start {
		go work()
	}
}

// ready holds the connections the poller woke, for the workers.
var ready = make(chan *Conn, 1<<14)

// workers counts the goroutines that read for the poller, at most
// maxWorkers: a burst of sockets ready at once (10,000 closing) is read by
// a few goroutines, not as many, each growing a fresh stack. Handlers do
// not wait (see Run), and a connection's end does not wait for its writer
// (endPolled), so a few are enough.
var workers struct {
	mu sync.Mutex
	// n is how many run. Guarded by mu: a worker ends only with the queue
	// empty, under mu, so a connection queued finds a worker running or
	// starts one (readable).
	n int
	// idle is how many wait for a connection.
	idle atomic.Int32
}

// maxWorkers bounds the workers.
var maxWorkers = max(16, 4*runtime.GOMAXPROCS(0))

// workerLinger is how long a worker waits for another connection to read
// before it ends. Under steady traffic a few workers serve every socket,
// with their stacks grown already (a fresh goroutine per wake-up grew its
// stack for the agent's handler every time, ~3% of the agent path's CPU);
// with no traffic, none runs. Short: goleak, in every package's tests,
// waits about 0.4 s for goroutines to end.
const workerLinger = 50 * time.Millisecond

// work is a worker: it reads the connections queued, and ends after
// workerLinger without one.
func work() {
	linger := time.NewTimer(workerLinger)
	for {
		workers.idle.Add(1)
		select {
		case c := <-ready:
			workers.idle.Add(-1)
			c.serveReadable()
			linger.Reset(workerLinger)
		case <-linger.C:
			workers.idle.Add(-1)
			workers.mu.Lock()
			if len(ready) > 0 {
				workers.mu.Unlock()
				linger.Reset(workerLinger)
				continue
			}
			workers.n--
			workers.mu.Unlock()
			return
		}
	}
}

// serveReadable reads what the kernel holds for the socket, until it would
// block, feeds the parser, then ends: the connection is idle again, with no
// goroutine. A wake-up that came while it read makes it read once more, so
// no edge is missed. Once the connection is closed it ends it (readEnded)
// and calls done; wakes then stays above zero, so nothing runs again.
func (c *Conn) serveReadable() {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		seen := c.wakes.Load()
		if b := c.early; b != nil {
			c.early = nil
			c.consume(b, c.handle)
		}
		for {
			n, err := c.readNow(buf)
			if n > 0 {
				c.consume(buf[:n], c.handle)
			}
			if err == errWouldBlock {
				break
			}
			if err != nil {
				c.endPolled(err)
				return
			}
		}
		if c.wakes.CompareAndSwap(seen, 0) {
			return
		}
	}
}

var errWouldBlock = errors.New("read would block")

// readNow reads what the kernel holds for the socket, without blocking:
// errWouldBlock if nothing, io.EOF once the peer closed its end.
func (c *Conn) readNow(buf []byte) (int, error) {
	var n int
	var rerr error
	err := c.fd.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), buf)
			if rerr != syscall.EINTR {
				return true // never wait: the epoll says when to read again
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
