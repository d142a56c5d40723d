package wsconn

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultReadLimit    = 32 << 10
	DefaultSendQueue    = 64
	DefaultWriteTimeout = 10 * time.Second
	DefaultPongTimeout  = 10 * time.Second
	DefaultCloseTimeout = 5 * time.Second
)

// readBufSize is the size of a reader goroutine's own read buffer: clients
// send small messages (larger ones, up to the read limit, are read in
// pieces).
const readBufSize = 256

// Options configure connections. One Options may serve many connections
// and must not be changed once one uses it.
type Options struct {
	// OriginPatterns are the Origin host patterns (path.Match syntax,
	// matched case-insensitively against the Origin's host, or against
	// scheme://host when the pattern has "://") allowed besides the
	// request's own host. A request without Origin is not from a web page
	// and is allowed.
	OriginPatterns []string
	// SkipOriginCheck allows any Origin.
	SkipOriginCheck bool
	// ReadLimit is the largest message a client may send, in bytes; a
	// larger one closes the connection with 1009. Zero means
	// DefaultReadLimit.
	ReadLimit int64
	// SendQueue is how many frames may wait for a connection that does not
	// take them; beyond it SendFrame reports false. Zero means
	// DefaultSendQueue.
	SendQueue int
	// WriteTimeout bounds each write that waits for the peer. Zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// PingInterval is how often the connection is pinged; zero disables
	// pings. A connection whose pong is PongTimeout overdue is closed with
	// 1008; zero PongTimeout means DefaultPongTimeout.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// CloseTimeout is how long the peer has to answer our close frame with
	// its own before the connection is closed anyway. Zero means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Poller says how the connection learns it has bytes to read: "" is
	// DefaultPoller (epoll on Linux), PollerGoroutine a reader goroutine
	// per connection, today's path on every system.
	Poller Poller
	// Refuse writes the answer to a request that is not a valid opening
	// handshake (or whose Origin is not allowed): status is the HTTP
	// status, err says why, and the headers that say what is needed
	// (Allow, Upgrade, Sec-WebSocket-Version) are already set. Nil
	// answers with http.Error and err's text.
	Refuse func(w http.ResponseWriter, status int, err error)
}

func (o *Options) readLimit() int64            { return orDefault(o.ReadLimit, DefaultReadLimit) }
func (o *Options) sendQueue() int              { return orDefault(o.SendQueue, DefaultSendQueue) }
func (o *Options) writeTimeout() time.Duration { return orDefault(o.WriteTimeout, DefaultWriteTimeout) }
func (o *Options) pongTimeout() time.Duration  { return orDefault(o.PongTimeout, DefaultPongTimeout) }
func (o *Options) closeTimeout() time.Duration { return orDefault(o.CloseTimeout, DefaultCloseTimeout) }

// orDefault returns v if it is set (positive), else def.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Conn is a server's WebSocket connection after the opening handshake. It
// is the only code that reads or writes the connection. Its methods are safe
// for concurrent use; Run must be called exactly once.
type Conn struct {
	opts *Options
	nc   net.Conn
	// fd is the connection's raw side, and sysfd its descriptor, which
	// frames are written to at once with write(2) (under mu, before which
	// nothing closes it: closeTCPLocked); fd is nil and sysfd -1 when the
	// connection has no file descriptor of its own (TLS), and then every
	// frame goes through the queue and the writer goroutine.
	fd    syscall.RawConn
	sysfd int

	// Used by the reader (the reader goroutine, or the goroutine reading
	// for the poller) only: bytes the client sent with its handshake, read
	// by net/http already; the frame parser; and whether the parser is
	// done, because the peer closed or broke the protocol, so that what
	// comes now is read and dropped.
	early   []byte
	p       parser
	discard bool

	// Served by the poller (epoll_linux.go): poll is the epoll its socket
	// is in, handle and done Run's; set under mu before the socket is
	// added, then read-only. wakes counts
	// the poller's wake-ups not yet served by the goroutine that reads,
	// which runs while it is above zero.
	poll   *epoll
	handle func(MessageType, []byte)
	done   func()
	wakes  atomic.Int32

	// mu guards every write to the connection and the state of closing:
	// nothing is written once our close frame is, and nothing else writes
	// while the writer goroutine does.
	mu sync.Mutex
	// q holds the frames waiting for the writer goroutine, which runs while
	// writing is true; qTail says that q[0] is the rest of a frame written
	// in part, which must go out before anything else. Guarded by mu.
	q       [][]byte
	qTail   bool
	writing bool
	// closing is set once our close frame is written or queued (or the
	// connection is lost): nothing is queued after it. closeSent is set once
	// the close frame is written, peerClosed once the peer's close frame was
	// read, tcpClosed once the connection is closed; failed says we closed
	// because the peer broke the protocol. Guarded by mu.
	closing, closeSent, peerClosed, tcpClosed, failed bool
	// code and reason are those of our close frame; byPeer says the peer
	// closed first and code is its code, echoed. lost is why the connection
	// failed, if it failed before either side closed. Guarded by mu.
	code   StatusCode
	reason string
	byPeer bool
	lost   error
	// closeAt is when the connection is closed if the peer has not
	// answered our close frame (unix nanoseconds, 0 if none). Guarded by
	// mu.
	closeAt int64
	// writers counts the writer goroutine, which the reader goroutine
	// waits for before it reports the connection done. readOver says that
	// the poller's reader has ended while the writer goroutine ran: the
	// writer reports the connection done when it ends (endPolled).
	// readOver is guarded by mu.
	writers  sync.WaitGroup
	readOver bool

	// pingAt is when the keepalive runs next (keepAliveLocked), nextPing
	// when the next ping is due, unanswered when the oldest ping not
	// answered yet went out (unix nanoseconds, 0 if none). Guarded by mu.
	pingAt     int64
	nextPing   int64
	unanswered int64
	// The connection's deadline, the earlier of pingAt and closeAt
	// (deadlines.go): in dq, its poller's queue, when served by the
	// poller, else on timer, its own. dq is set under mu with poll; timer
	// is guarded by mu; dlAt and dlIdx, its place in dq, by dq's mu.
	dq    *deadlineQueue
	timer *time.Timer
	dlAt  int64
	dlIdx int
	// ponged is when the last pong arrived (unix nanoseconds).
	ponged atomic.Int64
}

