package wsconn

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// Opcodes and header bits of RFC 6455 section 5.2.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	finBit  = 0x80
	rsvBits = 0x70
	maskBit = 0x80

	// maxControlPayload is the largest payload of a control frame.
	maxControlPayload = 125
	// maxCloseReason is the largest close reason: a control frame's
	// payload less the two bytes of the code.
	maxCloseReason = maxControlPayload - 2
)

// MessageType is the type of a data message.
type MessageType int

// The data message types.
const (
	Text   MessageType = opText
	Binary MessageType = opBinary
)

// StatusCode is a close code (RFC 6455 section 7.4).
type StatusCode int

// The close codes this package sends or names.
const (
	StatusNormalClosure   StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusNoStatus        StatusCode = 1005 // received only: a close frame without a code
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusInternalError   StatusCode = 1011
	StatusTryAgainLater   StatusCode = 1013
)

// validCloseCode reports whether code may appear in a close frame: the
// codes RFC 6455 and the IANA registry define for use on the wire
// (1000-1003, 1007-1014), and those for libraries and applications
// (3000-4999). 1004-1006 and 1015 must never be sent, 1016-2999 are
// reserved, and the rest is not defined.
func validCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// appendFrame appends a final, unmasked frame (a server's) of opcode op
// carrying payload, with the shortest length encoding.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, finBit|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// TextFrame returns payload framed as a final, unmasked text frame: the
// bytes a server writes for one message. A server's frames are not masked,
// so these bytes are the same for every connection: a message fanned out to
// many connections is framed once, and each is given the result with
// Conn.SendFrame. payload must be valid UTF-8.
func TextFrame(payload []byte) []byte {
	return appendFrame(make([]byte, 0, len(payload)+10), opText, payload)
}

// closeFrame returns a close frame with code and reason, cut to the 123
// bytes a close frame allows, at a rune boundary.
func closeFrame(code StatusCode, reason string) []byte {
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return appendFrame(nil, opClose, append(p, cutReason(reason)...))
}

// cutReason returns reason cut to maxCloseReason bytes at a rune boundary,
// with invalid UTF-8 replaced: a close reason must be valid UTF-8.
func cutReason(reason string) string {
	if !utf8.ValidString(reason) {
		reason = strings.ToValidUTF8(reason, "\uFFFD")
	}
	if len(reason) <= maxCloseReason {
		return reason
	}
	n := maxCloseReason
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n]
}
