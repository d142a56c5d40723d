package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// serveAgent serves GET /v1/agent[?site=S]: one agent device (a URL that
// names a site takes only tokens for it: acceptHello). The handler returns
// after the upgrade; the socket's reader goroutine reads what the agent
// sends, and its operations run on the device's queue (agentops.go).
func (s *Server) serveAgent(w http.ResponseWriter, r *http.Request) {
	l, helloTimer, site, ok := s.acceptHello(w, r, "agent")
	if !ok {
		return
	}
	a := &agentConn{srv: s, l: l, log: s.log.With("remote", r.RemoteAddr, "client", s.clientAddr(r)), helloTimer: helloTimer, urlSite: site,
		limit: rate.NewLimiter(rate.Limit(s.cfg.StatusRate), s.cfg.StatusBurst)}
	a.ops = deviceOps{srv: s, limit: s.cfg.DeviceOpQueue}
	l.run(a.read, a.closed)
}

// agentConn is the state of one agent socket.
type agentConn struct {
	srv        *Server
	l          *sock
	log        *slog.Logger
	helloTimer *time.Timer
	urlSite    string // the site the URL names, "" for none: the token's must be it
	ops        deviceOps

	// Used by the socket's reader goroutine only.
	helloed bool          // a good hello was read and its session queued
	bye     bool          // a bye was queued
	ended   bool          // nothing more is read: a close is under way, or a bye queued
	limit   *rate.Limiter // set_status per device

	// live is the session once started, for what the reader answers at
	// once (subscribe_roster).
	live atomic.Pointer[hub.Session]

	// Used by the device's operations only, which run one at a time.
	sess    *hub.Session
	sessLog *slog.Logger
	expiry  *time.Timer
}

// read handles one frame from the agent. It never waits for NATS: what does
// is queued on the device's operations.
func (a *agentConn) read(typ wsconn.MessageType, data []byte) {
	if a.ended {
		return
	}
	a.srv.framesIn.WithLabelValues("agent").Inc()
	switch {
	case typ != wsconn.Text && !a.helloed:
		a.l.fail(CloseBadHello, protocol.CodeBadRequest, "expected a hello text frame", "")
		a.ended = true
	case typ != wsconn.Text:
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "binary frames are not accepted; send JSON text frames", ""))
	case !a.helloed:
		a.ended = !a.hello(data)
	default:
		a.ended = !a.handle(data)
	}
}

// closed runs on the reader once the socket is closed. The end of the
// session is queued behind the operations still pending, which run first
// (their contexts end if the server shuts down), and it does not hold up
// the reader: a device that did not say bye starts its grace period then.
func (a *agentConn) closed() {
	a.helloTimer.Stop()
	if a.helloed {
		bye := a.bye
		a.ops.push(deviceOp{run: func() { a.end(bye) }}, true)
	}
	a.log.Debug("agent socket closed", "why", a.l.closedBecause())
}

// end is the last operation of a device whose hello was read.
func (a *agentConn) end(bye bool) {
	if a.expiry != nil {
		a.expiry.Stop()
	}
	if a.sess == nil || bye {
		return
	}
	// Not the server's context: a shutdown ends sessions as drops, whose
	// grace must start.
	ctx, cancel := context.WithTimeout(context.Background(), a.srv.cfg.WriteTimeout)
	defer cancel()
	if err := a.sess.Close(ctx); err != nil {
		a.sessLog.Warn("failed to start grace for dropped device", "err", err)
	}
}

// opContext bounds one hub operation done for the socket: long enough for
// the hub to retry a write through a NATS stream leader election
// (hub.WriteRetry), so that the person who clicked waits a few seconds
// instead of getting an error; it ends early when the server shuts down.
// An operation's time starts when it runs, not when it is queued.
func (a *agentConn) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.srv.base, max(a.srv.cfg.WriteTimeout, a.srv.hub.WriteRetry()+2*time.Second))
}