// newConn returns a Conn over nc, whose first bytes, already read from it,
// are early.
func newConn(nc net.Conn, early []byte, o *Options) *Conn {
	c := &Conn{opts: o, nc: nc, early: early, sysfd: -1, dlIdx: -1}
	c.p.limit = o.readLimit()
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && rc.Control(func(fd uintptr) { c.sysfd = int(fd) }) == nil {
			c.fd = rc
		}
	}
	return c
}

// Run starts serving the connection, from the poller or with a reader
// goroutine (Options.Poller), and its pings, and returns at once. handle is
// called with each data message (data is its to keep), one at a time, until
// the connection is closing; done is called once the connection is closed
// and no goroutine of it runs any more. handle must not wait on anything
// slow: while it runs nothing is read, neither pongs nor the peer's close,
// and a pong not read in time closes the connection (see keepAliveLocked).
func (c *Conn) Run(handle func(typ MessageType, data []byte), done func()) {
	if c.opts.PingInterval > 0 {
		c.mu.Lock()
		c.nextPing = time.Now().Add(c.opts.PingInterval).UnixNano()
		c.pingAt = c.nextPing
		c.mu.Unlock()
	}
	if c.startPolled(handle, done) {
		return
	}
	c.mu.Lock()
	c.rearmLocked()
	c.mu.Unlock()
	go c.read(handle, done)
}

// read is the reader goroutine: it reads until the connection is closed,
// by either side, and feeds what it reads to the parser.
func (c *Conn) read(handle func(MessageType, []byte), done func()) {
	defer done()
	buf := make([]byte, readBufSize)
	b := c.early
	c.early = nil
	for {
		c.consume(b, handle)
		n, err := c.nc.Read(buf)
		b = buf[:n]
		if err != nil {
			c.consume(b, handle)
			c.readEnded(err)
			return
		}
	}
}

// consume parses b and acts on what it finds.
func (c *Conn) consume(b []byte, handle func(MessageType, []byte)) {
	for len(b) > 0 && !c.discard {
		n, ev, fail := c.p.feed(b)
		b = b[n:]
		if fail != nil {
			// The bytes that follow cannot be trusted to be frames: the
			// peer's close, if it sends one, cannot be found. If this was
			// its close frame, it is not sending another.
			c.discard = true
			c.fail(fail.code, fail.reason, c.p.op == opClose && !c.p.inFrame)
			return
		}
		switch ev.kind {
		case evMessage:
			if c.isClosing() {
				continue // the handler is done with this connection
			}
			handle(ev.typ, ev.data)
		case evPing:
			c.sendControl(opPong, ev.data)
		case evPong:
			c.ponged.Store(time.Now().UnixNano())
		case evClose:
			c.discard = true
			c.peerClose(ev.code)
		}
	}
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// readEnded runs when reading failed: the connection is closed, by us or
// the peer. It waits for the writer goroutine.
func (c *Conn) readEnded(err error) {
	c.mu.Lock()
	if !c.closing && !c.peerClosed && c.lost == nil {
		c.lost = fmt.Errorf("failed to read: %w", err)
	}
	c.closing = true
	c.closeTCPLocked()
	c.mu.Unlock()
	c.writers.Wait()
}

// SendText sends payload, which must be valid UTF-8, as one text message.
// It reports false when the send queue is full.
func (c *Conn) SendText(payload []byte) bool { return c.SendFrame(TextFrame(payload)) }

// SendFrame sends frame, as made by TextFrame, which the caller must not
// modify afterwards; one frame may be given to many connections. It never
// blocks: if the connection takes the frame at once it is written now, with
// one write and no goroutine; else it is queued for the writer goroutine.
// It reports false when the queue is full (the peer does not read fast
// enough). A connection that is closing drops the frame and reports true.
func (c *Conn) SendFrame(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return true
	}
	if len(c.q) >= c.opts.sendQueue() {
		return false
	}
	c.writeLocked(frame)
	return true
}

