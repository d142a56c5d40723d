package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/hub"
)

// sock is one WebSocket served by the hub: an agent device, a widget or an
// admin stats page. It is built to be held by the ten thousand and to cost
// the hub as little as possible per frame. It implements hub.Subscriber.
//
// While idle it keeps one goroutine, its reader, started fresh after the
// HTTP handler has returned (the handler's grown stack is not kept); pings
// run on a timer; the connection's buffers are small, since clients send
// little and receive small frames.
//
// coder/websocket does the upgrade and the reading; every write (data
// frames, pings, pongs, the close frame) is framed here, so that a frame
// fanned out to many sockets is framed once. A frame handed to an idle
// socket is written at once, without blocking, by the caller (the hub's
// fan-out): one write(2) and no goroutine. Only what the kernel does not
// take at once (a full socket buffer) is queued, and a writer goroutine,
// started for as long as the queue is not empty, writes it with a deadline.
type sock struct {
	srv *Server
	c   *websocket.Conn
	raw net.Conn // for write deadlines without a timer per write
	// fd writes to the connection without blocking; nil when the connection
	// has no file descriptor, and then every frame goes through the queue.
	fd syscall.RawConn

	mu sync.Mutex
	// q holds the frames waiting to be written; a writer goroutine runs
	// while writing is true, and nothing else writes then. Guarded by mu.
	q       [][]byte
	writing bool
	// closing is set once a close was asked for; code, reason and drain say
	// how. Guarded by mu.
	closing bool
	code    websocket.StatusCode
	reason  string
	drain   bool
	// lost is why the connection failed, when it did before a close was
	// asked for (for logs). Guarded by mu.
	lost error

	// ping drives the keepalive: pinged is when the last ping was queued and
	// ponged when the last pong arrived (unix nanoseconds).
	ping   atomic.Pointer[time.Timer]
	pinged atomic.Int64
	ponged atomic.Int64
	// handling is when the reader began handling the message it is on, 0
	// while it reads (unix nanoseconds).
	handling atomic.Int64
}

// Buffer sizes of sockets: frames to clients are a few hundred bytes and are
// written around the library's buffer; clients send small frames (larger
// ones, up to MaxMessageBytes, are read through the buffer in pieces).
const (
	sockReadBuf  = 256
	sockWriteBuf = 1024
)

// smallBuffers wraps a ResponseWriter so that the hijacked connection gets
// small bufio buffers instead of net/http's 4 KiB ones.
type smallBuffers struct {
	http.ResponseWriter
	raw net.Conn
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("transport: response writer cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.raw = conn
	// Bytes the client sent right after its request (a hello in the same
	// packet as the upgrade) may already sit in net/http's buffer. The
	// library resets the reader it is given onto the returned connection, so
	// those bytes must come from the connection itself.
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		conn = &prefixedConn{Conn: conn, r: io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn)}
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, sockReadBuf), bufio.NewWriterSize(w.raw, sockWriteBuf)), nil
}

// prefixedConn is a connection whose first reads return bytes read from it
// earlier.
type prefixedConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// accept upgrades the request to a socket.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, opts websocket.AcceptOptions) (*sock, error) {
	l := &sock{srv: s}
	// Pongs are answered through the socket's own writes, not by the
	// library, whose writes would interleave with them.
	opts.OnPingReceived = func(_ context.Context, payload []byte) bool {
		l.sendControl(appendFrame(nil, opPong, payload))
		return false
	}
	opts.OnPongReceived = func(context.Context, []byte) { l.ponged.Store(time.Now().UnixNano()) }
	sb := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(sb, r, &opts)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(s.cfg.MaxMessageBytes)
	l.c, l.raw = c, sb.raw
	if sc, ok := sb.raw.(syscall.Conn); ok {
		l.fd, _ = sc.SyscallConn()
	}
	return l, nil
}

// Send implements hub.Subscriber: the frame is framed once for all of its
// subscribers.
func (l *sock) Send(f *hub.Frame) bool { return l.sendFramed(f.Wire(textFrame)) }

// SendMessage sends one text message to this socket alone.
func (l *sock) SendMessage(payload []byte) bool { return l.sendFramed(textFrame(payload)) }

// sendFramed queues a framed text frame; it reports false when the queue is
// full.
func (l *sock) sendFramed(frame []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return true // being closed anyway; nothing to kick
	}
	if len(l.q) >= l.srv.cfg.SendQueue {
		return false
	}
	l.writeLocked(frame)
	return true
}

// sendControl sends a control frame; it does not count against the queue
// limit.
func (l *sock) sendControl(frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closing {
		l.writeLocked(frame)
	}
}

// writeLocked writes frame now if nothing is queued before it and the
// kernel takes it; whatever is left is queued for the writer goroutine.
func (l *sock) writeLocked(frame []byte) {
	if !l.writing && l.fd != nil {
		n, err := l.writeNowLocked(frame)
		if err != nil {
			// The peer is gone; the reader sees the closed connection and
			// ends the socket. A connection already closed was closed by the
			// reader, which tells why.
			l.closing, l.q = true, nil
			if !errors.Is(err, net.ErrClosed) {
				l.lost = fmt.Errorf("failed to write: %w", err)
			}
			l.raw.Close()
			return
		}
		if n == len(frame) {
			return
		}
		frame = frame[n:]
	}
	l.q = append(l.q, frame)
	if !l.writing {
		l.writing = true
		go l.writeQueued()
	}
}

// writeNowLocked writes what of b the kernel takes without blocking, and
// reports how much that was.
func (l *sock) writeNowLocked(b []byte) (int, error) {
	var n int
	var werr error
	err := l.fd.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true // never wait for the socket to become writable
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}

