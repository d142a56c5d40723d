package presence

import (
	"testing"
	"time"
)

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
