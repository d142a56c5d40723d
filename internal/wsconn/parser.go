package wsconn

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// parser reads a client's frames. It is a state machine fed bytes as they
// come, in pieces of any size, and it never reads by itself: who reads the
// connection (today the connection's reader goroutine, later perhaps a
// goroutine woken by the poller for a readable socket) is not its concern.
// It holds a partial header, the frame in progress and the message being
// assembled, and nothing else, so an idle connection's parser is small.
//
// It enforces RFC 6455's rules for what a server receives: masked frames,
// RSV bits clear (no extension is ever negotiated), known opcodes, control
// frames final and of at most 125 bytes, continuation frames only inside a
// fragmented message and no new message inside one, a 64-bit length with
// its top bit clear, close frames with no payload or a valid code, and text
// messages and close reasons in valid UTF-8, checked as the bytes arrive, so
// that an invalid text message fails at its first bad byte even when it is
// fragmented.
type parser struct {
	// limit is the largest message, in bytes, it assembles.
	limit int64

	// hdr holds the header of the next frame while it arrives; hlen bytes
	// of it are in.
	hdr  [14]byte
	hlen int

	// The frame in progress, once its header is in (inFrame): its FIN bit
	// and opcode, its masking key and the key's offset for the next payload
	// byte, and how many payload bytes are still to come.
	inFrame   bool
	fin       bool
	op        byte
	key       [4]byte
	keyPos    int
	remaining uint64

	// The data message in progress: its opcode (0 if none), its payload so
	// far, and for a text message how much of the payload is known to be
	// whole, valid UTF-8.
	msgOp   byte
	msg     []byte
	checked int

	// ctl is the payload of the control frame in progress.
	ctl []byte
}

// eventKind is what a parser found.
type eventKind uint8

const (
	evNone    eventKind = iota
	evMessage           // a whole data message
	evPing
	evPong
	evClose
)

// event is what a parser found in the bytes fed to it.
type event struct {
	kind eventKind
	// typ and data are a message's; data is the receiver's to keep. For a
	// ping or pong, data is the payload, valid until the next feed.
	typ  MessageType
	data []byte
	// code and reason are a close frame's; code is StatusNoStatus for a
	// close frame without payload.
	code   StatusCode
	reason string
}

// failure is why a parser gave up: the close code and reason to answer
// with. After a failure the parser's state is meaningless.
type failure struct {
	code   StatusCode
	reason string
}

func (f *failure) Error() string { return fmt.Sprintf("%d: %s", f.code, f.reason) }

func protocolError(format string, args ...any) *failure {
	return &failure{code: StatusProtocolError, reason: fmt.Sprintf(format, args...)}
}

// feed parses b. It stops after the first event, and reports how many bytes
// of b it used: the caller handles the event, then feeds the rest. With
// evNone, it used all of b and waits for more.
func (p *parser) feed(b []byte) (int, event, *failure) {
	n := 0
	for n < len(b) {
		if !p.inFrame {
			k, done, err := p.readHeader(b[n:])
			n += k
			if err != nil {
				return n, event{}, err
			}
			if !done {
				return n, event{}, nil
			}
		} else {
			k := int(min(uint64(len(b)-n), p.remaining))
			if err := p.payload(b[n : n+k]); err != nil {
				return n + k, event{}, err
			}
			n += k
			p.remaining -= uint64(k)
		}
		if p.remaining > 0 {
			continue
		}
		ev, err := p.endFrame()
		if err != nil || ev.kind != evNone {
			return n, ev, err
		}
	}
	return n, event{}, nil
}

