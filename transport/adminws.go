package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/presencehub/presencehub/hub"
)

// serveAdminStats serves GET /v1/admin: after a hello with an admin token,
// a stats frame at once and every hub.StatsInterval.
func (s *Server) serveAdminStats(w http.ResponseWriter, r *http.Request) {
	ws, helloTimer, ok := s.acceptHello(w, r, "admin")
	if !ok {
		return
	}
	defer helloTimer.Stop()
	c := ws.c

	site := make(chan string, 1)
	done := make(chan struct{})
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		s.pushStats(ws, site, done)
	}()
	defer func() {
		close(done)
		<-pushed
	}()
	ws.serve(s.base, func() {
		_, data, err := c.Read(context.Background())
		if err != nil {
			return
		}
		s.framesIn.WithLabelValues("admin").Inc()
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Type != "hello" {
			ws.Send(encodeError(CodeBadRequest, "first message must be a hello", ""))
			ws.closeWith(CloseBadHello, "first message must be a hello", true)
			return
		}
		claims, err := s.auth.Verify(m.Token)
		if err != nil {
			ws.Send(encodeError(CodeUnauthorized, err.Error(), ""))
			ws.closeWith(CloseBadHello, truncateReason(err.Error()), true)
			return
		}
		if claims.Role != RoleAdmin {
			ws.Send(encodeError(CodeForbidden, "the token's role is not admin", ""))
			ws.closeWith(CloseBadHello, "the token's role is not admin", true)
			return
		}
		if !helloTimer.Stop() {
			return
		}
		site <- claims.Site
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
			ws.Send(encodeError(CodeBadRequest, "the admin socket takes no messages after hello", ""))
		}
	})
}

// pushStats sends a stats frame for the site it receives, then one every
// hub.StatsInterval, until done.
func (s *Server) pushStats(ws *wsConn, siteCh <-chan string, done <-chan struct{}) {
	var site string
	select {
	case site = <-siteCh:
	case <-done:
		return
	}
	release := s.hub.AddAdmin()
	defer release()
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
		if !ws.Send(b) {
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
