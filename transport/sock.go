package transport

import (
	"errors"
	"net/http"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/wsconn"
)

// sock is one WebSocket served by the hub: an agent device, a widget or an
// admin stats page. It adapts a wsconn.Conn, which owns the connection and
// the protocol, to hub.Subscriber, and ties it to the server's shutdown.
//
// While idle it costs no goroutine when served by wsconn's poller (epoll, the
// default on Linux), else one, the connection's reader, started fresh after
// the HTTP handler has returned (the handler's grown stack is not kept); see
// package wsconn for how it reads and writes.
type sock struct {
	srv *Server
	c   *wsconn.Conn
}

// socketOptions returns the options of agent and admin sockets, whose
// Origin is checked against cfg.AllowedOrigins, and of widget sockets,
// whose Origin the site's settings decide before the upgrade.
func socketOptions(cfg Config) (hello, widget *wsconn.Options) {
	hello = &wsconn.Options{
		OriginPatterns: cfg.AllowedOrigins,
		ReadLimit:      cfg.MaxMessageBytes,
		SendQueue:      cfg.SendQueue,
		WriteTimeout:   cfg.WriteTimeout,
		PingInterval:   cfg.PingInterval,
		PongTimeout:    cfg.PongTimeout,
		CloseTimeout:   cfg.CloseTimeout,
		Poller:         cfg.Poller,
		Refuse:         refuseHandshake,
	}
	w := *hello
	w.OriginPatterns, w.SkipOriginCheck = nil, true
	return hello, &w
}

// accept upgrades the request to a socket.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, opts *wsconn.Options) (*sock, error) {
	c, err := wsconn.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	return &sock{srv: s, c: c}, nil
}

// Send implements hub.Subscriber: the frame is framed once for all of its
// subscribers.
func (l *sock) Send(f *hub.Frame) bool { return l.c.SendFrame(f.Wire(wsconn.TextFrame)) }

// SendMessage sends one text message to this socket alone; it reports false
// when the socket's queue is full.
func (l *sock) SendMessage(payload []byte) bool { return l.c.SendText(payload) }

// Kick implements hub.Subscriber.
func (l *sock) Kick(reason error) {
	if errors.Is(reason, hub.ErrReplaced) {
		l.closeWith(CloseReplaced, "replaced by a newer session of this device", true)
		return
	}
	if errors.Is(reason, hub.ErrRevoked) {
		l.closeWith(CloseRevoked, "revoked", true)
		return
	}
	l.closeWith(wsconn.StatusPolicyViolation, "too slow: send queue full", false)
}

// closeWith closes the socket with code; with drain, after the frames
// already queued. It never blocks.
func (l *sock) closeWith(code wsconn.StatusCode, reason string, drain bool) {
	if drain {
		l.c.CloseAfterQueued(code, reason)
		return
	}
	l.c.Close(code, reason)
}

// run starts the socket's reader and returns at once. read is called with
// every message, one at a time, on the goroutine that reads, until the
// socket closes; done is called once it is closed. The server's
// CloseSockets waits for it, and closes the socket with 1001 when the
// server shuts down (the socket is in the server's open set until done).
func (l *sock) run(read func(typ wsconn.MessageType, data []byte), done func()) {
	s := l.srv
	s.sockets.Add(1) // the handler's own count is still held, so Wait cannot be past zero
	s.openMu.Lock()
	closeAll := s.closeAll
	if !closeAll {
		s.open[l] = struct{}{}
	}
	s.openMu.Unlock()
	if closeAll {
		l.closeWith(wsconn.StatusGoingAway, "server shutting down", false)
	}
	l.c.Run(read, func() {
		defer s.sockets.Done()
		s.openMu.Lock()
		delete(s.open, l)
		s.openMu.Unlock()
		done()
	})
}

// closedBecause says why the socket closed, for logs.
func (l *sock) closedBecause() string { return l.c.ClosedBecause() }

var _ hub.Subscriber = (*sock)(nil)
