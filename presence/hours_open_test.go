package presence

import (
	"strings"
	"testing"
	"time"
)

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
