package presence

import (
	"testing"
	"time"
)

// t0 is an arbitrary fixed instant; tests never look at the clock.
var t0 = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// at returns t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func live(id string) Device {
	return Device{ID: id, Kind: Desktop, Since: t0, Session: id + "-s1", State: Live}
}

func lingering(id string) Device {
	return Device{ID: id, Kind: Desktop, Since: t0, Session: id + "-s1", State: Lingering}
}

var (
	widgetOnline  = Widget{Status: Online, Reason: ReasonAgentsOnline}
	widgetBusy    = Widget{Status: Busy, Reason: ReasonAllBusy}
	widgetOffline = Widget{Status: Offline, Reason: ReasonNoAgents}
)

func mustAgent(t *testing.T, s *Site, id string) *Agent {
	t.Helper()
	a, ok := s.Agent(id)
	if !ok {
		t.Fatalf("Site.Agent(%q): got not found, want the agent", id)
	}
	return a
}

func wantNoAgent(t *testing.T, s *Site, id string) {
	t.Helper()
	if a, ok := s.Agent(id); ok {
		t.Fatalf("Site.Agent(%q): got %+v, want not found", id, *a)
	}
}

func wantWidget(t *testing.T, s *Site, group string, want Widget) {
	t.Helper()
	if got := s.Widget(group); got != want {
		t.Errorf("Widget(%q): got %+v, want %+v", group, got, want)
	}
}

// checkTallies checks the site's internal running tallies against a
// recount from scratch, and that no empty or negative group tally is kept.
func checkTallies(t *testing.T, s *Site) {
	t.Helper()
	var all, ungrouped tally
	groups := map[string]tally{}
	for _, a := range s.agents {
		st := a.Effective()
		if st == Offline {
			continue
		}
		all.add(st, 1)
		if len(a.Groups) == 0 {
			ungrouped.add(st, 1)
		}
		for _, g := range a.Groups {
			x := groups[g]
			x.add(st, 1)
			groups[g] = x
		}
	}
	if s.all != all {
		t.Errorf("site tally: got %+v, want %+v", s.all, all)
	}
	if s.ungrouped != ungrouped {
		t.Errorf("ungrouped tally: got %+v, want %+v", s.ungrouped, ungrouped)
	}
	for g, x := range s.groups {
		if x == nil || *x == (tally{}) || x.online < 0 || x.busy < 0 {
			t.Errorf("group %q tally: got %+v, want a positive tally or none", g, x)
			continue
		}
		if *x != groups[g] {
			t.Errorf("group %q tally: got %+v, want %+v", g, *x, groups[g])
		}
	}
	for g, x := range groups {
		if _, ok := s.groups[g]; !ok {
			t.Errorf("group %q tally: got none, want %+v", g, x)
		}
	}
}
