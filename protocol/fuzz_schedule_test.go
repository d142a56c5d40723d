package protocol

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseSchedule: no input panics the parser or OpenAt; an accepted
// schedule's next change is after the instant asked about, and it survives
// a JSON round trip.
func FuzzParseSchedule(f *testing.F) {
	for _, seed := range []string{
		`{"timezone":"Europe/Prague","weekly":{"monday":[{"from":"09:00","to":"17:00"}]}}`,
		`{"timezone":"America/New_York","weekly":{"friday":[{"from":"22:00","to":"06:00"}],"saturday":[{"from":"00:00","to":"24:00"}]}}`,
		`{"timezone":"UTC","exceptions":[{"date":"2026-12-24","closed":true},{"date":"2026-12-31","hours":[{"from":"09:00","to":"12:00"}]}]}`,
		`{"timezone":"Mars/Olympus"}`, `{"timezone":"UTC","weekly":{"funday":[]}}`, `{}`, `[]`, `null`,
	} {
		f.Add([]byte(seed), int64(1795500000))
	}
	f.Fuzz(func(t *testing.T, data []byte, unix int64) {
		s, err := ParseSchedule(data)
		if err != nil {
			return
		}
		at := time.Unix(unix%(1<<34), 0)
		open, next := s.OpenAt(at)
		if !next.IsZero() && !next.After(at) {
			t.Fatalf("got next change %v for %v, want a later instant", next, at)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseSchedule(b)
		if err != nil {
			t.Fatalf("got %v re-parsing %s, want the schedule back", err, b)
		}
		if open2, next2 := again.OpenAt(at); open2 != open || !next2.Equal(next) {
			t.Fatalf("got %v/%v after a round trip, want %v/%v", open2, next2, open, next)
		}
	})
}
