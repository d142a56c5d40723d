package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/hub"
)

// leanSock is a socket built to be held by the ten thousand: widgets. It
// keeps one goroutine while idle, its reader, started fresh after the HTTP
// handler has returned (the handler's grown stack is not kept); writes run on
// a goroutine started only while frames are queued; pings run on a timer;
// and the connection's buffers are small, since widgets send almost nothing
// and receive small frames. It implements hub.Subscriber.
//
// coder/websocket does the upgrade and the reading; every write (data
// frames, pings, pongs, the close frame) is framed here and written to the
// connection by the one writer goroutine, so that a frame fanned out to many
// sockets is framed once and costs one write(2) per socket.
type leanSock struct {
	srv *Server
	c   *websocket.Conn
	raw net.Conn // for write deadlines without a timer per write

	mu sync.Mutex
	// q holds the frames waiting to be written; a writer goroutine runs
	// while writing is true. Guarded by mu.
	q       [][]byte
	writing bool
	// closing is set once a close was asked for; code, reason and drain say
	// how. Guarded by mu.
	closing bool
	code    websocket.StatusCode
	reason  string
	drain   bool

	// ping drives the keepalive: pinged is when the last ping was queued and
	// ponged when the last pong arrived (unix nanoseconds).
	ping   atomic.Pointer[time.Timer]
	pinged atomic.Int64
	ponged atomic.Int64
}

// Buffer sizes of lean sockets: frames to widgets are a few hundred bytes,
// and widgets send only control frames.
const (
	leanReadBuf  = 256
	leanWriteBuf = 1024
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
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	var r io.Reader = conn
	if len(buffered) > 0 {
		r = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn)
	}
	w.raw = conn
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(r, leanReadBuf), bufio.NewWriterSize(conn, leanWriteBuf)), nil
}

// acceptLean upgrades the request to a lean socket.
func (s *Server) acceptLean(w http.ResponseWriter, r *http.Request, opts websocket.AcceptOptions) (*leanSock, error) {
	l := &leanSock{srv: s}
	// Pongs are answered by the writer, not by the library, whose writes
	// would interleave with the writer's.
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
	return l, nil
}

// Send implements hub.Subscriber.
func (l *leanSock) Send(payload []byte) bool {
	frame := textFrame(payload)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return true // being closed anyway; nothing to kick
	}
	if len(l.q) >= l.srv.cfg.SendQueue {
		return false
	}
	l.enqueueLocked(frame)
	return true
}

// sendControl queues a control frame; it does not count against the queue
// limit.
func (l *leanSock) sendControl(frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closing {
		l.enqueueLocked(frame)
	}
}

func (l *leanSock) enqueueLocked(frame []byte) {
	l.q = append(l.q, frame)
	if !l.writing {
		l.writing = true
		go l.writeQueued()
	}
}

// Kick implements hub.Subscriber.
func (l *leanSock) Kick(reason error) {
	l.closeWith(websocket.StatusPolicyViolation, "too slow: send queue full", false)
}

// closeWith closes the socket with code; with drain, after the frames
// already queued. It never blocks.
func (l *leanSock) closeWith(code websocket.StatusCode, reason string, drain bool) {
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
func (l *leanSock) writeQueued() {
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
			l.write(net.Buffers{closeFrame(code, reason)})
			l.c.CloseNow()
			return
		}
		l.mu.Unlock()
		if err := l.write(net.Buffers(batch)); err != nil {
			l.mu.Lock()
			l.closing = true
			l.mu.Unlock()
			l.c.CloseNow()
			return
		}
	}
}

// write writes frames in one writev, bounded by a deadline on the
// connection (a context deadline would arm a timer per write).
func (l *leanSock) write(frames net.Buffers) error {
	l.raw.SetWriteDeadline(time.Now().Add(l.srv.cfg.WriteTimeout))
	_, err := frames.WriteTo(l.raw)
	return err
}

// keepAlive runs on the ping timer. It alternates two steps: queue a ping
// and check back after the pong timeout; then, if no pong came since the
// ping, close the socket, else wait for the next ping.
func (l *leanSock) keepAlive() {
	cfg := l.srv.cfg
	if sent := l.pinged.Load(); sent != 0 {
		l.pinged.Store(0)
		if l.ponged.Load() < sent {
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

// run starts the socket's reader and returns at once. read is called with
// every data frame; the reader ends when the socket closes, and then calls
// done. The server's CloseSockets waits for it.
func (l *leanSock) run(read func(data []byte), done func()) {
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
		for {
			_, data, err := l.c.Read(context.Background())
			if err != nil {
				break
			}
			read(data)
		}
		if t := l.ping.Load(); t != nil {
			t.Stop()
		}
		l.mu.Lock()
		l.closing = true // the peer is gone: nothing more to write
		l.mu.Unlock()
		l.c.CloseNow()
	}()
}

var _ hub.Subscriber = (*leanSock)(nil)
