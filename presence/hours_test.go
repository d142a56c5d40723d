package presence

import (
	"encoding/json"
	"fmt"
	"strings"
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

const exampleSchedule = `{
  "timezone": "Europe/Prague",
  "weekly": {
    "monday": [{"from": "09:00", "to": "12:00"}, {"from": "13:00", "to": "17:00"}],
    "friday": [{"from": "22:00", "to": "06:00"}],
    "sunday": [{"from": "18:00", "to": "24:00"}]
  },
  "exceptions": [
    {"date": "2026-12-24", "closed": true},
    {"date": "2026-12-31", "hours": [{"from": "09:00", "to": "12:00"}]}
  ]
}`

func TestValidate(t *testing.T) {
	var nilSchedule *Schedule
	if err := nilSchedule.Validate(); err == nil {
		t.Errorf("(*Schedule)(nil).Validate(): got nil, want an error")
	}
	s := &Schedule{Timezone: "Europe/Prague", Weekly: map[string][]Interval{"monday": {{From: "09:00", To: "17:00"}}}}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate(): got %v, want nil", err)
	}
	s.Weekly["monday"] = append(s.Weekly["monday"], Interval{From: "16:00", To: "18:00"})
	if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), "weekly.monday[1]: ") {
		t.Errorf("Validate() after adding an overlap: got %v, want an error naming weekly.monday[1]", err)
	}
}

// The week of 2026-06-01 (Monday) to 2026-06-07 (Sunday) has no DST change;
// Prague is on CEST, +02:00.

func TestOpenAtSeveralIntervals(t *testing.T) {
	s := mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{
		"monday":[{"from":"13:00","to":"17:00"},{"from":"09:00","to":"12:00"}],
		"tuesday":[{"from":"08:00","to":"10:00"},{"from":"10:00","to":"12:00"}]}}`)
	runOpenChecks(t, s, []openCheck{
		{"2026-06-01T08:00:00+02:00", false, "2026-06-01T09:00:00+02:00"},
		{"2026-06-01T08:59:59.999999999+02:00", false, "2026-06-01T09:00:00+02:00"},
		{"2026-06-01T09:00:00+02:00", true, "2026-06-01T12:00:00+02:00"},
		{"2026-06-01T11:59:59.999999999+02:00", true, "2026-06-01T12:00:00+02:00"},
		{"2026-06-01T12:00:00+02:00", false, "2026-06-01T13:00:00+02:00"},
		{"2026-06-01T16:59:59.999999999+02:00", true, "2026-06-01T17:00:00+02:00"},
		{"2026-06-01T17:00:00+02:00", false, "2026-06-02T08:00:00+02:00"},
		// Touching intervals join: no change at 10:00.
		{"2026-06-02T08:00:00+02:00", true, "2026-06-02T12:00:00+02:00"},
		{"2026-06-02T09:59:59.999999999+02:00", true, "2026-06-02T12:00:00+02:00"},
		{"2026-06-02T10:00:00+02:00", true, "2026-06-02T12:00:00+02:00"},
		{"2026-06-02T12:00:00+02:00", false, "2026-06-08T09:00:00+02:00"},
		{"2026-06-07T23:59:59+02:00", false, "2026-06-08T09:00:00+02:00"},
		// The location of t does not matter, only the instant.
		{"2026-06-01T07:30:00Z", true, "2026-06-01T12:00:00+02:00"},
		{"2026-06-01T03:30:00-04:00", true, "2026-06-01T12:00:00+02:00"},
	})
}

func TestOpenAtOvernight(t *testing.T) {
	s := mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{
		"friday":[{"from":"22:00","to":"06:00"}],
		"sunday":[{"from":"22:00","to":"02:00"}],
		"monday":[{"from":"09:00","to":"17:00"}]}}`)
	runOpenChecks(t, s, []openCheck{
		{"2026-06-05T21:00:00+02:00", false, "2026-06-05T22:00:00+02:00"},
		{"2026-06-05T21:59:59.999999999+02:00", false, "2026-06-05T22:00:00+02:00"},
		{"2026-06-05T22:00:00+02:00", true, "2026-06-06T06:00:00+02:00"},
		{"2026-06-06T00:00:00+02:00", true, "2026-06-06T06:00:00+02:00"},
		{"2026-06-06T05:59:59.999999999+02:00", true, "2026-06-06T06:00:00+02:00"},
		{"2026-06-06T06:00:00+02:00", false, "2026-06-07T22:00:00+02:00"},
		// Sunday night runs into Monday, the week's wrap.
		{"2026-06-07T23:59:00+02:00", true, "2026-06-08T02:00:00+02:00"},
		{"2026-06-08T01:00:00+02:00", true, "2026-06-08T02:00:00+02:00"},
		{"2026-06-08T02:00:00+02:00", false, "2026-06-08T09:00:00+02:00"},
		// Asked on Monday morning before the wrap, the answer comes from
		// Sunday's interval.
		{"2026-06-08T00:00:00+02:00", true, "2026-06-08T02:00:00+02:00"},
	})
}