// Kick implements hub.Subscriber.
func (l *sock) Kick(reason error) {
	if errors.Is(reason, hub.ErrReplaced) {
		l.closeWith(CloseReplaced, "replaced by a newer session of this device", true)
		return
	}
	l.closeWith(websocket.StatusPolicyViolation, "too slow: send queue full", false)
}

// closeWith closes the socket with code; with drain, after the frames
// already queued. It never blocks.
func (l *sock) closeWith(code websocket.StatusCode, reason string, drain bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return
	}
	l.closing, l.code, l.reason, l.drain = true, code, reason, drain
	if !drain {
		l.q = nil
	}
	if !l.writing {
		l.writing = true
		go l.writeQueued()
	}
}

// writeQueued writes the queue until it is empty, then ends; if a close was
// asked for, it writes the close frame last and closes the connection.
func (l *sock) writeQueued() {
	for {
		l.mu.Lock()
		batch := l.q
		l.q = nil
		if len(batch) == 0 {
			if !l.closing {
				l.writing = false
				l.mu.Unlock()
				return
			}
			code, reason := l.code, l.reason
			l.mu.Unlock()
			if code != 0 {
				l.write(net.Buffers{closeFrame(code, reason)})
			}
			l.c.CloseNow()
			return
		}
		l.mu.Unlock()
		if err := l.write(net.Buffers(batch)); err != nil {
			l.mu.Lock()
			if !l.closing && !errors.Is(err, net.ErrClosed) {
				l.lost = fmt.Errorf("failed to write: %w", err)
			}
			l.closing = true
			l.mu.Unlock()
			l.c.CloseNow()
			return
		}
	}
}

// write writes frames in one writev, bounded by a deadline on the
// connection (a context deadline would arm a timer per write). The deadline
// is cleared after: it would fail the next write made at once, long after.
func (l *sock) write(frames net.Buffers) error {
	l.raw.SetWriteDeadline(time.Now().Add(l.srv.cfg.WriteTimeout))
	if _, err := frames.WriteTo(l.raw); err != nil {
		return err
	}
	return l.raw.SetWriteDeadline(time.Time{})
}

// keepAlive runs on the ping timer. It alternates two steps: queue a ping
// and check back after the pong timeout; then, if no pong came since the
// ping, close the socket, else wait for the next ping.
func (l *sock) keepAlive() {
	cfg := l.srv.cfg
	if sent := l.pinged.Load(); sent != 0 {
		l.pinged.Store(0)
		if l.silentSince(sent) {
			l.closeWith(websocket.StatusPolicyViolation, "no pong in time", false)
			return
		}
		l.ping.Load().Reset(max(cfg.PingInterval-cfg.PongTimeout, time.Millisecond))
		return
	}
	l.pinged.Store(time.Now().UnixNano())
	l.sendControl(appendFrame(nil, opPing, nil))
	l.ping.Load().Reset(cfg.PongTimeout)
}

// silentSince reports whether the peer is to be taken for gone after the
// ping queued at sent (unix nanoseconds): no pong read since, the reader not
// held up, and nothing waiting to be read. A reader busy with one message
// since before the ping (an agent's set_status waiting on a slow NATS) could
// not read the pong, and bytes waiting in the kernel mean the peer is still
// sending while this replica is slow to read (a starved process): neither
// is a reason to drop the peer. Its next ping is checked again.
func (l *sock) silentSince(sent int64) bool {
	if l.ponged.Load() >= sent {
		return false
	}
	if busy := l.handling.Load(); busy != 0 && busy < sent {
		return false
	}
	return l.unreadBytes() == 0
}

// run starts the socket's reader and returns at once. read is called with
// every data frame, on the reader goroutine; the reader ends when the socket
// closes, and then calls done. The server's CloseSockets waits for it.
func (l *sock) run(read func(typ websocket.MessageType, data []byte), done func()) {
	s := l.srv
	s.sockets.Add(1) // the handler's own count is still held, so Wait cannot be past zero
	stopShutdown := context.AfterFunc(s.base, func() {
		l.closeWith(websocket.StatusGoingAway, "server shutting down", false)
	})
	if s.cfg.PingInterval > 0 {
		// Stored before it can fire: keepAlive reads it to re-arm itself.
		t := time.AfterFunc(time.Hour, l.keepAlive)
		l.ping.Store(t)
		t.Reset(s.cfg.PingInterval)
	}
	go func() {
		defer s.sockets.Done()
		defer done()
		defer stopShutdown()
		var err error
		for {
			var typ websocket.MessageType
			var data []byte
			if typ, data, err = l.c.Read(context.Background()); err != nil {
				break
			}
			l.handling.Store(time.Now().UnixNano())
			read(typ, data)
			l.handling.Store(0)
		}
		if t := l.ping.Load(); t != nil {
			t.Stop()
		}
		l.mu.Lock()
		if l.code == 0 && l.lost == nil {
			l.lost = fmt.Errorf("failed to read: %w", err)
		}
		l.closing = true // the peer is gone: nothing more to write
		l.mu.Unlock()
		l.c.CloseNow()
	}()
}

// closedBecause says why the socket closed, for logs: the close code and
// reason the server sent, or how reading ended.
func (l *sock) closedBecause() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.code != 0:
		return fmt.Sprintf("server closed %d: %s", l.code, l.reason)
	case l.lost != nil:
		return l.lost.Error()
	}
	return "connection lost"
}

var _ hub.Subscriber = (*sock)(nil)
