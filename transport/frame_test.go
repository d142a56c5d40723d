package transport

import (
	"bytes"
	"strings"
	"testing"
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

func TestTextFrameCachesBySlice(t *testing.T) {
	a := []byte(`{"type":"widget_status"}`)
	b := []byte(`{"type":"widget_status"}`) // equal bytes, another slice
	fa := textFrame(a)
	if fb := textFrame(b); &fa[0] == &fb[0] {
		t.Fatal("got the cached frame for another slice, want a new one")
	}
	if fa2 := textFrame(a); !bytes.Equal(fa2, fa) {
		t.Fatalf("got % x, want % x", fa2, fa)
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