func TestOpenAtEndOfDay(t *testing.T) {
	s := mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{
		"monday":[{"from":"20:00","to":"24:00"}],
		"tuesday":[{"from":"00:00","to":"02:00"}],
		"wednesday":[{"from":"18:00","to":"24:00"}],
		"thursday":[{"from":"22:00","to":"00:00"}]}}`)
	runOpenChecks(t, s, []openCheck{
		// Monday 20:00-24:00 and Tuesday 00:00-02:00 join across midnight.
		{"2026-06-01T21:00:00+02:00", true, "2026-06-02T02:00:00+02:00"},
		{"2026-06-01T23:59:59.999999999+02:00", true, "2026-06-02T02:00:00+02:00"},
		{"2026-06-02T00:00:00+02:00", true, "2026-06-02T02:00:00+02:00"},
		{"2026-06-03T23:59:00+02:00", true, "2026-06-04T00:00:00+02:00"},
		{"2026-06-04T00:00:00+02:00", false, "2026-06-04T22:00:00+02:00"},
		// "to": "00:00" after "from" is the same as "24:00".
		{"2026-06-04T23:00:00+02:00", true, "2026-06-05T00:00:00+02:00"},
		{"2026-06-05T00:00:00+02:00", false, "2026-06-08T20:00:00+02:00"},
	})
}

func TestOpenAtExceptions(t *testing.T) {
	// 2026-06-06 and 2026-06-13 are Saturdays, 2026-06-12 a Friday,
	// 2026-06-15 a Monday, 2026-06-24 a Wednesday.
	s := mustSchedule(t, `{"timezone":"Europe/Prague",
		"weekly":{
			"monday":[{"from":"09:00","to":"17:00"}], "tuesday":[{"from":"09:00","to":"17:00"}],
			"wednesday":[{"from":"09:00","to":"17:00"}], "thursday":[{"from":"09:00","to":"17:00"}],
			"friday":[{"from":"22:00","to":"06:00"}], "saturday":[{"from":"10:00","to":"14:00"}]},
		"exceptions":[
			{"date":"2026-06-06","closed":true},
			{"date":"2026-06-12","closed":true},
			{"date":"2026-06-15","hours":[{"from":"15:00","to":"16:00"},{"from":"10:00","to":"11:00"}]},
			{"date":"2026-06-20","hours":[{"from":"08:00","to":"09:00"}]},
			{"date":"2026-06-24","hours":[{"from":"20:00","to":"02:00"}]},
			{"date":"2026-06-07","hours":[{"from":"12:00","to":"13:00"}]}]}`)
	runOpenChecks(t, s, []openCheck{
		// A closed Saturday does not cut Friday's night shift short...
		{"2026-06-05T23:00:00+02:00", true, "2026-06-06T06:00:00+02:00"},
		{"2026-06-06T05:59:59.999999999+02:00", true, "2026-06-06T06:00:00+02:00"},
		// ...but drops Saturday's own hours. Sunday has an exception.
		{"2026-06-06T06:00:00+02:00", false, "2026-06-07T12:00:00+02:00"},
		{"2026-06-06T11:00:00+02:00", false, "2026-06-07T12:00:00+02:00"},
		{"2026-06-07T12:00:00+02:00", true, "2026-06-07T13:00:00+02:00"},
		{"2026-06-07T13:00:00+02:00", false, "2026-06-08T09:00:00+02:00"},
		// A closed Friday drops the whole night shift, Saturday's part too.
		{"2026-06-11T17:00:00+02:00", false, "2026-06-13T10:00:00+02:00"},
		{"2026-06-13T00:30:00+02:00", false, "2026-06-13T10:00:00+02:00"},
		// Custom hours replace Monday's.
		{"2026-06-15T09:30:00+02:00", false, "2026-06-15T10:00:00+02:00"},
		{"2026-06-15T10:00:00+02:00", true, "2026-06-15T11:00:00+02:00"},
		{"2026-06-15T11:00:00+02:00", false, "2026-06-15T15:00:00+02:00"},
		{"2026-06-15T16:00:00+02:00", false, "2026-06-16T09:00:00+02:00"},
		// Custom Saturday hours after Friday's night shift.
		{"2026-06-19T23:00:00+02:00", true, "2026-06-20T06:00:00+02:00"},
		{"2026-06-20T06:00:00+02:00", false, "2026-06-20T08:00:00+02:00"},
		{"2026-06-20T08:00:00+02:00", true, "2026-06-20T09:00:00+02:00"},
		{"2026-06-20T09:00:00+02:00", false, "2026-06-22T09:00:00+02:00"},
		// An exception's overnight hours run into the next day.
		{"2026-06-24T17:00:00+02:00", false, "2026-06-24T20:00:00+02:00"},
		{"2026-06-24T21:00:00+02:00", true, "2026-06-25T02:00:00+02:00"},
		{"2026-06-25T02:00:00+02:00", false, "2026-06-25T09:00:00+02:00"},
	})
}

const everyDay24h = `"monday":[{"from":"00:00","to":"24:00"}],"tuesday":[{"from":"00:00","to":"24:00"}],
	"wednesday":[{"from":"00:00","to":"24:00"}],"thursday":[{"from":"00:00","to":"24:00"}],
	"friday":[{"from":"00:00","to":"24:00"}],"saturday":[{"from":"00:00","to":"24:00"}],
	"sunday":[{"from":"00:00","to":"24:00"}]`

func TestOpenAtAlwaysAndNever(t *testing.T) {
	tests := []struct {
		name   string
		js     string
		checks []openCheck
	}{
		{"no weekly hours", `{"timezone":"Europe/Prague"}`, []openCheck{
			{"2026-06-01T12:00:00+02:00", false, ""},
			{"2026-03-29T02:00:00+02:00", false, ""},
		}},
		{"empty days", `{"timezone":"UTC","weekly":{"monday":[],"friday":[]}}`, []openCheck{
			{"2026-06-01T12:00:00Z", false, ""},
		}},
		{"24/7", `{"timezone":"Europe/Prague","weekly":{` + everyDay24h + `}}`, []openCheck{
			{"2026-06-01T12:00:00+02:00", true, ""},
			{"2026-06-07T23:59:59.999999999+02:00", true, ""},
			// Across both DST changes.
			{"2026-03-29T01:00:00Z", true, ""},
			{"2026-10-25T01:00:00Z", true, ""},
		}},
		{"24/7 with a closed day", `{"timezone":"Europe/Prague","weekly":{` + everyDay24h + `},
			"exceptions":[{"date":"2026-12-24","closed":true}]}`, []openCheck{
			{"2026-06-01T12:00:00+02:00", true, "2026-12-24T00:00:00+01:00"},
			{"2026-12-24T12:00:00+01:00", false, "2026-12-25T00:00:00+01:00"},
			{"2026-12-25T00:00:00+01:00", true, ""},
		}},
		// Further than the ~400 days OpenAt scans for a changing week.
		{"24/7 with an exception years ahead", `{"timezone":"Europe/Prague","weekly":{` + everyDay24h + `},
			"exceptions":[{"date":"2030-01-01","hours":[{"from":"10:00","to":"12:00"}]}]}`, []openCheck{
			{"2026-06-01T12:00:00+02:00", true, "2030-01-01T00:00:00+01:00"},
			{"2030-01-01T05:00:00+01:00", false, "2030-01-01T10:00:00+01:00"},
			{"2030-01-01T10:00:00+01:00", true, "2030-01-01T12:00:00+01:00"},
			{"2030-01-01T12:00:00+01:00", false, "2030-01-02T00:00:00+01:00"},
			{"2030-01-02T00:00:00+01:00", true, ""},
			{"2031-01-02T00:00:00+01:00", true, ""},
		}},
		{"never open but one day years ahead", `{"timezone":"America/New_York",
			"exceptions":[{"date":"2029-07-04","hours":[{"from":"10:00","to":"14:00"}]}]}`, []openCheck{
			{"2026-06-01T12:00:00-04:00", false, "2029-07-04T10:00:00-04:00"},
			{"2029-07-04T13:59:59.999999999-04:00", true, "2029-07-04T14:00:00-04:00"},
			{"2029-07-04T14:00:00-04:00", false, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runOpenChecks(t, mustSchedule(t, tt.js), tt.checks)
		})
	}
}

func TestOpenAtAlwaysOpenWeekSpillIntoException(t *testing.T) {
	// Open around the clock, but made of pieces: Friday's 20:00-08:00 runs
	// into Saturday. A closed Saturday keeps that spill.
	s := mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{
		"monday":[{"from":"00:00","to":"24:00"}],"tuesday":[{"from":"00:00","to":"24:00"}],
		"wednesday":[{"from":"00:00","to":"24:00"}],"thursday":[{"from":"00:00","to":"24:00"}],
		"friday":[{"from":"00:00","to":"20:00"},{"from":"20:00","to":"08:00"}],
		"saturday":[{"from":"08:00","to":"24:00"}],
		"sunday":[{"from":"00:00","to":"24:00"}]},
		"exceptions":[{"date":"2026-12-26","closed":true}]}`)
	runOpenChecks(t, s, []openCheck{
		{"2026-06-01T12:00:00+02:00", true, "2026-12-26T08:00:00+01:00"},
		{"2026-12-26T08:00:00+01:00", false, "2026-12-27T00:00:00+01:00"},
		{"2026-12-27T00:00:00+01:00", true, ""},
	})
}

