package protocol

import (
	"encoding/json"
	"unicode/utf8"
)

// Error codes of error frames and of HTTP error bodies.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeRateLimited  = "rate_limited"
	CodeInternal     = "internal"
	// CodeUnavailable: NATS did not confirm a change, which may still
	// apply; a status frame with the change's ref says it did.
	CodeUnavailable = "unavailable"
	// CodeTooManyConnections answers a widget upgrade (HTTP 429) from a
	// client address that already holds its most widget sockets.
	CodeTooManyConnections = "too_many_connections"
	// CodeNotFound answers (HTTP 404) a path the hub does not serve, or
	// a thing the path names that does not exist.
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed answers (HTTP 405, with Allow) a method the
	// path does not take.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeUpgradeRequired answers (HTTP 426) a plain request to a
	// WebSocket endpoint.
	CodeUpgradeRequired = "upgrade_required"
	// CodeTooLarge answers (HTTP 413) a request body over the limit.
	CodeTooLarge = "too_large"
)

// ErrorFrame is the error frame, sent to one device.
type ErrorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

// EncodeError returns the error frame for one device: code, a message for
// people, and the ref of the message it answers, if any.
func EncodeError(code, message, ref string) []byte {
	b, _ := json.Marshal(ErrorFrame{Type: "error", Code: code, Message: message, Ref: ref})
	return b
}

// CloseCode is a WebSocket close code beyond the standard ones.
type CloseCode uint16

// Close codes beyond the standard ones; see docs/protocol.md.
const (
	// CloseBadHello: no hello in time, a bad hello, or a bad or expired token.
	CloseBadHello CloseCode = 4001
	// CloseReplaced: the same device connected again; the newer session won.
	CloseReplaced CloseCode = 4002
	// CloseTooManyDevices: the agent already has the most live devices allowed.
	CloseTooManyDevices CloseCode = 4003
	// CloseByeNotStored: a bye whose lease removal NATS did not store in
	// time; the hub keeps trying, and the client may say bye again.
	CloseByeNotStored CloseCode = 4004
	// CloseRevoked: an admin revoked the device; it may sign in again with
	// a new hello. (Not 4004, which clients of protocol version 1 already
	// read as "say bye again": see docs/protocol.md.)
	CloseRevoked CloseCode = 4005
)

// Truncate shortens s to at most n bytes, on a rune boundary, marking the
// cut with "...", for an error message or close reason that quotes what a
// client sent.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
