package presence

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// mustSchedule decodes js and fails the test if it is not a valid schedule.
// (The strict decoding of the admin API is protocol.ParseSchedule's, and
// tested there.)
func mustSchedule(t *testing.T, js string) *Schedule {
	t.Helper()
	s, err := parseSchedule([]byte(js))
	if err != nil {
		t.Fatalf("parseSchedule(%s): got error %v, want none", js, err)
	}
	return s
}

// parseSchedule decodes a schedule and validates it.
func parseSchedule(data []byte) (*Schedule, error) {
	var s Schedule
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

// instant parses an RFC 3339 time with an explicit offset ("" is zero), so
// that no test expectation depends on resolving a wall time.
func instant(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	x, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test instant %q: %v", s, err)
	}
	return x
}

// show prints x in UTC and in loc.
func show(x time.Time, loc *time.Location) string {
	if x.IsZero() {
		return "zero"
	}
	return fmt.Sprintf("%s (%s)", x.UTC().Format(time.RFC3339Nano), x.In(loc).Format("2006-01-02 15:04:05.999999999 MST"))
}

func sameInstant(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Equal(b)
}

// checkOpenAt checks s.OpenAt(at) against want.
func checkOpenAt(t *testing.T, s *Schedule, at time.Time, wantOpen bool, wantNext time.Time) {
	t.Helper()
	loc := mustLoc(t, s.Timezone)
	open, next := s.OpenAt(at)
	if open != wantOpen {
		t.Errorf("OpenAt(%s): got open %v, want %v", show(at, loc), open, wantOpen)
	}
	if !sameInstant(next, wantNext) {
		t.Errorf("OpenAt(%s): got next %s, want %s", show(at, loc), show(next, loc), show(wantNext, loc))
	}
}

type openCheck struct {
	at   string
	open bool
	next string // "" when the state never changes
}

func runOpenChecks(t *testing.T, s *Schedule, checks []openCheck) {
	t.Helper()
	for _, c := range checks {
		checkOpenAt(t, s, instant(t, c.at), c.open, instant(t, c.next))
	}
}
