package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// serveAgent serves GET /v1/agent: one agent device. The handler returns
// after the upgrade; the socket's reader goroutine serves the agent.
func (s *Server) serveAgent(w http.ResponseWriter, r *http.Request) {
	l, helloTimer, ok := s.acceptHello(w, r, "agent")
	if !ok {
		return
	}
	a := &agentConn{srv: s, l: l, log: s.log.With("remote", r.RemoteAddr, "client", s.clientAddr(r)), helloTimer: helloTimer,
		limit: rate.NewLimiter(rate.Limit(s.cfg.StatusRate), s.cfg.StatusBurst)}
	l.run(a.read, a.closed)
}

// agentConn is the state of one agent socket. Its fields are used only by
// the socket's reader goroutine.
type agentConn struct {
	srv        *Server
	l          *sock
	log        *slog.Logger
	helloTimer *time.Timer
	expiry     *time.Timer
	sess       *hub.Session
	bye        bool
	ended      bool          // a close is under way: nothing more is read
	limit      *rate.Limiter // set_status per device
}

// read handles one frame from the agent.
func (a *agentConn) read(typ wsconn.MessageType, data []byte) {
	if a.ended {
		return
	}
	a.srv.framesIn.WithLabelValues("agent").Inc()
	switch {
	case typ != wsconn.Text && a.sess == nil:
		a.l.fail(CloseBadHello, protocol.CodeBadRequest, "expected a hello text frame", "")
		a.ended = true
	case typ != wsconn.Text:
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "binary frames are not accepted; send JSON text frames", ""))
	case a.sess == nil:
		a.ended = !a.hello(data)
	default:
		a.ended = !a.handle(data)
	}
}

// closed runs once the socket is closed: a device that did not say bye
// starts its grace period.
func (a *agentConn) closed() {
	a.helloTimer.Stop()
	if a.expiry != nil {
		a.expiry.Stop()
	}
	if a.sess != nil && !a.bye {
		ctx, cancel := context.WithTimeout(context.Background(), a.srv.cfg.WriteTimeout)
		defer cancel()
		if err := a.sess.Close(ctx); err != nil {
			a.log.Warn("failed to start grace for dropped device", "err", err)
		}
	}
	a.log.Debug("agent socket closed", "why", a.l.closedBecause())
}

// opContext bounds one hub operation done for the socket: long enough for
// the hub to retry a write through a NATS stream leader election
// (hub.WriteRetry), so that the person who clicked waits a few seconds
// instead of getting an error; it ends early when the server shuts down.
func (a *agentConn) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.srv.base, max(a.srv.cfg.WriteTimeout, a.srv.hub.WriteRetry()+2*time.Second))
}

// hello handles the first frame; it reports whether the session started.
func (a *agentConn) hello(data []byte) bool {
	m, err := protocol.DecodeClientMessage(data)
	if err != nil {
		a.l.fail(CloseBadHello, protocol.CodeBadRequest, "bad hello: "+err.Error(), "")
		return false
	}
	if m.Type != "hello" {
		a.l.fail(CloseBadHello, protocol.CodeBadRequest, fmt.Sprintf("first message must be hello, got %q", truncate(m.Type, 32)), "")
		return false
	}
	claims, err := a.srv.auth.Verify(m.Token)
	if err != nil {
		a.l.fail(CloseBadHello, protocol.CodeUnauthorized, err.Error(), "")
		return false
	}
	var dev hub.DeviceHello
	if m.Device != nil {
		if m.Device.ID != "" {
			id, err := uuid.Parse(m.Device.ID)
			if err != nil {
				a.l.fail(CloseBadHello, protocol.CodeBadRequest, "bad hello: device.id must be a UUID", "")
				return false
			}
			dev.ID = id.String()
		}
		if m.Device.Kind != "" {
			if dev.Kind, err = presence.ParseDeviceKind(m.Device.Kind); err != nil {
				a.l.fail(CloseBadHello, protocol.CodeBadRequest, "bad hello: "+err.Error(), "")
				return false
			}
		}
	}
	if dev.Kind == "" {
		dev.Kind = presence.Web
	}
	if !a.helloTimer.Stop() {
		return false // the hello came too late; the socket is closing with 4001
	}
	ctx, cancel := a.opContext()
	defer cancel()
	sess, err := a.srv.hub.Connect(ctx, hub.Identity{Site: claims.Site, Agent: claims.Subject, Groups: claims.Groups}, dev, a.l)
	if errors.Is(err, hub.ErrReplaced) {
		a.l.fail(CloseReplaced, protocol.CodeBadRequest, "replaced by a newer session of this device", "")
		return false
	}
	if errors.Is(err, hub.ErrTooManyDevices) {
		a.l.fail(CloseTooManyDevices, protocol.CodeForbidden, "too many devices for this agent; log out on another device first", "")
		return false
	}
	if errors.Is(err, hub.ErrNotReady) {
		a.l.fail(wsconn.StatusTryAgainLater, protocol.CodeInternal, "the hub is still loading; try again", "")
		return false
	}
	if err != nil {
		a.log.Error("failed to start device session", "site", claims.Site, "agent", claims.Subject, "err", err)
		a.l.fail(wsconn.StatusInternalError, protocol.CodeInternal, "failed to start session; try again", "")
		return false
	}
	a.sess = sess
	a.log = a.log.With("site", claims.Site, "agent", claims.Subject, "device", sess.Device(), "session", sess.ID())
	a.log.Debug("agent session started")
	if claims.ExpiresAt != nil {
		a.expiry = time.AfterFunc(time.Until(claims.ExpiresAt.Time), func() {
			a.l.fail(CloseBadHello, protocol.CodeUnauthorized, "token expired", "")
		})
	}
	return true
}

