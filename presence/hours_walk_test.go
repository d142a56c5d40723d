package presence

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// oracle answers "is s open at x" the slow, obvious way, independently of
// compile and resolve: a wall time stands for the first instant, found by
// scanning minute by minute, at which the clock shows it or later.
type oracle struct {
	s      *Schedule
	loc    *time.Location
	lo, hi time.Duration // the zone's smallest and largest UTC offsets
	cache  map[[2]int64]time.Time
}

func newOracle(t *testing.T, s *Schedule, lo, hi time.Duration) *oracle {
	return &oracle{s: s, loc: mustLoc(t, s.Timezone), lo: lo, hi: hi, cache: map[[2]int64]time.Time{}}
}

// at returns the instant wall time minute of date (midnight UTC) stands for.
func (o *oracle) at(t *testing.T, date time.Time, minute int) time.Time {
	t.Helper()
	key := [2]int64{date.Unix(), int64(minute)}
	if x, ok := o.cache[key]; ok {
		return x
	}
	wall := date.Add(time.Duration(minute) * time.Minute)
	clock := func(u time.Time) time.Time {
		l := u.In(o.loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	}
	u := wall.Add(-o.hi - time.Hour)
	if !clock(u).Before(wall) {
		t.Fatalf("oracle: clock at %v is already past %v", u, wall)
	}
	for end := wall.Add(-o.lo + time.Hour); !clock(u).After(wall) && !clock(u).Equal(wall); u = u.Add(time.Minute) {
		if u.After(end) {
			t.Fatalf("oracle: the clock never shows %v", wall)
		}
	}
	o.cache[key] = u
	return u
}

func (o *oracle) parse(t *testing.T, clock string) int {
	t.Helper()
	var h, m int
	if _, err := fmt.Sscanf(clock, "%d:%d", &h, &m); err != nil {
		t.Fatalf("oracle: bad time %q", clock)
	}
	return h*60 + m
}

// intervals returns the open stretches that start on date.
func (o *oracle) intervals(t *testing.T, date time.Time) [][2]time.Time {
	t.Helper()
	ivs := o.s.Weekly[strings.ToLower(date.Weekday().String())]
	for _, e := range o.s.Exceptions {
		if e.Date == date.Format(time.DateOnly) {
			ivs = e.Hours
		}
	}
	var out [][2]time.Time
	for _, iv := range ivs {
		from, to := o.parse(t, iv.From), o.parse(t, iv.To)
		if to <= from {
			to += 24 * 60
		}
		out = append(out, [2]time.Time{o.at(t, date, from), o.at(t, date, to)})
	}
	return out
}

func (o *oracle) localDate(x time.Time) time.Time {
	y, m, d := x.In(o.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (o *oracle) open(t *testing.T, x time.Time) bool {
	t.Helper()
	d := o.localDate(x)
	for i := -2; i <= 1; i++ {
		for _, iv := range o.intervals(t, d.AddDate(0, 0, i)) {
			if !x.Before(iv[0]) && x.Before(iv[1]) {
				return true
			}
		}
	}
	return false
}

// boundaries returns every instant in (a, b) at which the oracle's state
// may change.
func (o *oracle) boundaries(t *testing.T, a, b time.Time) []time.Time {
	t.Helper()
	var out []time.Time
	for d := o.localDate(a).AddDate(0, 0, -2); !d.After(o.localDate(b).AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
		for _, iv := range o.intervals(t, d) {
			for _, x := range iv {
				if x.After(a) && x.Before(b) {
					out = append(out, x)
				}
			}
		}
	}
	return out
}

// TestOpenAtWalk walks several schedules through the 2026 DST changes of
// several zones by jumping from next to next, and checks every answer
// against the oracle: the state flips at each next, holds right up to it,
// and does not change in between.
func TestOpenAtWalk(t *testing.T) {
	zones := []struct {
		name   string
		lo, hi time.Duration
	}{
		{"UTC", 0, 0},
		{"Europe/Prague", time.Hour, 2 * time.Hour},
		{"America/New_York", -5 * time.Hour, -4 * time.Hour},
		{"America/Havana", -5 * time.Hour, -4 * time.Hour},
		{"America/Santiago", -4 * time.Hour, -3 * time.Hour},
		{"Australia/Lord_Howe", 10*time.Hour + 30*time.Minute, 11 * time.Hour},
	}
	weeklies := []struct{ name, js string }{
		{"office", `{
			"monday":[{"from":"09:00","to":"12:00"},{"from":"13:00","to":"17:30"}],
			"tuesday":[{"from":"09:00","to":"12:00"},{"from":"13:00","to":"17:30"}],
			"wednesday":[{"from":"09:00","to":"12:00"},{"from":"13:00","to":"17:30"}],
			"thursday":[{"from":"09:00","to":"12:00"},{"from":"13:00","to":"17:30"}],
			"friday":[{"from":"09:00","to":"12:00"}],
			"saturday":[{"from":"10:00","to":"14:00"}]}`},
		{"small hours", `{
			"monday":[{"from":"00:30","to":"01:30"},{"from":"02:15","to":"02:45"},{"from":"03:00","to":"23:00"},{"from":"23:30","to":"00:15"}],
			"wednesday":[{"from":"00:00","to":"01:00"},{"from":"02:00","to":"03:00"},{"from":"22:00","to":"24:00"}],
			"friday":[{"from":"23:00","to":"02:30"}],
			"saturday":[{"from":"02:30","to":"24:00"}],
			"sunday":[{"from":"00:30","to":"01:30"},{"from":"02:15","to":"02:45"},{"from":"03:00","to":"23:00"},{"from":"23:30","to":"00:15"}]}`},
		{"almost always", `{
			"monday":[{"from":"00:00","to":"24:00"}],"tuesday":[{"from":"00:00","to":"24:00"}],
			"wednesday":[{"from":"00:00","to":"24:00"}],"thursday":[{"from":"00:00","to":"24:00"}],
			"friday":[{"from":"00:00","to":"24:00"}],"saturday":[{"from":"00:00","to":"23:50"}],
			"sunday":[{"from":"00:00","to":"02:10"},{"from":"02:20","to":"24:00"}]}`},
	}
	exceptions := `[
		{"date":"2026-03-08","hours":[{"from":"01:30","to":"02:30"},{"from":"03:30","to":"04:00"}]},
		{"date":"2026-03-29","hours":[{"from":"01:30","to":"02:30"}]},
		{"date":"2026-04-05","closed":true},
		{"date":"2026-09-06","hours":[{"from":"00:00","to":"00:30"},{"from":"23:00","to":"00:20"}]},
		{"date":"2026-09-07","hours":[{"from":"00:20","to":"10:00"}]},
		{"date":"2026-10-04","hours":[{"from":"02:00","to":"02:30"}]},
		{"date":"2026-10-25","hours":[{"from":"00:00","to":"02:30"},{"from":"02:40","to":"03:30"}]},
		{"date":"2026-11-01","closed":true}]`
	windows := [][2]string{
		{"2026-03-01T00:00:00Z", "2026-04-12T00:00:00Z"},
		{"2026-09-01T00:00:00Z", "2026-11-10T00:00:00Z"},
	}
	cases := 0
	for _, wk := range weeklies {
		wname, weekly := wk.name, wk.js
		for _, withExceptions := range []bool{false, true} {
			for _, z := range zones {
				js := fmt.Sprintf(`{"timezone":%q,"weekly":%s}`, z.name, weekly)
				name := wname + "/" + z.name
				if withExceptions {
					js = fmt.Sprintf(`{"timezone":%q,"weekly":%s,"exceptions":%s}`, z.name, weekly, exceptions)
					name += "/exceptions"
				}
				s, err := parseSchedule([]byte(js))
				if err != nil {
					// The exceptions were picked to stay clear of every
					// weekly spill; say which one does not.
					t.Fatalf("%s: parseSchedule: %v", name, err)
				}
				cases++
				t.Run(name, func(t *testing.T) {
					t.Parallel() // also runs OpenAt concurrently, for -race
					o := newOracle(t, s, z.lo, z.hi)
					for _, w := range windows {
						walk(t, s, o, instant(t, w[0]), instant(t, w[1]))
					}
				})
			}
		}
	}
	if cases != 36 {
		t.Errorf("walked %d schedules, want 36", cases)
	}
}

func walk(t *testing.T, s *Schedule, o *oracle, x, end time.Time) {
	t.Helper()
	open, next := s.OpenAt(x)
	if want := o.open(t, x); open != want {
		t.Fatalf("OpenAt(%s): got open %v, want %v", show(x, o.loc), open, want)
	}
	flips := 0
	for x.Before(end) {
		if next.IsZero() {
			for _, b := range o.boundaries(t, x, end) {
				if o.open(t, b) != open {
					t.Fatalf("OpenAt(%s): got next zero, want %s", show(x, o.loc), show(b, o.loc))
				}
			}
			break
		}
		if !next.After(x) {
			t.Fatalf("OpenAt(%s): got next %s, want one after it", show(x, o.loc), show(next, o.loc))
		}
		for _, b := range o.boundaries(t, x, next) {
			if o.open(t, b) != open {
				t.Fatalf("OpenAt(%s): got next %s, but the state changes at %s", show(x, o.loc), show(next, o.loc), show(b, o.loc))
			}
		}
		if o.open(t, next) == open {
			t.Fatalf("OpenAt(%s): got next %s, but the state is still %v there", show(x, o.loc), show(next, o.loc), open)
		}
		before := next.Add(-time.Nanosecond)
		if got, _ := s.OpenAt(before); got != open {
			t.Fatalf("OpenAt(%s): got open %v, want %v as one nanosecond later is the change", show(before, o.loc), got, open)
		}
		nowOpen, nowNext := s.OpenAt(next)
		if nowOpen == open {
			t.Fatalf("OpenAt(%s): got open %v, want the state to flip to %v", show(next, o.loc), nowOpen, !open)
		}
		x, open, next = next, nowOpen, nowNext
		flips++
	}
	if flips == 0 {
		t.Errorf("walk from %s: no state changes at all; the test proves little", show(x, o.loc))
	}
}
