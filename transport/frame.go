package transport

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/coder/websocket"
)

// Server-to-client WebSocket frames are not masked, so a frame's bytes are
// the same for every socket: sockets write them to the connection
// themselves (RFC 6455 section 5.2), and a frame the hub fans out is framed
// once for all of its subscribers.

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
	finBit  = 0x80
)

// appendFrame appends a final, unmasked frame of opcode op carrying payload.
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

// lastText caches the framing of the last payload framed: the hub hands one
// payload slice to every subscriber in turn, so all but the first find it.
var lastText atomic.Pointer[framedText]

type framedText struct {
	payload *byte
	n       int
	frame   []byte
}

// textFrame returns payload framed as a text frame.
func textFrame(payload []byte) []byte {
	if len(payload) == 0 {
		return appendFrame(nil, opText, nil)
	}
	if c := lastText.Load(); c != nil && c.payload == &payload[0] && c.n == len(payload) {
		return c.frame
	}
	f := appendFrame(make([]byte, 0, len(payload)+10), opText, payload)
	lastText.Store(&framedText{payload: &payload[0], n: len(payload), frame: f})
	return f
}

// closeFrame returns a close frame with code and reason (at most 123 bytes).
func closeFrame(code websocket.StatusCode, reason string) []byte {
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return appendFrame(nil, opClose, append(p, truncateReason(reason)...))
}