// DST in 2026: Europe/Prague springs forward on 03-29 (02:00 CET -> 03:00
// CEST, 01:00 UTC) and falls back on 10-25 (03:00 CEST -> 02:00 CET, 01:00
// UTC); America/New_York springs forward on 03-08 (02:00 EST -> 03:00 EDT,
// 07:00 UTC) and falls back on 11-01 (02:00 EDT -> 01:00 EST, 06:00 UTC).
// All four days are Sundays.

func TestOpenAtDST(t *testing.T) {
	tests := []struct {
		name   string
		js     string
		checks []openCheck
	}{
		{"Prague spring: from in the gap opens when the gap ends", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"02:30","to":"05:00"}]}}`, []openCheck{
			{"2026-03-22T00:00:00+01:00", false, "2026-03-22T02:30:00+01:00"}, // an ordinary Sunday
			{"2026-03-28T12:00:00+01:00", false, "2026-03-29T03:00:00+02:00"},
			{"2026-03-29T00:59:59.999999999Z", false, "2026-03-29T01:00:00Z"},
			{"2026-03-29T01:00:00Z", true, "2026-03-29T03:00:00Z"},
		}},
		{"Prague spring: to in the gap closes when the gap ends", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"01:00","to":"02:30"}]}}`, []openCheck{
			{"2026-03-29T01:00:00+01:00", true, "2026-03-29T03:00:00+02:00"}, // one real hour
			{"2026-03-29T01:59:59.999999999+01:00", true, "2026-03-29T03:00:00+02:00"},
			{"2026-03-29T03:00:00+02:00", false, "2026-04-05T01:00:00+02:00"},
		}},
		{"Prague spring: an interval inside the gap never opens", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"02:10","to":"02:50"}]}}`, []openCheck{
			{"2026-03-28T12:00:00+01:00", false, "2026-04-05T02:10:00+02:00"},
		}},
		{"Prague spring: a closed gap inside the DST gap disappears", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"01:00","to":"02:15"},{"from":"02:45","to":"04:00"}]}}`, []openCheck{
			{"2026-03-29T01:30:00+01:00", true, "2026-03-29T04:00:00+02:00"},
			{"2026-03-22T01:30:00+01:00", true, "2026-03-22T02:15:00+01:00"},
		}},
		{"Prague fall: 01:00-03:00 lasts three hours", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"01:00","to":"03:00"}]}}`, []openCheck{
			{"2026-10-24T12:00:00+02:00", false, "2026-10-25T01:00:00+02:00"},
			{"2026-10-25T01:00:00+02:00", true, "2026-10-25T03:00:00+01:00"},
			{"2026-10-25T02:30:00+02:00", true, "2026-10-25T03:00:00+01:00"}, // first 02:30
			{"2026-10-25T02:30:00+01:00", true, "2026-10-25T03:00:00+01:00"}, // second 02:30
			{"2026-10-25T02:59:59.999999999+01:00", true, "2026-10-25T03:00:00+01:00"},
		}},
		{"Prague fall: from in the overlap is the first occurrence", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"02:30","to":"04:00"}]}}`, []openCheck{
			{"2026-10-25T00:00:00+02:00", false, "2026-10-25T02:30:00+02:00"},
			{"2026-10-25T02:29:59.999999999+02:00", false, "2026-10-25T02:30:00+02:00"},
			{"2026-10-25T02:30:00+02:00", true, "2026-10-25T04:00:00+01:00"},
		}},
		{"Prague fall: to in the overlap is the first occurrence", `{"timezone":"Europe/Prague","weekly":{"sunday":[{"from":"00:00","to":"02:30"}]}}`, []openCheck{
			{"2026-10-25T00:00:00+02:00", true, "2026-10-25T02:30:00+02:00"},
			{"2026-10-25T02:30:00+02:00", false, "2026-11-01T00:00:00+01:00"},
			{"2026-10-25T02:10:00+01:00", false, "2026-11-01T00:00:00+01:00"}, // second 02:10 is closed
		}},
		{"New York spring", `{"timezone":"America/New_York","weekly":{"sunday":[{"from":"02:30","to":"05:00"}],"saturday":[{"from":"22:00","to":"02:15"}]}}`, []openCheck{
			{"2026-03-07T12:00:00-05:00", false, "2026-03-07T22:00:00-05:00"},
			// Saturday night ends at 02:15, in the gap, and Sunday starts at
			// 02:30, in the gap: both mean 03:00 EDT, so they join.
			{"2026-03-07T22:00:00-05:00", true, "2026-03-08T05:00:00-04:00"},
			{"2026-03-08T01:59:59.999999999-05:00", true, "2026-03-08T05:00:00-04:00"},
			{"2026-03-08T07:00:00Z", true, "2026-03-08T05:00:00-04:00"},
			{"2026-03-08T05:00:00-04:00", false, "2026-03-14T22:00:00-04:00"},
		}},
		{"New York spring, nothing joins", `{"timezone":"America/New_York","weekly":{"sunday":[{"from":"02:30","to":"05:00"}]}}`, []openCheck{
			{"2026-03-07T12:00:00-05:00", false, "2026-03-08T03:00:00-04:00"},
			{"2026-03-08T06:59:59.999999999Z", false, "2026-03-08T07:00:00Z"},
			{"2026-03-08T07:00:00Z", true, "2026-03-08T09:00:00Z"},
		}},
		{"New York fall: 01:00-03:00 lasts three hours", `{"timezone":"America/New_York","weekly":{"sunday":[{"from":"01:00","to":"03:00"}]}}`, []openCheck{
			{"2026-10-31T12:00:00-04:00", false, "2026-11-01T01:00:00-04:00"},
			{"2026-11-01T01:00:00-04:00", true, "2026-11-01T03:00:00-05:00"},
			{"2026-11-01T01:30:00-05:00", true, "2026-11-01T03:00:00-05:00"},
		}},
		{"New York fall: from and to in the overlap", `{"timezone":"America/New_York","weekly":{"sunday":[{"from":"01:30","to":"02:00"}],"saturday":[{"from":"20:00","to":"01:15"}]}}`, []openCheck{
			{"2026-10-31T20:00:00-04:00", true, "2026-11-01T01:15:00-04:00"},
			{"2026-11-01T01:15:00-04:00", false, "2026-11-01T01:30:00-04:00"},
			// 02:00 happens once, in EST: 01:30-02:00 lasts 90 real minutes.
			{"2026-11-01T01:30:00-04:00", true, "2026-11-01T02:00:00-05:00"},
			{"2026-11-01T01:10:00-05:00", true, "2026-11-01T02:00:00-05:00"},
			{"2026-11-01T02:00:00-05:00", false, "2026-11-07T20:00:00-05:00"},
		}},
		// America/Havana changes at midnight: 2026-03-08 starts at 01:00,
		// and 2026-11-01's 00:00-01:00 happens twice.
		{"Havana: midnight in the gap", `{"timezone":"America/Havana","weekly":{"saturday":[{"from":"20:00","to":"24:00"}],"sunday":[{"from":"00:00","to":"02:00"}]}}`, []openCheck{
			{"2026-03-07T21:00:00-05:00", true, "2026-03-08T02:00:00-04:00"},
			{"2026-03-08T01:00:00-04:00", true, "2026-03-08T02:00:00-04:00"},
		}},
		{"Havana: 24:00 at a repeated midnight", `{"timezone":"America/Havana","weekly":{"saturday":[{"from":"20:00","to":"24:00"}],"sunday":[{"from":"00:30","to":"02:00"}]}}`, []openCheck{
			{"2026-10-31T21:00:00-04:00", true, "2026-11-01T00:00:00-04:00"},
			{"2026-11-01T00:00:00-04:00", false, "2026-11-01T00:30:00-04:00"},
			{"2026-11-01T00:10:00-05:00", true, "2026-11-01T02:00:00-05:00"},
		}},
		{"Lord Howe: half-hour gap", `{"timezone":"Australia/Lord_Howe","weekly":{"sunday":[{"from":"02:15","to":"03:00"}]}}`, []openCheck{
			{"2026-10-03T12:00:00+10:30", false, "2026-10-04T02:30:00+11:00"},
			{"2026-10-04T02:30:00+11:00", true, "2026-10-04T03:00:00+11:00"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runOpenChecks(t, mustSchedule(t, tt.js), tt.checks)
		})
	}
}

