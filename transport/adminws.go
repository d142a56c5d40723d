package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/protocol"
)

// serveAdminStats serves GET /v1/admin[?site=S]: after a hello with an
// admin token (for S, when the URL names it: acceptHello), a stats frame at
// once and every hub.StatsInterval, until the token expires (an
// unauthorized error, then close 4001, as for agent sockets). A pusher
// goroutine sends the stats; the socket's reader starts it and waits for it
// when the socket closes.
func (s *Server) serveAdminStats(w http.ResponseWriter, r *http.Request) {
	l, helloTimer, urlSite, ok := s.acceptHello(w, r, "admin")
	if !ok {
		return
	}
	site := make(chan string, 1)
	done := make(chan struct{})
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		s.pushStats(l, site, done)
	}()
	// Used only by the reader goroutine, and by done once it is over.
	var helloed, ended bool
	var expiry *time.Timer
	l.run(func(_ wsconn.MessageType, data []byte) {
		if ended {
			return
		}
		s.framesIn.WithLabelValues("admin").Inc()
		if helloed {
			l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "the admin socket takes no messages after hello", ""))
			return
		}
		ended = true
		m, err := protocol.DecodeClientMessage(data)
		if err != nil || m.Type != "hello" {
			l.fail(CloseBadHello, protocol.CodeBadRequest, "first message must be a hello", "")
			return
		}
		claims := l.verifyHello(s.auth, m.Token, urlSite)
		if claims == nil {
			return
		}
		if claims.Role != RoleAdmin {
			l.fail(CloseBadHello, protocol.CodeForbidden, "the token's role is not admin", "")
			return
		}
		if !helloTimer.Stop() {
			return // too late: the socket is closing with 4001
		}
		helloed, ended = true, false
		if claims.ExpiresAt != nil {
			expiry = time.AfterFunc(time.Until(claims.ExpiresAt.Time), func() {
				l.fail(CloseBadHello, protocol.CodeUnauthorized, "token expired", "")
			})
		}
		site <- claims.Site
	}, func() {
		helloTimer.Stop()
		if expiry != nil {
			expiry.Stop()
		}
		close(done)
		<-pushed
	})
}

// pushStats sends a stats frame for the site it receives, then one every
// hub.StatsInterval, until done.
func (s *Server) pushStats(ws *sock, siteCh <-chan string, done <-chan struct{}) {
	var site string
	select {
	case site = <-siteCh:
	case <-done:
		return
	}
	s.adminSockets.Add(1)
	defer s.adminSockets.Add(-1)
	ctx, cancel := context.WithCancel(s.base)
	defer cancel()
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
		}
		cancel()
	}()
	t := time.NewTicker(hub.StatsInterval)
	defer t.Stop()
	for {
		b, _ := json.Marshal(s.hub.AdminStats(ctx, site))
		if !ws.SendMessage(b) {
			ws.Kick(hub.ErrSlowSubscriber)
			return
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
