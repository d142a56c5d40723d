package client

import (
	"errors"
	"fmt"

	"github.com/presencehub/presencehub/protocol"
)

// Error is an error frame of the hub: the answer to one message (Ref names
// it), or, with no Ref, something the hub says about the session. Its Code
// is one of docs/protocol.md's: bad_request, unauthorized, forbidden,
// rate_limited, unavailable or internal.
//
// errors.Is matches an *Error against the sentinels below by Code, so
// errors.Is(err, client.ErrUnavailable) holds for any unavailable answer.
type Error struct {
	Code    string
	Message string
	Ref     string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "hub said " + e.Code
	}
	return "hub said " + e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// The hub's error codes, for errors.Is. Of the answers to SetStatus,
// ErrUnavailable means NATS did not confirm the change in time: it may still
// apply, and a Status event carrying the same Ref says it did. ErrRateLimited
// means the device sent too many changes (or has too many waiting): the
// change was not made. ErrInternal means it was not made either.
var (
	ErrBadRequest   = &Error{Code: protocol.CodeBadRequest}
	ErrUnauthorized = &Error{Code: protocol.CodeUnauthorized}
	ErrForbidden    = &Error{Code: protocol.CodeForbidden}
	ErrRateLimited  = &Error{Code: protocol.CodeRateLimited}
	ErrUnavailable  = &Error{Code: protocol.CodeUnavailable}
	ErrInternal     = &Error{Code: protocol.CodeInternal}
)

// Why a Client stopped for good, for errors.Is on Err, on the Err of the
// final State event and on what methods return afterwards. Each comes as a
// *CloseError carrying the hub's close code and reason.
var (
	// ErrReplaced: the same device id connected again elsewhere (close
	// 4002), another window or process of the app, say; that session won.
	// The client does not reconnect: it would take the device back.
	ErrReplaced = errors.New("replaced by a newer session of this device")
	// ErrRevoked: an admin of the site signed this device out (close
	// 4005). Its lease is gone, with no grace. The client does not sign in
	// again on its own: show the agent they were signed out.
	ErrRevoked = errors.New("signed out by an admin")
	// ErrTooManyDevices: the agent already has the most live devices the
	// hub allows (close 4003, --max-devices).
	ErrTooManyDevices = errors.New("too many devices for this agent")
	// ErrTokenRefused: the hub refused the token (close 4001), and no
	// TokenFunc gave one it took.
	ErrTokenRefused = errors.New("token refused")
)

// ErrClosed is returned by the methods of a Client that was closed, logged
// out, or stopped for one of the reasons above (which Err then gives).
var ErrClosed = errors.New("client closed")

// ErrConnectionLost is returned by a request whose socket dropped before the
// hub answered. A status change may still have applied: the status in the
// Welcome that follows the reconnect says.
var ErrConnectionLost = errors.New("connection lost before the hub answered")

// CloseError is a socket closed by the hub: its close code (docs/protocol.md:
// 1001 shutting down, 1011 internal, 1013 still loading, 4001 bad hello or
// token, 4002 replaced, 4003 too many devices, 4004 logout not stored, 4005
// revoked, ...) and reason, and the error frame that came before it, if any
// (an unauthorized before 4001, say).
type CloseError struct {
	Code   int
	Reason string
	// Frame is the error frame the hub sent before closing, or nil.
	Frame *Error
}

func (e *CloseError) Error() string {
	s := fmt.Sprintf("hub closed the socket with %d", e.Code)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Frame != nil {
		s += " after " + e.Frame.Error()
	}
	return s
}

// Unwrap returns the error frame that came before the close, if any.
func (e *CloseError) Unwrap() error {
	if e.Frame == nil {
		return nil
	}
	return e.Frame
}

// Is matches the close codes that stop a client: ErrReplaced (4002),
// ErrRevoked (4005), ErrTooManyDevices (4003) and ErrTokenRefused (4001).
func (e *CloseError) Is(target error) bool {
	switch target {
	case ErrReplaced:
		return e.Code == int(protocol.CloseReplaced)
	case ErrRevoked:
		return e.Code == int(protocol.CloseRevoked)
	case ErrTooManyDevices:
		return e.Code == int(protocol.CloseTooManyDevices)
	case ErrTokenRefused:
		return e.Code == int(protocol.CloseBadHello)
	}
	return false
}

// HTTPError is an opening handshake the hub (or a proxy) answered with an
// HTTP status instead of the upgrade: 403 for an Origin it does not allow,
// 429 too many sockets, 503 draining, ...
type HTTPError struct {
	StatusCode int
	Err        error
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *HTTPError) Unwrap() error { return e.Err }
