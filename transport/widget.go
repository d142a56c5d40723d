package transport

import (
	"errors"
	"net/http"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// widgetTarget reads and validates ?site=S&group=G (or the {site} path value).
func widgetTarget(r *http.Request) (site, group string, err error) {
	site = r.PathValue("site")
	if site == "" {
		site = r.URL.Query().Get("site")
	}
	if err := presence.ValidateID("site", site); err != nil {
		return "", "", err
	}
	if group = r.URL.Query().Get("group"); group != "" {
		if err := presence.ValidateID("group", group); err != nil {
			return "", "", err
		}
	}
	return site, group, nil
}

// serveWidget serves GET /v1/widget?site=S[&group=G]: a receive-only socket
// that gets the widget's status at once and then each change.
func (s *Server) serveWidget(w http.ResponseWriter, r *http.Request) {
	remote, client := r.RemoteAddr, s.clientAddr(r)
	// Refused before the upgrade, so that a client over its cap costs no
	// socket and gets an answer it can read.
	if !s.widgetSlots.acquire(client) {
		s.widgetRefused.WithLabelValues(refusedPerClientLimit).Inc()
		s.log.Debug("widget upgrade refused", "remote", remote, "client", client, "err", "too many widget sockets from this address")
		writeError(w, http.StatusTooManyRequests, protocol.CodeTooManyConnections, "too many widget sockets from this address")
		return
	}
	release := func() { s.widgetSlots.release(client) }
	site, group, targetErr := widgetTarget(r)
	if targetErr == nil && !originAllowed(r.Header.Get("Origin"), s.hub.Settings(site).AllowedOrigins) {
		release()
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, "origin not allowed for this site's widget")
		return
	}
	l, err := s.accept(w, r, s.widgetOpts)
	if err != nil {
		release()
		s.log.Debug("widget upgrade refused", "remote", remote, "client", client, "err", err)
		return
	}
	ignore := func(wsconn.MessageType, []byte) {}
	if targetErr != nil {
		l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, targetErr.Error(), ""))
		l.closeWith(wsconn.StatusPolicyViolation, truncateReason(targetErr.Error()), true)
		l.run(ignore, release)
		return
	}
	unsubscribe, err := s.hub.SubscribeWidget(site, group, l)
	if err != nil {
		l.closeWith(wsconn.StatusTryAgainLater, "hub not ready", false)
		l.run(ignore, release)
		return
	}
	s.log.Debug("widget socket opened", "remote", remote, "client", client, "site", site, "group", group)
	// The handler returns now; the reader goroutine owns the socket.
	l.run(func(wsconn.MessageType, []byte) {
		s.framesIn.WithLabelValues("widget").Inc()
		l.SendMessage(protocol.EncodeError(protocol.CodeBadRequest, "widget sockets are receive-only", ""))
		l.closeWith(wsconn.StatusPolicyViolation, "widget sockets are receive-only", true)
	}, func() {
		unsubscribe()
		release()
		s.log.Debug("widget socket closed", "remote", remote, "client", client, "site", site, "group", group, "why", l.closedBecause())
	})
}

// serveSiteStatus serves GET /v1/sites/{site}/status[?group=G].
func (s *Server) serveSiteStatus(w http.ResponseWriter, r *http.Request) {
	site, group, err := widgetTarget(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	allowed := s.hub.Settings(site).AllowedOrigins
	origin := r.Header.Get("Origin")
	switch {
	case len(allowed) == 0:
		w.Header().Set("Access-Control-Allow-Origin", "*")
	case origin != "" && originAllowed(origin, allowed):
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	case origin != "":
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, "origin not allowed for this site's widget")
		return
	}
	st, err := s.hub.WidgetStatus(site, group)
	if errors.Is(err, hub.ErrNotReady) {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the hub is still loading; try again")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, protocol.CodeInternal, "failed to read status")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}
