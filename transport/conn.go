package transport

import (
	"fmt"
	"net/http"
	"time"

	"github.com/presencehub/presencehub/internal/wsconn"
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

// acceptHello upgrades an agent or admin socket: Origin checked against the
// allowed patterns, and a timer that closes the socket with 4001, after an
// error frame, unless the caller stops it once a good hello arrives.
func (s *Server) acceptHello(w http.ResponseWriter, r *http.Request, kind string) (*sock, *time.Timer, bool) {
	l, err := s.accept(w, r, s.helloOpts)
	if err != nil {
		s.log.Debug(kind+" upgrade refused", "remote", r.RemoteAddr, "client", s.clientAddr(r), "err", err)
		return nil, nil, false
	}
	timer := time.AfterFunc(s.cfg.HelloTimeout, func() {
		l.fail(CloseBadHello, protocol.CodeBadRequest, fmt.Sprintf("no hello within %v", s.cfg.HelloTimeout), "")
	})
	return l, timer, true
}

// fail sends an error frame and closes the socket after it.
func (l *sock) fail(close wsconn.StatusCode, code, message, ref string) {
	l.SendMessage(protocol.EncodeError(code, message, ref))
	l.closeWith(close, truncateReason(message), true)
}
