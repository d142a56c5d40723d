package transport

import (
	"bytes"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/hub"
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
		got := appendFrame(nil, opText, payload)
		if !bytes.Equal(got[:len(tt.wantHeader)], tt.wantHeader) || len(got) != len(tt.wantHeader)+tt.n {
			t.Errorf("got header % x and length %d for a %d-byte payload, want % x and %d",
				got[:len(tt.wantHeader)], len(got), tt.n, tt.wantHeader, len(tt.wantHeader)+tt.n)
		}
	}
}

func TestFrameIsPreparedOncePerFrame(t *testing.T) {
	payload := []byte(`{"type":"widget_status"}`)
	f := hub.NewFrame(payload)
	prepared := 0
	prepare := func(p []byte) []byte { prepared++; return textFrame(p) }
	first, second := f.Wire(prepare), f.Wire(prepare)
	if prepared != 1 || &first[0] != &second[0] {
		t.Fatalf("got %d preparations and distinct wire forms, want one shared", prepared)
	}
	// Equal bytes in another frame are another frame: nothing is cached by
	// content or address across frames.
	if other := hub.NewFrame(bytes.Clone(payload)).Wire(prepare); &other[0] == &first[0] || prepared != 2 {
		t.Fatal("got the first frame's wire form for another frame")
	}
	if want := appendFrame(nil, opText, payload); !bytes.Equal(first, want) {
		t.Fatalf("got % x, want % x", first, want)
	}
}

func TestCloseFrame(t *testing.T) {
	got := closeFrame(1001, "bye")
	want := []byte{0x88, 5, 0x03, 0xE9, 'b', 'y', 'e'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	if long := closeFrame(1008, strings.Repeat("x", 300)); len(long) > 2+125 {
		t.Fatalf("got a %d-byte close frame, want at most 127", len(long))
	}
}
