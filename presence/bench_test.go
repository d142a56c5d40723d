package presence

import (
	"fmt"
	"testing"
	"time"
)

// siteOf1000 builds a site of 1,000 connected agents spread over ten groups,
// a tenth of them in no group, all busy.
func siteOf1000(b *testing.B) *Site {
	b.Helper()
	s := NewSite()
	for i := range 1000 {
		id := fmt.Sprint("agent", i)
		var groups []string
		if i%10 != 0 {
			groups = []string{fmt.Sprint("g", i%10)}
		}
		s.SetAgent(id, Busy, groups)
		s.SetDevice(id, Device{ID: "d", Kind: Desktop, Since: time.Unix(0, 0), State: Live})
	}
	return s
}

// BenchmarkWidget1000Agents computes a group widget's status.
func BenchmarkWidget1000Agents(b *testing.B) {
	s := siteOf1000(b)
	b.ReportAllocs()
	for b.Loop() {
		if w := s.Widget("g3"); w.Status != Busy {
			b.Fatalf("got %v, want busy", w)
		}
	}
}

// BenchmarkStatusChange1000Agents flips one agent of the site between busy
// and online, keeping the tallies, and recomputes its group's widget.
func BenchmarkStatusChange1000Agents(b *testing.B) {
	s := siteOf1000(b)
	groups := []string{"g3"}
	statuses := []Status{Online, Busy}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ch := s.SetAgent("agent3", statuses[i%2], groups)
		if ch.Touches("g3") {
			s.Widget("g3")
		}
	}
}
