package presence

import (
	"testing"
	"time"
)

// TestSiteWidgetAt checks the whole widget question on one site: agents,
// the site's hours, and a group with hours of its own, while a group
// without its own follows the site's.
func TestSiteWidgetAt(t *testing.T) {
	s := NewSite()
	s.SetAgent("ana", Online, []string{"night"})
	s.SetDevice("ana", Device{ID: "d1", State: Live})
	s.SetAgent("bob", Busy, []string{"sales"})
	s.SetDevice("bob", Device{ID: "d2", State: Live})
	s.SetHours("", mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{"monday":[{"from":"09:00","to":"17:00"}]}}`))
	s.SetHours("night", mustSchedule(t, `{"timezone":"Europe/Prague","weekly":{"monday":[{"from":"17:00","to":"24:00"}]}}`))
	outside := Widget{Status: Offline, Reason: ReasonOutsideHours}

	tests := []struct {
		name, group, now string
		want             Widget
		wantNext         string
	}{
		{"site, open", "", "2026-06-01T10:00:00+02:00", widgetOnline, "2026-06-01T17:00:00+02:00"},
		{"site, closed", "", "2026-06-01T18:00:00+02:00", outside, "2026-06-08T09:00:00+02:00"},
		{"group without hours follows the site, open", "sales", "2026-06-01T10:00:00+02:00", widgetBusy, "2026-06-01T17:00:00+02:00"},
		{"group without hours follows the site, closed", "sales", "2026-06-01T18:00:00+02:00", outside, "2026-06-08T09:00:00+02:00"},
		{"group with its own hours, closed while the site is open", "night", "2026-06-01T10:00:00+02:00", outside, "2026-06-01T17:00:00+02:00"},
		{"group with its own hours, open while the site is closed", "night", "2026-06-01T18:00:00+02:00", widgetOnline, "2026-06-02T00:00:00+02:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := s.WidgetAt(tt.group, instant(t, tt.now))
			if got != tt.want {
				t.Errorf("got widget %+v, want %+v", got, tt.want)
			}
			if want := instant(t, tt.wantNext); !sameInstant(next, want) {
				t.Errorf("got next %s, want %s", show(next, time.UTC), show(want, time.UTC))
			}
		})
	}

	governed := []struct {
		group, hoursGroup string
		want              bool
	}{
		{"", "", true},
		{"sales", "", true},  // no hours of its own: follows the site's
		{"night", "", false}, // its own hours win
		{"night", "night", true},
		{"sales", "night", false},
		{"", "night", false},
	}
	for _, g := range governed {
		if got := s.GovernedBy(g.group, g.hoursGroup); got != g.want {
			t.Errorf("GovernedBy(%q, %q) = %v, want %v", g.group, g.hoursGroup, got, g.want)
		}
	}

	s.SetHours("night", nil)
	if got, _ := s.WidgetAt("night", instant(t, "2026-06-01T18:00:00+02:00")); got != outside {
		t.Errorf("got %+v for a group whose own hours were removed, outside the site's, want %+v", got, outside)
	}
	if !s.GovernedBy("night", "") {
		t.Error("got a group whose own hours were removed not following the site's")
	}
	if got := s.HoursGroups(); len(got) != 1 || got[0] != "" {
		t.Errorf("got hours groups %q, want only the site's", got)
	}
}

func TestSiteCounts(t *testing.T) {
	s := NewSite()
	s.SetAgent("ana", Online, nil)
	s.SetDevice("ana", Device{ID: "d1", State: Live})
	s.SetAgent("bob", Busy, []string{"sales"})
	s.SetDevice("bob", Device{ID: "d2", State: Lingering})
	s.SetAgent("cid", Online, nil) // no device: offline
	want := Counts{Online: 1, Busy: 1, Offline: 1, Lingering: 1}
	if got := s.Counts(); got != want || got.Total() != 3 {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	s.SetDevice("bob", Device{ID: "d2", State: Live}) // back inside the grace
	s.RemoveDevice("ana", "d1")
	want = Counts{Online: 0, Busy: 1, Offline: 2}
	if got := s.Counts(); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
