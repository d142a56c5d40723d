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

	ping *time.Timer
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
func (s *Server) acceptLean(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*leanSock, error) {
	sb := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(sb, r, opts)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(s.cfg.MaxMessageBytes)
	return &leanSock{srv: s, c: c, raw: sb.raw}, nil
}

// Send implements hub.Subscriber.
func (l *leanSock) Send(frame []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return true // being closed anyway; nothing to kick
	}
	if len(l.q) >= l.srv.cfg.SendQueue {
		return false
	}
	l.q = append(l.q, frame)
	if !l.writing {
		l.writing = true
		go l.writeQueued()
	}
	return true
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
// asked for, it closes the socket last.
func (l *leanSock) writeQueued() {
	for {
		l.mu.Lock()
		if len(l.q) == 0 {
			if !l.closing {
				l.writing = false
				l.mu.Unlock()
				return
			}
			code, reason := l.code, l.reason
			l.mu.Unlock()
			l.raw.SetWriteDeadline(time.Now().Add(l.srv.cfg.WriteTimeout))
			l.c.Close(code, reason)
			return
		}
		frame := l.q[0]
		l.q[0] = nil
		l.q = l.q[1:]
		l.mu.Unlock()
		// A deadline on the connection bounds the write without the timer a
		// context deadline would arm per write; it is cleared afterwards so
		// that the pings' own writes are not cut short by it.
		l.raw.SetWriteDeadline(time.Now().Add(l.srv.cfg.WriteTimeout))
		err := l.c.Write(context.Background(), websocket.MessageText, frame)
		l.raw.SetWriteDeadline(time.Time{})
		if err != nil {
			l.mu.Lock()
			l.closing, l.q = true, nil
			l.mu.Unlock()
			l.c.CloseNow()
			return
		}
	}
}

// pingPeer runs on the ping timer: it pings and re-arms, or closes the
// socket when no pong comes back in time.
func (l *leanSock) pingPeer() {
	ctx, cancel := context.WithTimeout(context.Background(), l.srv.cfg.PongTimeout)
	defer cancel()
	if err := l.c.Ping(ctx); err != nil {
		l.closeWith(websocket.StatusPolicyViolation, "no pong in time", false)
		return
	}
	l.ping.Reset(l.srv.cfg.PingInterval)
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
		l.ping = time.AfterFunc(s.cfg.PingInterval, l.pingPeer)
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
		if l.ping != nil {
			l.ping.Stop()
		}
		l.mu.Lock()
		if !l.closing {
			l.closing, l.q = true, nil
		}
		l.mu.Unlock()
		l.c.CloseNow()
	}()
}

var _ hub.Subscriber = (*leanSock)(nil)