// TestResolveWallTime pins which instant a wall time stands for.
func TestResolveWallTime(t *testing.T) {
	tests := []struct {
		zone, date, clock string
		want              string
	}{
		{"Europe/Prague", "2026-06-01", "09:00", "2026-06-01T09:00:00+02:00"},
		{"Europe/Prague", "2026-06-01", "24:00", "2026-06-02T00:00:00+02:00"},
		{"Europe/Prague", "2026-03-29", "01:59", "2026-03-29T01:59:00+01:00"},
		{"Europe/Prague", "2026-03-29", "02:00", "2026-03-29T03:00:00+02:00"},
		{"Europe/Prague", "2026-03-29", "02:30", "2026-03-29T03:00:00+02:00"},
		{"Europe/Prague", "2026-03-29", "03:00", "2026-03-29T03:00:00+02:00"},
		{"Europe/Prague", "2026-10-25", "01:59", "2026-10-25T01:59:00+02:00"},
		{"Europe/Prague", "2026-10-25", "02:00", "2026-10-25T02:00:00+02:00"},
		{"Europe/Prague", "2026-10-25", "02:30", "2026-10-25T02:30:00+02:00"},
		{"Europe/Prague", "2026-10-25", "02:59", "2026-10-25T02:59:00+02:00"},
		{"Europe/Prague", "2026-10-25", "03:00", "2026-10-25T03:00:00+01:00"},
		{"America/New_York", "2026-03-08", "02:00", "2026-03-08T03:00:00-04:00"},
		{"America/New_York", "2026-03-08", "02:30", "2026-03-08T03:00:00-04:00"},
		{"America/New_York", "2026-03-08", "03:00", "2026-03-08T03:00:00-04:00"},
		{"America/New_York", "2026-11-01", "00:59", "2026-11-01T00:59:00-04:00"},
		{"America/New_York", "2026-11-01", "01:00", "2026-11-01T01:00:00-04:00"},
		{"America/New_York", "2026-11-01", "01:30", "2026-11-01T01:30:00-04:00"},
		{"America/New_York", "2026-11-01", "02:00", "2026-11-01T02:00:00-05:00"},
		{"America/Havana", "2026-03-08", "00:00", "2026-03-08T01:00:00-04:00"},
		{"America/Havana", "2026-03-07", "24:00", "2026-03-08T01:00:00-04:00"},
		{"America/Havana", "2026-11-01", "00:00", "2026-11-01T00:00:00-04:00"},
		{"America/Havana", "2026-10-31", "24:00", "2026-11-01T00:00:00-04:00"},
		{"America/Santiago", "2026-09-06", "00:30", "2026-09-06T01:00:00-03:00"},
		{"America/Santiago", "2026-04-04", "23:30", "2026-04-04T23:30:00-03:00"},
		{"America/Santiago", "2026-04-04", "24:00", "2026-04-05T00:00:00-04:00"},
		{"Australia/Lord_Howe", "2026-10-04", "02:15", "2026-10-04T02:30:00+11:00"},
		{"Australia/Lord_Howe", "2026-04-05", "01:45", "2026-04-05T01:45:00+11:00"},
		{"UTC", "2026-03-29", "02:30", "2026-03-29T02:30:00Z"},
	}
	for _, tt := range tests {
		c := &compiled{loc: mustLoc(t, tt.zone)}
		day, err := parseDate(tt.date)
		if err != nil {
			t.Fatalf("parseDate(%q): %v", tt.date, err)
		}
		minute, ok := parseClock(tt.clock, true)
		if !ok {
			t.Fatalf("parseClock(%q) failed", tt.clock)
		}
		got, want := c.resolve(day, minute), instant(t, tt.want)
		if !got.Equal(want) {
			t.Errorf("%s %s %s: got %s, want %s", tt.zone, tt.date, tt.clock, show(got, c.loc), show(want, c.loc))
		}
		if got.Location() != c.loc {
			t.Errorf("%s %s %s: got location %v, want %v", tt.zone, tt.date, tt.clock, got.Location(), c.loc)
		}
	}
}

