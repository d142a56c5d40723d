package transport

import (
	"bytes"
	"testing"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/wsconn"
)

func TestFrameIsPreparedOncePerFrame(t *testing.T) {
	payload := []byte(`{"type":"widget_status"}`)
	f := hub.NewFrame(payload)
	prepared := 0
	prepare := func(p []byte) []byte { prepared++; return wsconn.TextFrame(p) }
	first, second := f.Wire(prepare), f.Wire(prepare)
	if prepared != 1 || &first[0] != &second[0] {
		t.Fatalf("got %d preparations and distinct wire forms, want one shared", prepared)
	}
	// Equal bytes in another frame are another frame: nothing is cached by
	// content or address across frames.
	if other := hub.NewFrame(bytes.Clone(payload)).Wire(prepare); &other[0] == &first[0] || prepared != 2 {
		t.Fatal("got the first frame's wire form for another frame")
	}
	if want := wsconn.TextFrame(payload); !bytes.Equal(first, want) {
		t.Fatalf("got % x, want % x", first, want)
	}
}
