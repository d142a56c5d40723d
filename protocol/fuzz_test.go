package protocol

import (
	"strings"
	"testing"
)

// FuzzDecodeClientMessage: no input panics the decoder, and what it accepts
// has a type and a bounded ref.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, seed := range []string{
		`{"type":"hello","token":"x","device":{"id":"","kind":"web"}}`,
		`{"type":"set_status","status":"busy","ref":"r1"}`,
		`{"type":"bye"}`, `{"type":"subscribe_roster"}`,
		`{}`, `[]`, `null`, `"hello"`, `{"type":1}`, `{"type":"x","ref":` + strings.Repeat("a", 200) + `}`,
		`{"type":"hello","device":[]}`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeClientMessage(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("got an empty error message")
			}
			return
		}
		if m.Type == "" {
			t.Fatalf("accepted %q without a type", data)
		}
		if len(m.Ref) > MaxRefLen {
			t.Fatalf("accepted a %d-byte ref, want at most %d", len(m.Ref), MaxRefLen)
		}
	})
}