// TestGoTimeDateAtTransitions records what time.Date itself does with wall
// times that do not exist or happen twice: it is not consistent from zone
// to zone, which is why resolve corrects it. resolve works whichever side
// time.Date picks, so if a Go release changes this, update the table.
func TestGoTimeDateAtTransitions(t *testing.T) {
	tests := []struct {
		zone             string
		y, mo, d, h, min int
		want             string
	}{
		{"Europe/Prague", 2026, 3, 29, 2, 30, "2026-03-29T03:30:00+02:00"},    // gap: after it, +1h
		{"America/New_York", 2026, 3, 8, 2, 30, "2026-03-08T01:30:00-05:00"},  // gap: before it, -1h
		{"Europe/Prague", 2026, 10, 25, 2, 30, "2026-10-25T02:30:00+01:00"},   // overlap: second
		{"America/New_York", 2026, 11, 1, 1, 30, "2026-11-01T01:30:00-04:00"}, // overlap: first
	}
	for _, tt := range tests {
		loc := mustLoc(t, tt.zone)
		got := time.Date(tt.y, time.Month(tt.mo), tt.d, tt.h, tt.min, 0, 0, loc)
		if want := instant(t, tt.want); !got.Equal(want) {
			t.Errorf("time.Date(%d-%02d-%02d %02d:%02d %s): got %s, want %s", tt.y, tt.mo, tt.d, tt.h, tt.min, tt.zone, show(got, loc), show(want, loc))
		}
	}
}

