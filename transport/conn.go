package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/hub"
)

// Close codes beyond the standard ones; see docs/protocol.md.
const (
	// CloseBadHello: no hello in time, a bad hello, or a bad or expired token.
	CloseBadHello websocket.StatusCode = 4001
	// CloseReplaced: the same device connected again; the newer session won.
	CloseReplaced websocket.StatusCode = 4002
	// CloseTooManyDevices: the agent already has the most live devices allowed.
	CloseTooManyDevices websocket.StatusCode = 4003
)

// wsConn is one WebSocket with a bounded send queue. It implements
// hub.Subscriber: Send never blocks, and a full queue gets the socket closed
// with 1008 instead of delaying anyone else.
//
// Two goroutines serve it, both owned by serve: the caller's, which writes
// the queue to the socket, and a reader that serve starts and waits for.
type wsConn struct {
	c            *websocket.Conn
	q            chan []byte
	writeTimeout time.Duration
	pingEvery    time.Duration // 0: no pings
	pongTimeout  time.Duration

	closeOnce sync.Once
	closing   chan struct{} // closed by closeWith
	// code, reason and drain are set once, before closing is closed.
	code   websocket.StatusCode
	reason string
	drain  bool // write what is queued before the close frame
}

func (s *Server) newWSConn(c *websocket.Conn) *wsConn {
	return &wsConn{
		c:            c,
		q:            make(chan []byte, s.cfg.SendQueue),
		writeTimeout: s.cfg.WriteTimeout,
		pingEvery:    s.cfg.PingInterval,
		pongTimeout:  s.cfg.PongTimeout,
		closing:      make(chan struct{}),
	}
}

// Send implements hub.Subscriber.
func (w *wsConn) Send(frame []byte) bool {
	select {
	case w.q <- frame:
		return true
	default:
		return false
	}
}

// Kick implements hub.Subscriber.
func (w *wsConn) Kick(reason error) {
	if errors.Is(reason, hub.ErrReplaced) {
		w.closeWith(CloseReplaced, "replaced by a newer session of this device", true)
		return
	}
	w.closeWith(websocket.StatusPolicyViolation, "too slow: send queue full", false)
}

// closeWith asks the writer to close the socket; it never blocks. The first
// call wins. With drain, frames already queued are written first, so that an
// error frame reaches the peer before the close frame.
func (w *wsConn) closeWith(code websocket.StatusCode, reason string, drain bool) {
	w.closeOnce.Do(func() {
		w.code, w.reason, w.drain = code, reason, drain
		close(w.closing)
	})
}

// serve runs read on its own goroutine, and a pinger on another, and writes
// the queue until the socket closes, ctx is done (close 1001) or closeWith is
// called. It returns once all of them are done.
func (w *wsConn) serve(ctx context.Context, read func()) {
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		read()
	}()
	defer func() { <-readDone }()
	if w.pingEvery > 0 {
		stopPings := make(chan struct{})
		pingDone := make(chan struct{})
		go func() {
			defer close(pingDone)
			w.pingLoop(stopPings)
		}()
		defer func() {
			close(stopPings)
			<-pingDone
		}()
	}
	for {
		select {
		case frame := <-w.q:
			if err := w.write(frame); err != nil {
				w.c.CloseNow()
				return
			}
		case <-w.closing:
			w.closeAsAsked()
			return
		case <-readDone:
			// The reader may have asked for a close just before returning
			// (a refused hello, bye): that close wins.
			select {
			case <-w.closing:
				w.closeAsAsked()
				return
			default:
			}
			// The peer closed or the read failed; the library has already
			// sent whatever close frame applies (1009 for oversized frames).
			w.c.CloseNow()
			return
		case <-ctx.Done():
			w.c.Close(websocket.StatusGoingAway, "server shutting down")
			return
		}
	}
}

// pingLoop pings the peer every pingEvery and closes the socket when a pong
// does not come back within pongTimeout: a peer that vanished without closing
// (a phone that lost its network) must not keep its device live.
func (w *wsConn) pingLoop(stop <-chan struct{}) {
	t := time.NewTicker(w.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.pongTimeout)
		err := w.c.Ping(ctx)
		cancel()
		if err != nil {
			w.closeWith(websocket.StatusPolicyViolation, "no pong in time", false)
			return
		}
	}
}

// closeAsAsked closes the socket with the code closeWith was given.
func (w *wsConn) closeAsAsked() {
	if w.drain {
		w.flush()
	}
	w.c.Close(w.code, w.reason)
}

func (w *wsConn) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.writeTimeout)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, frame)
}

// flush writes what is queued now, without waiting for more.
func (w *wsConn) flush() {
	for {
		select {
		case frame := <-w.q:
			if w.write(frame) != nil {
				return
			}
		default:
			return
		}
	}
}

// acceptHello upgrades an agent or admin socket: Origin checked against the
// allowed patterns, the frame size limited, and a timer that closes the
// socket with 4001, after an error frame, unless the caller stops it once a
// good hello arrives.
func (s *Server) acceptHello(w http.ResponseWriter, r *http.Request, kind string) (*wsConn, *time.Timer, bool) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		s.log.Debug(kind+" upgrade refused", "remote", r.RemoteAddr, "err", err)
		return nil, nil, false
	}
	c.SetReadLimit(s.cfg.MaxMessageBytes)
	ws := s.newWSConn(c)
	timer := time.AfterFunc(s.cfg.HelloTimeout, func() {
		msg := fmt.Sprintf("no hello within %v", s.cfg.HelloTimeout)
		ws.Send(encodeError(CodeBadRequest, msg, ""))
		ws.closeWith(CloseBadHello, msg, true)
	})
	return ws, timer, true
}