// sendControl sends a control frame unless the connection is closing; it
// does not count against the queue's limit.
func (c *Conn) sendControl(op byte, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.writeLocked(appendFrame(nil, op, payload))
	}
}

// Close closes the connection with code and reason (cut to 123 bytes): the
// frames not written yet are dropped, a close frame goes out, and the
// connection is closed when the peer answers it or after the close timeout.
// It never blocks; the first close wins.
func (c *Conn) Close(code StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason, false)
}

// CloseAfterQueued is Close after the frames already queued are written.
func (c *Conn) CloseAfterQueued(code StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason, true)
}

// fail closes the connection after a protocol failure of the peer; with
// peerClosed, the peer sent a close frame, invalid, and will not send
// another.
func (c *Conn) fail(code StatusCode, reason string, peerClosed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.peerClosed, c.failed = peerClosed, true
	c.closeLocked(code, reason, false)
}

func (c *Conn) closeLocked(code StatusCode, reason string, drain bool) {
	if c.closing {
		return
	}
	c.code, c.reason = code, cutReason(reason)
	c.sendCloseLocked(closeFrame(code, reason), drain)
}

// sendCloseLocked writes or queues our close frame, the last frame of the
// connection: after the queued frames with drain, else after only what is
// needed to finish a frame written in part.
func (c *Conn) sendCloseLocked(frame []byte, drain bool) {
	c.closing = true
	if !drain {
		c.dropQueueLocked()
	}
	c.writeLocked(frame)
	if !c.writing && !c.tcpClosed {
		c.closeSentLocked() // written at once
	}
}

func (c *Conn) dropQueueLocked() {
	if c.qTail {
		c.q = c.q[:1]
	} else {
		c.q = nil
	}
}

// closeSentLocked runs once our close frame is written: the connection is
// closed now if the peer closed already, else when its close frame comes or
// at the close timeout.
func (c *Conn) closeSentLocked() {
	c.closeSent = true
	if c.peerClosed {
		c.closeTCPLocked()
		return
	}
	if c.failed {
		// The peer's close cannot be found in what it sends now. Our end
		// of the stream (FIN) tells it that nothing follows our close
		// frame; it closes its end, and the reader, which drains what it
		// sends until then, sees it. Closing at once instead, with its
		// bytes unread, would reset the connection, and a reset can make
		// the peer's kernel drop our close frame before the peer reads it.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	c.closeAt = time.Now().Add(c.opts.closeTimeout()).UnixNano()
	c.rearmLocked()
}

// peerClose handles the peer's close frame: it is answered with a close
// frame echoing its code (and no reason) unless ours went out first, and
// the connection is closed once ours is written.
func (c *Conn) peerClose(code StatusCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peerClosed = true
	if !c.closing {
		c.code, c.byPeer = code, true
		var frame []byte
		if code == StatusNoStatus {
			frame = appendFrame(nil, opClose, nil)
		} else {
			frame = closeFrame(code, "")
		}
		c.sendCloseLocked(frame, false)
		return
	}
	if c.closeSent {
		c.closeTCPLocked()
	}
	// Else the writer goroutine closes it after our close frame.
}

// closeTCPLocked closes the connection, which ends the reader: a reader
// goroutine's read fails; a connection served by the poller leaves it and
// is woken to find itself closed.
func (c *Conn) closeTCPLocked() {
	if c.tcpClosed {
		return
	}
	c.tcpClosed, c.closing = true, true
	c.q = nil
	c.pingAt, c.closeAt = 0, 0
	c.rearmLocked()
	c.unpollLocked()
	c.nc.Close()
	if c.poll != nil {
		c.readable()
	}
}

// failLocked closes the connection after a write failed.
func (c *Conn) failLocked(err error) {
	if !c.closing && c.lost == nil {
		c.lost = err
	}
	c.closeTCPLocked()
}

// ClosedBecause says why the connection closed, for logs: the close code
// and reason the server sent, the code the client closed with, or how the
// connection failed.
func (c *Conn) ClosedBecause() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.byPeer:
		return fmt.Sprintf("client closed %d", c.code)
	case c.code != 0:
		return fmt.Sprintf("server closed %d: %s", c.code, c.reason)
	case c.lost != nil:
		return c.lost.Error()
	}
	return "connection lost"
}
