package wsconn

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendFrameLengths(t *testing.T) {
	tests := []struct {
		n          int
		wantHeader []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		payload := bytes.Repeat([]byte("x"), tt.n)
		got := TextFrame(payload)
		if !bytes.Equal(got[:len(tt.wantHeader)], tt.wantHeader) || len(got) != len(tt.wantHeader)+tt.n {
			t.Errorf("got header % x and length %d for a %d-byte payload, want % x and %d",
				got[:len(tt.wantHeader)], len(got), tt.n, tt.wantHeader, len(tt.wantHeader)+tt.n)
		}
	}
}

func TestCloseFrame(t *testing.T) {
	got := closeFrame(1001, "bye")
	want := []byte{0x88, 5, 0x03, 0xE9, 'b', 'y', 'e'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	// A long reason is cut to fit a control frame, at a rune boundary.
	long := closeFrame(1008, strings.Repeat("é", 100))
	if len(long) > 2+125 || !utf8.Valid(long[4:]) {
		t.Fatalf("got a %d-byte close frame with reason %q, want at most 127 bytes of valid UTF-8", len(long), long[4:])
	}
	// A reason is valid UTF-8 whatever it was given.
	if bad := closeFrame(1008, "a\xffb"); !utf8.Valid(bad[4:]) {
		t.Fatalf("got reason %q, want valid UTF-8", bad[4:])
	}
}
