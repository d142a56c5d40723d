package transport

import (
	"encoding/binary"

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

// textFrame returns payload framed as a text frame.
func textFrame(payload []byte) []byte {
	return appendFrame(make([]byte, 0, len(payload)+10), opText, payload)
}

// closeFrame returns a close frame with code and reason (at most 123 bytes).
func closeFrame(code websocket.StatusCode, reason string) []byte {
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return appendFrame(nil, opClose, append(p, truncateReason(reason)...))
}
