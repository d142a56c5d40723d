package transport

import (
	"fmt"
	"net/http"
	"time"

	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The protocol's own close codes (package protocol), as wsconn status codes.
const (
	// CloseBadHello: no hello in time, a bad hello, or a bad or expired token.
	CloseBadHello = wsconn.StatusCode(protocol.CloseBadHello)
	// CloseReplaced: the same device connected again; the newer session won.
	CloseReplaced = wsconn.StatusCode(protocol.CloseReplaced)
	// CloseTooManyDevices: the agent already has the most live devices allowed.
	CloseTooManyDevices = wsconn.StatusCode(protocol.CloseTooManyDevices)
	// CloseByeNotStored: a bye whose lease removal NATS did not store in
	// time; the hub keeps trying, and the client may say bye again.
	CloseByeNotStored = wsconn.StatusCode(protocol.CloseByeNotStored)
	// CloseRevoked: an admin revoked the device; it may sign in again with
	// a new hello. (Not 4004, which clients of protocol version 1 already
	// read as "say bye again": see docs/protocol.md.)
	CloseRevoked = wsconn.StatusCode(protocol.CloseRevoked)
)

// acceptHello upgrades an agent or admin socket: the URL's site parameter
// checked (urlSite), Origin checked against the allowed patterns, and a
// timer that closes the socket with 4001, after an error frame, unless the
// caller stops it once a good hello arrives. It returns the URL's site, ""
// when the URL names none, for verifyHello.
func (s *Server) acceptHello(w http.ResponseWriter, r *http.Request, kind string) (*sock, *time.Timer, string, bool) {
	site, err := urlSite(r)
	if err != nil {
		s.log.Debug(kind+" upgrade refused", "remote", r.RemoteAddr, "client", s.clientAddr(r), "err", err)
		badParam(w, "site", err.Error())
		return nil, nil, "", false
	}
	l, err := s.accept(w, r, s.helloOpts)
	if err != nil {
		s.log.Debug(kind+" upgrade refused", "remote", r.RemoteAddr, "client", s.clientAddr(r), "err", err)
		return nil, nil, "", false
	}
	timer := time.AfterFunc(s.cfg.HelloTimeout, func() {
		l.fail(CloseBadHello, protocol.CodeBadRequest, fmt.Sprintf("no hello within %v", s.cfg.HelloTimeout), "")
	})
	return l, timer, site, true
}

// urlSite reads the site parameter of an agent or admin socket's URL
// (GET /v1/agent?site=acme): the site the client's token is for, named in
// the URL so that a load balancer can hash on it (docs/routing.md). It is
// optional, for clients older than it: "" when absent.
func urlSite(r *http.Request) (string, error) {
	q := r.URL.Query()
	if !q.Has("site") {
		return "", nil
	}
	site := q.Get("site")
	if err := presence.ValidateID("site", site); err != nil {
		return "", err
	}
	return site, nil
}

// verifyHello checks a hello's token and, when the socket's URL names a
// site (urlSite), that the token is for that site. When either fails it
// fails the socket with 4001 after an error frame saying why (unauthorized,
// or forbidden naming site) and returns nil.
func (l *sock) verifyHello(auth *Auth, token, urlSite string) *Claims {
	claims, err := auth.Verify(token)
	if err != nil {
		l.fail(CloseBadHello, protocol.CodeUnauthorized, err.Error(), "")
		return nil
	}
	if urlSite != "" && claims.Site != urlSite {
		l.fail(CloseBadHello, protocol.CodeForbidden, fmt.Sprintf("site: the URL names site %q, but the token is for site %q", urlSite, claims.Site), "")
		return nil
	}
	return claims
}

// fail sends an error frame and closes the socket after it.
func (l *sock) fail(close wsconn.StatusCode, code, message, ref string) {
	l.SendMessage(protocol.EncodeError(code, message, ref))
	l.closeWith(close, truncateReason(message), true)
}