// readHeader reads header bytes of the next frame from b; it reports how
// many it used and whether the header is complete. Each rule that can be
// checked on the first two bytes is checked as soon as they are in.
func (p *parser) readHeader(b []byte) (int, bool, *failure) {
	n := 0
	if p.hlen < 2 {
		n = copy(p.hdr[p.hlen:2], b)
		p.hlen += n
		if p.hlen < 2 {
			return n, false, nil
		}
		if err := p.checkStart(); err != nil {
			return n, false, err
		}
	}
	need := headerLen(p.hdr[1])
	k := copy(p.hdr[p.hlen:need], b[n:])
	p.hlen += k
	n += k
	if p.hlen < need {
		return n, false, nil
	}
	p.hlen = 0

	length := uint64(p.hdr[1] &^ maskBit)
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(p.hdr[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(p.hdr[2:10])
		if length>>63 != 0 {
			return n, false, protocolError("64-bit payload length with its top bit set")
		}
	}
	p.fin, p.op = p.hdr[0]&finBit != 0, p.hdr[0]&0x0F
	copy(p.key[:], p.hdr[need-4:need])
	p.keyPos, p.remaining, p.inFrame = 0, length, true
	switch p.op {
	case opClose, opPing, opPong:
		p.ctl = p.ctl[:0]
		return n, true, nil
	case opText, opBinary:
		p.msgOp, p.msg, p.checked = p.op, nil, 0
	}
	if have := uint64(len(p.msg)); length > uint64(p.limit) || have+length > uint64(p.limit) {
		return n, false, &failure{code: StatusMessageTooBig, reason: fmt.Sprintf("message over %d bytes", p.limit)}
	}
	if p.msg == nil && p.fin {
		p.msg = make([]byte, 0, length) // an unfragmented message: its exact size
	}
	return n, true, nil
}

// checkStart checks a frame's first two bytes.
func (p *parser) checkStart() *failure {
	b0, b1 := p.hdr[0], p.hdr[1]
	if b0&rsvBits != 0 {
		return protocolError("reserved bits set without an extension")
	}
	switch op := b0 & 0x0F; op {
	case opContinuation:
		if p.msgOp == 0 {
			return protocolError("continuation frame without a message to continue")
		}
	case opText, opBinary:
		if p.msgOp != 0 {
			return protocolError("new message inside a fragmented message")
		}
	case opClose, opPing, opPong:
		if b0&finBit == 0 {
			return protocolError("fragmented control frame")
		}
		if b1&^maskBit > maxControlPayload {
			return protocolError("control frame over %d bytes", maxControlPayload)
		}
	default:
		return protocolError("reserved opcode %d", op)
	}
	if b1&maskBit == 0 {
		return protocolError("unmasked client frame")
	}
	return nil
}

// headerLen is the length of a client frame's header (always masked) whose
// second byte is b1.
func headerLen(b1 byte) int {
	switch b1 &^ maskBit {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// payload takes the next payload bytes of the frame in progress, unmasked
// into the message or control payload (b itself is left as it is).
func (p *parser) payload(b []byte) *failure {
	if p.op >= opClose {
		start := len(p.ctl)
		p.ctl = append(p.ctl, b...)
		p.unmask(p.ctl[start:])
		return nil
	}
	start := len(p.msg)
	p.msg = append(p.msg, b...)
	p.unmask(p.msg[start:])
	if p.msgOp == opText && !p.checkUTF8(false) {
		return &failure{code: StatusInvalidPayload, reason: "invalid UTF-8 in a text message"}
	}
	return nil
}

func (p *parser) unmask(b []byte) {
	for i := range b {
		b[i] ^= p.key[p.keyPos&3]
		p.keyPos++
	}
}

// checkUTF8 checks the text message's bytes not checked yet. Unless final,
// the message may end in the middle of a rune that the next bytes complete.
func (p *parser) checkUTF8(final bool) bool {
	s := p.msg[p.checked:]
	i := 0
	for i < len(s) {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		// FullRune reports an invalid sequence as a full rune: when it is
		// not full, it is the valid start of a rune still to come.
		if !utf8.FullRune(s[i:]) {
			break
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	p.checked += i
	return !final || p.checked == len(p.msg)
}

// endFrame is called when the frame in progress is complete; it returns
// the event the frame completes, if any.
func (p *parser) endFrame() (event, *failure) {
	p.inFrame = false
	switch p.op {
	case opPing:
		return event{kind: evPing, data: p.ctl}, nil
	case opPong:
		return event{kind: evPong, data: p.ctl}, nil
	case opClose:
		return closeEvent(p.ctl)
	}
	if !p.fin {
		return event{}, nil
	}
	if p.msgOp == opText && !p.checkUTF8(true) {
		return event{}, &failure{code: StatusInvalidPayload, reason: "invalid UTF-8 in a text message"}
	}
	ev := event{kind: evMessage, typ: MessageType(p.msgOp), data: p.msg}
	if ev.data == nil {
		ev.data = []byte{}
	}
	p.msgOp, p.msg, p.checked = 0, nil, 0
	return ev, nil
}

// closeEvent checks a close frame's payload.
func closeEvent(payload []byte) (event, *failure) {
	switch {
	case len(payload) == 0:
		return event{kind: evClose, code: StatusNoStatus}, nil
	case len(payload) == 1:
		return event{}, protocolError("close frame with a 1-byte payload")
	}
	code := StatusCode(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return event{}, protocolError("invalid close code %d", code)
	}
	if !utf8.Valid(payload[2:]) {
		return event{}, &failure{code: StatusInvalidPayload, reason: "invalid UTF-8 in the close reason"}
	}
	return event{kind: evClose, code: code, reason: string(payload[2:])}, nil
}