func TestOpenAtInvalidScheduleRestrictsNothing(t *testing.T) {
	for _, s := range []*Schedule{
		nil,
		{Timezone: "Nowhere/Land"},
		{Timezone: "UTC", Weekly: map[string][]Interval{"monday": {{From: "9", To: "17"}}}},
	} {
		open, next := s.OpenAt(instant(t, "2026-06-01T12:00:00Z"))
		if !open || !next.IsZero() {
			t.Errorf("%+v.OpenAt: got open %v next %v, want open true, next zero", s, open, next)
		}
	}
}

func TestEffectiveSchedule(t *testing.T) {
	site, group := &Schedule{Timezone: "UTC"}, &Schedule{Timezone: "Europe/Prague"}
	tests := []struct {
		name        string
		site, group *Schedule
		want        *Schedule
	}{
		{"neither", nil, nil, nil},
		{"site only", site, nil, site},
		{"group only", nil, group, group},
		{"group wins", site, group, group},
	}
	for _, tt := range tests {
		if got := EffectiveSchedule(tt.site, tt.group); got != tt.want {
			t.Errorf("%s: got %p, want %p", tt.name, got, tt.want)
		}
	}
}

func TestApplyHours(t *testing.T) {
	s := mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{"monday":[{"from":"09:00","to":"17:00"}]}}`)
	outside := Widget{Status: Offline, Reason: ReasonOutsideHours}
	tests := []struct {
		name     string
		w        Widget
		s        *Schedule
		now      string
		want     Widget
		wantNext string
	}{
		{"no schedule", widgetOnline, nil, "2026-06-01T20:00:00+02:00", widgetOnline, ""},
		{"open, online", widgetOnline, s, "2026-06-01T10:00:00+02:00", widgetOnline, "2026-06-01T17:00:00+02:00"},
		{"open, busy", widgetBusy, s, "2026-06-01T10:00:00+02:00", widgetBusy, "2026-06-01T17:00:00+02:00"},
		{"open, no agents", widgetOffline, s, "2026-06-01T10:00:00+02:00", widgetOffline, "2026-06-01T17:00:00+02:00"},
		{"closed, online", widgetOnline, s, "2026-06-01T17:00:00+02:00", outside, "2026-06-08T09:00:00+02:00"},
		{"closed, no agents", widgetOffline, s, "2026-06-01T08:00:00+02:00", outside, "2026-06-01T09:00:00+02:00"},
		{"never open", widgetBusy, &Schedule{Timezone: "UTC"}, "2026-06-01T08:00:00Z", outside, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := ApplyHours(tt.w, tt.s, instant(t, tt.now))
			if got != tt.want {
				t.Errorf("got widget %+v, want %+v", got, tt.want)
			}
			if want := instant(t, tt.wantNext); !sameInstant(next, want) {
				t.Errorf("got next %s, want %s", show(next, time.UTC), show(want, time.UTC))
			}
		})
	}
}

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

func BenchmarkOpenAt(b *testing.B) {
	s, err := parseSchedule([]byte(exampleSchedule))
	if err != nil {
		b.Fatal(err)
	}
	x := time.Date(2026, 6, 3, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		s.OpenAt(x)
	}
}

// TestLastClose: the latest closing boundary in (t-within, t], in the
// schedule's zone, across a DST change, an overnight interval, touching
// intervals (one stretch, one close) and an exception day.
func TestLastClose(t *testing.T) {
	prague := mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{
	  "monday":[{"from":"09:00","to":"17:00"}],"tuesday":[{"from":"09:00","to":"12:00"},{"from":"12:00","to":"17:00"}],
	  "wednesday":[{"from":"09:00","to":"17:00"}],"thursday":[{"from":"09:00","to":"17:00"}],
	  "friday":[{"from":"22:00","to":"06:00"}],"sunday":[{"from":"09:00","to":"17:00"}]},
	  "exceptions":[{"date":"2026-10-28","closed":true}]}`)
	week := 8 * 24 * time.Hour
	for _, c := range []struct {
		name, at string
		within   time.Duration
		want     string
	}{
		{"after Monday's close", "2026-10-26T20:00:00+01:00", week, "2026-10-26T17:00:00+01:00"},
		{"at the close itself", "2026-10-26T17:00:00+01:00", week, "2026-10-26T17:00:00+01:00"},
		{"just before it: Sunday's, the DST day", "2026-10-26T16:59:59+01:00", week, "2026-10-25T17:00:00+01:00"},
		{"touching intervals close once", "2026-10-27T13:00:00+01:00", time.Hour, ""},
		{"Tuesday's one close", "2026-10-27T18:00:00+01:00", week, "2026-10-27T17:00:00+01:00"},
		{"a closed exception day adds none", "2026-10-28T18:00:00+01:00", week, "2026-10-27T17:00:00+01:00"},
		{"overnight: Saturday 06:00", "2026-10-31T10:00:00+01:00", week, "2026-10-31T06:00:00+01:00"},
		{"open now: the last one before", "2026-10-29T10:00:00+01:00", week, "2026-10-27T17:00:00+01:00"},
		{"none within the window", "2026-10-26T20:00:00+01:00", 2 * time.Hour, ""},
		{"the window's start is excluded", "2026-10-26T19:00:00+01:00", 2 * time.Hour, ""},
	} {
		got := prague.LastClose(instant(t, c.at), c.within)
		if want := instant(t, c.want); !sameInstant(got, want) {
			t.Errorf("%s: LastClose(%s, %v) = %s, want %s", c.name, c.at, c.within, show(got, mustLoc(t, "Europe/Prague")), show(want, mustLoc(t, "Europe/Prague")))
		}
	}
	for _, js := range []string{
		`{"timezone":"UTC","weekly":{}}`, // never open
		`{"timezone":"UTC","weekly":{"monday":[{"from":"00:00","to":"24:00"}],"tuesday":[{"from":"00:00","to":"24:00"}],"wednesday":[{"from":"00:00","to":"24:00"}],"thursday":[{"from":"00:00","to":"24:00"}],"friday":[{"from":"00:00","to":"24:00"}],"saturday":[{"from":"00:00","to":"24:00"}],"sunday":[{"from":"00:00","to":"24:00"}]}}`,
	} {
		if got := mustSchedule(t, js).LastClose(instant(t, "2026-10-26T20:00:00Z"), week); !got.IsZero() {
			t.Errorf("LastClose of %s = %v, want zero: it never closes", js, got)
		}
	}
}