// hello checks the first frame and queues the start of the session; it
// reports whether to keep reading.
func (a *agentConn) hello(data []byte) bool {
	m, err := protocol.DecodeClientMessage(data)
	if err != nil {
		a.l.fail(CloseBadHello, protocol.CodeBadRequest, "bad hello: "+err.Error(), "")
		return false
	}
	if m.Type != "hello" {
		a.l.fail(CloseBadHello, protocol.CodeBadRequest, fmt.Sprintf("first message must be hello, got %q", protocol.Truncate(m.Type, 32)), "")
		return false
	}
	claims := a.l.verifyHello(a.srv.auth, m.Token, a.urlSite)
	if claims == nil {
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
	a.helloed = true
	a.ops.push(deviceOp{run: func() { a.connect(claims, dev) }}, true)
	return true
}

// connect starts the device's session: the first operation.
func (a *agentConn) connect(claims *Claims, dev hub.DeviceHello) {
	ctx, cancel := a.opContext()
	defer cancel()
	sess, err := a.srv.hub.Connect(ctx, hub.Identity{Site: claims.Site, Agent: claims.Subject, Groups: claims.Groups}, dev, a.l)
	if errors.Is(err, hub.ErrReplaced) {
		a.l.fail(CloseReplaced, protocol.CodeBadRequest, "replaced by a newer session of this device", "")
		return
	}
	if errors.Is(err, hub.ErrTooManyDevices) {
		a.l.fail(CloseTooManyDevices, protocol.CodeForbidden, "too many devices for this agent; log out on another device first", "")
		return
	}
	if errors.Is(err, hub.ErrNotReady) {
		a.l.fail(wsconn.StatusTryAgainLater, protocol.CodeInternal, "the hub is still loading; try again", "")
		return
	}
	if err != nil {
		a.log.Error("failed to start device session", "site", claims.Site, "agent", claims.Subject, "err", err)
		a.l.fail(wsconn.StatusInternalError, protocol.CodeInternal, "failed to start session; try again", "")
		return
	}
	a.sess = sess
	a.live.Store(sess)
	a.sessLog = a.log.With("site", claims.Site, "agent", claims.Subject, "device", sess.Device(), "session", sess.ID())
	a.sessLog.Debug("agent session started")
	if claims.ExpiresAt != nil {
		a.expiry = time.AfterFunc(time.Until(claims.ExpiresAt.Time), func() {
			a.l.fail(CloseBadHello, protocol.CodeUnauthorized, "token expired", "")
		})
	}
}

// handle handles one message after hello; it reports whether to keep
// reading. What needs no NATS is answered at once; the rest is queued.
func (a *agentConn) handle(data []byte) bool {
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
		a.queue(m.Ref, func(ctx context.Context) { a.setStatus(ctx, st, m.Ref) })
	case "activity":
		// Taken at any rate, without an error, and never refused (see
		// deviceOps.push): the hub writes at most one refresh per agent
		// per quarter of the idle delay.
		a.ops.push(deviceOp{run: a.withSession(func(context.Context) { a.sess.Activity() }), activity: true}, false)
	case "background", "foreground":
		a.queue(m.Ref, func(ctx context.Context) { a.setBackground(ctx, m.Type == "background", m.Ref) })
	case "subscribe_roster":
		if sess := a.live.Load(); sess != nil {
			sess.SubscribeRoster()
		} else {
			a.queue(m.Ref, func(context.Context) { a.sess.SubscribeRoster() }) // after the hello's session starts
		}
	case "bye":
		a.bye = true
		a.ops.push(deviceOp{run: a.withSession(a.sayBye)}, true)
		return false
	case "hello":
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "already said hello", m.Ref))
	default:
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, fmt.Sprintf("unknown message type %q", protocol.Truncate(m.Type, 32)), m.Ref))
	}
	return true
}

// queue queues an operation of the message with ref; a device whose queue
// is full gets a rate_limited error with the ref instead.
func (a *agentConn) queue(ref string, op func(ctx context.Context)) {
	if !a.ops.push(deviceOp{run: a.withSession(op)}, false) {
		a.l.SendMessage(protocol.EncodeError(protocol.CodeRateLimited, "too many operations waiting for this device; wait for their answers", ref))
	}
}

// withSession returns op as an operation that runs with its own context,
// and not at all if the session did not start (its socket is closing).
func (a *agentConn) withSession(op func(ctx context.Context)) func() {
	return func() {
		if a.sess == nil {
			return
		}
		ctx, cancel := a.opContext()
		defer cancel()
		op(ctx)
	}
}

func (a *agentConn) setStatus(ctx context.Context, st presence.Status, ref string) {
	switch err := a.sess.SetStatus(ctx, st, ref); {
	case errors.Is(err, hub.ErrOutcomeUnknown) || errors.Is(err, hub.ErrUnavailable):
		a.sessLog.Warn("status change not confirmed", "err", err)
		a.l.SendMessage(protocol.EncodeError(protocol.CodeUnavailable, "NATS did not confirm the change; it may still apply: a status frame with this ref means it did", ref))
	case err != nil:
		a.sessLog.Error("failed to set status", "err", err)
		a.l.SendMessage(protocol.EncodeError(protocol.CodeInternal, "failed to set status; try again", ref))
	}
}

func (a *agentConn) setBackground(ctx context.Context, background bool, ref string) {
	set, typ := a.sess.Foreground, "foreground"
	if background {
		set, typ = a.sess.Background, "background"
	}
	switch err := set(ctx); {
	case errors.Is(err, hub.ErrBackgroundOff) || errors.Is(err, hub.ErrNotMobile):
		a.l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, err.Error(), ref))
	case err != nil:
		a.sessLog.Error("failed to change background mode", "type", typ, "err", err)
		a.l.SendMessage(protocol.EncodeError(protocol.CodeInternal, "failed to change background mode; try again", ref))
	}
}

// sayBye removes the device's lease and closes the socket with the
// outcome. Only a stored logout is confirmed with 1000: the device would
// otherwise believe the agent offline while every widget still counts them
// for the rest of the grace.
func (a *agentConn) sayBye(ctx context.Context) {
	if err := a.sess.Bye(ctx); err != nil { // hub.ErrNotStored
		a.sessLog.Warn("bye not stored", "err", err)
		a.l.closeWith(CloseByeNotStored, "logout not stored; retry", true)
		return
	}
	a.l.closeWith(wsconn.StatusNormalClosure, "bye", true)
}

// truncateReason keeps a close reason inside the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	return protocol.Truncate(s, 117)
}