// handle handles one message after hello; it reports whether to keep reading.
func (a *agentConn) handle(data []byte) bool {
	ctx, cancel := a.opContext()
	defer cancel()
	m, err := protocol.DecodeClientMessage(data)
	if err != nil {
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "bad message: "+err.Error(), ""))
		return true
	}
	switch m.Type {
	case "set_status":
		st, err := presence.ParseStatus(m.Status)
		if err != nil {
			a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, err.Error(), m.Ref))
			return true
		}
		if !a.limit.Allow() {
			a.l.SendMessage(protocol.EncodeError(protocol.CodeRateLimited, "too many status changes; slow down", m.Ref))
			return true
		}
		switch err := a.sess.SetStatus(ctx, st, m.Ref); {
		case errors.Is(err, hub.ErrOutcomeUnknown):
			a.log.Warn("status change not confirmed", "err", err)
			a.l.SendMessage(protocol.EncodeError(protocol.CodeUnavailable, "NATS did not confirm the change; it may still apply: a status frame with this ref means it did", m.Ref))
		case err != nil:
			a.log.Error("failed to set status", "err", err)
			a.l.SendMessage(protocol.EncodeError(protocol.CodeInternal, "failed to set status; try again", m.Ref))
		}
	case "activity":
		// Taken at any rate, without an error: the hub writes at most
		// one refresh per agent per quarter of the idle delay.
		a.sess.Activity()
	case "background", "foreground":
		set := a.sess.Background
		if m.Type == "foreground" {
			set = a.sess.Foreground
		}
		switch err := set(ctx); {
		case errors.Is(err, hub.ErrBackgroundOff) || errors.Is(err, hub.ErrNotMobile):
			a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, err.Error(), m.Ref))
		case err != nil:
			a.log.Error("failed to change background mode", "type", m.Type, "err", err)
			a.l.SendMessage(protocol.EncodeError(protocol.CodeInternal, "failed to change background mode; try again", m.Ref))
		}
	case "subscribe_roster":
		a.sess.SubscribeRoster()
	case "bye":
		a.bye = true
		// Only a stored logout is confirmed with 1000: the device would
		// otherwise believe the agent offline while every widget still
		// counts them for the rest of the grace.
		if err := a.sess.Bye(ctx); err != nil { // hub.ErrNotStored
			a.log.Warn("bye not stored", "err", err)
			a.l.closeWith(CloseByeNotStored, "logout not stored; retry", true)
		} else {
			a.l.closeWith(wsconn.StatusNormalClosure, "bye", true)
		}
		return false
	case "hello":
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "already said hello", m.Ref))
	default:
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, fmt.Sprintf("unknown message type %q", truncate(m.Type, 32)), m.Ref))
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// truncateReason keeps a close reason inside the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	return truncate(s, 117)
}
