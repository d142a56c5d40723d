package wsconn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"unicode/utf8"
)

// clientFrame returns a masked client frame (the key changes every byte).
func clientFrame(fin bool, rsv, op byte, payload []byte) []byte {
	b0 := rsv<<4 | op
	if fin {
		b0 |= finBit
	}
	var b []byte
	switch n := len(payload); {
	case n < 126:
		b = []byte{b0, maskBit | byte(n)}
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16([]byte{b0, maskBit | 126}, uint16(n))
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, maskBit | 127}, uint64(n))
	}
	key := [4]byte{0x11, 0x8f, 0x3c, 0xe0}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// parseAll feeds data to a parser in pieces of chunk bytes and returns what
// it found, one line per event, and its failure if any. It checks what
// every event promises.
func parseAll(t *testing.T, data []byte, chunk int, limit int64) (events []string, fail string) {
	p := parser{limit: limit}
	for off := 0; off < len(data); off += chunk {
		b := data[off:min(off+chunk, len(data))]
		for len(b) > 0 {
			n, ev, f := p.feed(b)
			if n < 0 || n > len(b) {
				t.Fatalf("feed used %d of %d bytes", n, len(b))
			}
			b = b[n:]
			if f != nil {
				if f.code != StatusProtocolError && f.code != StatusInvalidPayload && f.code != StatusMessageTooBig {
					t.Fatalf("failed with code %d", f.code)
				}
				return events, f.Error()
			}
			switch ev.kind {
			case evNone:
				if len(b) > 0 {
					t.Fatalf("no event with %d bytes left", len(b))
				}
				continue
			case evMessage:
				if int64(len(ev.data)) > limit {
					t.Fatalf("got a %d-byte message over the %d-byte limit", len(ev.data), limit)
				}
				if ev.typ == Text && !utf8.Valid(ev.data) {
					t.Fatalf("got text message %q that is not valid UTF-8", ev.data)
				}
				if ev.typ != Text && ev.typ != Binary {
					t.Fatalf("got message type %d", ev.typ)
				}
			case evPing, evPong:
				if len(ev.data) > maxControlPayload {
					t.Fatalf("got a %d-byte control payload", len(ev.data))
				}
			case evClose:
				if ev.code != StatusNoStatus && !validCloseCode(ev.code) || !utf8.ValidString(ev.reason) {
					t.Fatalf("got close %d %q", ev.code, ev.reason)
				}
			}
			events = append(events, fmt.Sprintf("%d %d %q %d %q", ev.kind, ev.typ, ev.data, ev.code, ev.reason))
		}
	}
	return events, ""
}

// FuzzReadFrame: no input panics the frame parser; what it reports keeps
// the promises of events (messages within the limit, text in valid UTF-8,
// valid close codes and reasons); and the bytes coming in any pieces, down
// to one at a time, give the same events and the same failure as all at
// once.
func FuzzReadFrame(f *testing.F) {
	seeds := [][]byte{
		clientFrame(true, 0, opText, []byte(`{"type":"hello"}`)),
		clientFrame(true, 0, opBinary, []byte{0, 1, 2}),
		bytes.Join([][]byte{clientFrame(false, 0, opText, []byte("a\xe2")), clientFrame(true, 0, opPing, []byte("p")), clientFrame(true, 0, opContinuation, []byte("\x82\xac"))}, nil),
		clientFrame(true, 0, opText, bytes.Repeat([]byte("x"), 200)),
		clientFrame(true, 0, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}),
		clientFrame(true, 0, opClose, nil),
		clientFrame(true, 0, opClose, []byte{0x03}),
		clientFrame(true, 0, opClose, []byte{0x03, 0xed}),
		clientFrame(true, 0, opClose, []byte{0x03, 0xe8, 0xff}),
		clientFrame(true, 0, opText, []byte("\xff")),
		clientFrame(true, 4, opText, nil),
		clientFrame(true, 0, 0x3, nil),
		clientFrame(false, 0, opPing, nil),
		clientFrame(true, 0, opContinuation, nil),
		{0x81, 0x01, 'a'}, // unmasked
		{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // 64-bit length, top bit set
		{0x81, 0xfe, 0xff, 0xff, 0, 0, 0, 0},                // 65535 bytes announced
	}
	for i, s := range seeds {
		f.Add(s, uint8(i%5+1))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		const limit = 256
		whole := bytes.Clone(data)
		events, fail := parseAll(t, data, len(data)+1, limit)
		if !bytes.Equal(data, whole) {
			t.Fatal("the parser modified its input")
		}
		for _, size := range []int{1, int(chunk%16) + 1} {
			gotEvents, gotFail := parseAll(t, data, size, limit)
			if fmt.Sprint(gotEvents) != fmt.Sprint(events) || gotFail != fail {
				t.Fatalf("in pieces of %d: got %v, %q; all at once: %v, %q", size, gotEvents, gotFail, events, fail)
			}
		}
	})
}
