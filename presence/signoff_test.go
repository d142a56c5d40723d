package presence

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// daily is a schedule open from to until every day, in UTC.
func daily(from, until string) *Schedule {
	s := &Schedule{Timezone: "UTC", Weekly: map[string][]Interval{}}
	for _, d := range weekdayNames {
		s.Weekly[d] = []Interval{{From: from, To: until}}
	}
	return s
}

// signOffSite is a site open 09:00-17:00, whose sales group is open
// 09:00-18:00 and whose support group has no hours of its own.
func signOffSite() *Site {
	s := NewSite()
	s.SetHours("", daily("09:00", "17:00"))
	s.SetHours("sales", daily("09:00", "18:00"))
	s.SetAgent("alice", Online, nil)                         // the site's hours
	s.SetAgent("bob", Online, []string{"sales"})             // the sales hours
	s.SetAgent("carol", Busy, []string{"support"})           // the site's hours, through support
	s.SetAgent("dave", Offline, nil)                         // signed off already
	s.SetAgent("erin", Online, []string{"sales", "support"}) // both: works while either is open
	return s
}

// Monday 7 December 2026, UTC.
func monday(hour int) time.Time { return time.Date(2026, 12, 7, hour, 0, 0, 0, time.UTC) }

// TestSignOffAt: a close signs off the online and busy agents its hours
// govern, unless another of their groups is still open.
func TestSignOffAt(t *testing.T) {
	s := signOffSite()
	for _, tt := range []struct {
		hoursGroup string
		at         time.Time
		want       []string
	}{
		{"", monday(17), []string{"alice", "carol"}},
		{"sales", monday(18), []string{"bob", "erin"}},
		{"", monday(12), nil}, // open: the site's hours sign nobody off
		{"sales", monday(17), nil},
	} {
		if got := s.SignOffAt(tt.hoursGroup, tt.at); !slices.Equal(got, tt.want) {
			t.Errorf("SignOffAt(%q, %s) = %v, want %v", tt.hoursGroup, tt.at.Format(time.Kitchen), got, tt.want)
		}
	}
}

// TestClosingSignOffs: only a close of hours of the group's own, on a site
// that signs off at close, signs anybody off.
func TestClosingSignOffs(t *testing.T) {
	s := signOffSite()
	on := Settings{SignOffAtClose: true}
	for _, tt := range []struct {
		name       string
		settings   Settings
		hoursGroup string
		boundary   time.Time
		want       []string
	}{
		{"the site's close", on, "", monday(17), []string{"alice", "carol"}},
		{"the sales close", on, "sales", monday(18), []string{"bob", "erin"}},
		{"sign-off off", Settings{}, "", monday(17), nil},
		{"an opening", on, "", monday(9), nil},
		{"a group without hours of its own", on, "support", monday(17), nil},
	} {
		if got := s.ClosingSignOffs(tt.settings, tt.hoursGroup, tt.boundary); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestSignOffApplies: the sign-off writes only an online or busy status
// set before the close.
func TestSignOffApplies(t *testing.T) {
	closedAt := monday(17)
	for _, tt := range []struct {
		status  Status
		written time.Time
		want    bool
	}{
		{Online, closedAt.Add(-time.Second), true},
		{Busy, closedAt.Add(-time.Hour), true},
		{Online, time.Time{}, true}, // an agent who never chose
		{Offline, closedAt.Add(-time.Hour), false},
		{Online, closedAt, false},
		{Busy, closedAt.Add(time.Second), false},
	} {
		if got := SignOffApplies(tt.status, tt.written, closedAt); got != tt.want {
			t.Errorf("SignOffApplies(%s, written %s) = %v, want %v", tt.status, tt.written.Format(time.TimeOnly), got, tt.want)
		}
	}
}

// TestMissedSignOffs: the catch-up of a view loading on Tuesday at 08:00
// signs off what Monday's closes should have, by records older than those
// closes, unless the settings or the schedule came after the close.
func TestMissedSignOffs(t *testing.T) {
	now := monday(24 + 8)
	on := Settings{SignOffAtClose: true}
	week := monday(0).Add(-7 * 24 * time.Hour)
	stored := func(settings, site, sales time.Time, status map[string]time.Time) StoredAt {
		return StoredAt{
			Settings: settings,
			Hours:    map[string]time.Time{"": site, "sales": sales},
			Status:   func(agent string) time.Time { return status[agent] },
		}
	}
	siteClose := MissedSignOff{HoursGroup: "", Close: monday(17), Agents: []string{"alice", "carol"}}
	salesClose := MissedSignOff{HoursGroup: "sales", Close: monday(18), Agents: []string{"bob", "erin"}}
	for _, tt := range []struct {
		name     string
		settings Settings
		stored   StoredAt
		want     []MissedSignOff
	}{
		{"both closes", on, stored(week, week, week, nil), []MissedSignOff{siteClose, salesClose}},
		{"sign-off off", Settings{}, stored(week, week, week, nil), nil},
		{"settings stored after the closes", on, stored(monday(19), week, week, nil), nil},
		{"settings stored between the closes", on, stored(monday(17).Add(time.Minute), week, week, nil), []MissedSignOff{salesClose}},
		{"settings stored at the close", on, stored(monday(17), week, week, nil), []MissedSignOff{salesClose}},
		{"site's hours stored after its close", on, stored(week, monday(20), week, nil), []MissedSignOff{salesClose}},
		{"sales hours stored after its close", on, stored(week, week, monday(20), nil), []MissedSignOff{siteClose}},
		{"records written after the closes", on, stored(week, week, week, map[string]time.Time{
			"alice": monday(17), "bob": monday(18).Add(time.Second), "carol": monday(16), "erin": monday(17),
		}), []MissedSignOff{
			{HoursGroup: "", Close: monday(17), Agents: []string{"carol"}},
			{HoursGroup: "sales", Close: monday(18), Agents: []string{"erin"}},
		}},
		{"everybody chose after the closes", on, stored(week, week, week, map[string]time.Time{
			"alice": monday(20), "bob": monday(20), "carol": monday(20), "erin": monday(20),
		}), nil},
	} {
		if got := signOffSite().MissedSignOffs(tt.settings, tt.stored, now); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestMissedSignOffsReach: a close is caught up on for SignOffCatchUp,
// a week and a day, and no longer.
func TestMissedSignOffsReach(t *testing.T) {
	s := NewSite()
	// Open on Monday 9 November 2026 only.
	s.SetHours("", &Schedule{Timezone: "UTC", Exceptions: []Exception{{Date: "2026-11-09", Hours: []Interval{{From: "09:00", To: "17:00"}}}}})
	s.SetAgent("alice", Online, nil)
	closedAt := time.Date(2026, 11, 9, 17, 0, 0, 0, time.UTC)
	stored := StoredAt{Hours: map[string]time.Time{}, Status: func(string) time.Time { return time.Time{} }}
	on := Settings{SignOffAtClose: true}
	if got := s.MissedSignOffs(on, stored, closedAt.Add(SignOffCatchUp-time.Second)); len(got) != 1 || !got[0].Close.Equal(closedAt) {
		t.Errorf("just inside the reach: got %+v, want the close of %s", got, closedAt)
	}
	if got := s.MissedSignOffs(on, stored, closedAt.Add(SignOffCatchUp)); got != nil {
		t.Errorf("at the reach: got %+v, want nothing", got)
	}
	if SignOffCatchUp != 8*24*time.Hour {
		t.Errorf("SignOffCatchUp = %v, want a week and a day", SignOffCatchUp)
	}
}
