package presence

import (
	"testing"
)

func TestChangeTouches(t *testing.T) {
	tests := []struct {
		name          string
		ch            Change
		wantEffective bool
		wantGroups    bool
		touches       map[string]bool
	}{
		{
			name:    "nothing changed, ungrouped",
			ch:      Change{Before: Online, After: Online},
			touches: map[string]bool{"": false, "a": false, "b": false},
		},
		{
			name:    "nothing changed, grouped",
			ch:      Change{Before: Busy, After: Busy, BeforeGroups: []string{"a"}, AfterGroups: []string{"a"}},
			touches: map[string]bool{"": false, "a": false, "b": false},
		},
		{
			name:    "only devices changed",
			ch:      Change{Before: Online, After: Online, DevicesChanged: true},
			touches: map[string]bool{"": false, "a": false},
		},
		{
			name:          "ungrouped agent goes online",
			ch:            Change{Before: Offline, After: Online},
			wantEffective: true,
			touches:       map[string]bool{"": true, "a": true, "b": true, "anything": true},
		},
		{
			name:          "grouped agent goes busy",
			ch:            Change{Before: Online, After: Busy, BeforeGroups: []string{"a"}, AfterGroups: []string{"a"}},
			wantEffective: true,
			touches:       map[string]bool{"": true, "a": true, "b": false},
		},
		{
			name:          "agent in two groups goes offline",
			ch:            Change{Before: Online, After: Offline, BeforeGroups: []string{"a", "b"}, AfterGroups: []string{"a", "b"}},
			wantEffective: true,
			touches:       map[string]bool{"": true, "a": true, "b": true, "c": false},
		},
		{
			name:       "moves from a to b",
			ch:         Change{Before: Online, After: Online, BeforeGroups: []string{"a"}, AfterGroups: []string{"b"}},
			wantGroups: true,
			touches:    map[string]bool{"": false, "a": true, "b": true, "c": false},
		},
		{
			name:       "leaves every group",
			ch:         Change{Before: Online, After: Online, BeforeGroups: []string{"a"}},
			wantGroups: true,
			touches:    map[string]bool{"": false, "a": true, "b": true, "c": true},
		},
		{
			name:       "joins a group from none",
			ch:         Change{Before: Busy, After: Busy, AfterGroups: []string{"a"}},
			wantGroups: true,
			touches:    map[string]bool{"": false, "a": true, "b": true, "c": true},
		},
		{
			name:       "adds a second group",
			ch:         Change{Before: Online, After: Online, BeforeGroups: []string{"a"}, AfterGroups: []string{"a", "b"}},
			wantGroups: true,
			touches:    map[string]bool{"": false, "a": true, "b": true, "c": false},
		},
		{
			name:          "moves and changes status",
			ch:            Change{Before: Offline, After: Online, BeforeGroups: []string{"a"}, AfterGroups: []string{"b"}},
			wantEffective: true,
			wantGroups:    true,
			touches:       map[string]bool{"": true, "a": true, "b": true, "c": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ch.EffectiveChanged(); got != tt.wantEffective {
				t.Errorf("EffectiveChanged(): got %v, want %v", got, tt.wantEffective)
			}
			if got := tt.ch.GroupsChanged(); got != tt.wantGroups {
				t.Errorf("GroupsChanged(): got %v, want %v", got, tt.wantGroups)
			}
			for g, want := range tt.touches {
				if got := tt.ch.Touches(g); got != want {
					t.Errorf("Touches(%q): got %v, want %v", g, got, want)
				}
			}
		})
	}
}

// TestChangeTouchesFromSite checks the Changes the site itself reports.
func TestChangeTouchesFromSite(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*Site)
		op      func(*Site) Change
		touches map[string]bool
	}{
		{
			name:    "ungrouped agent connects",
			setup:   func(s *Site) { s.SetAgent("u", Online, nil) },
			op:      func(s *Site) Change { return s.SetDevice("u", live("d1")) },
			touches: map[string]bool{"": true, "sales": true, "support": true},
		},
		{
			name:    "sales agent connects",
			setup:   func(s *Site) { s.SetAgent("x", Online, []string{"sales"}) },
			op:      func(s *Site) Change { return s.SetDevice("x", live("d1")) },
			touches: map[string]bool{"": true, "sales": true, "support": false},
		},
		{
			name: "sales agent drops without bye",
			setup: func(s *Site) {
				s.SetAgent("x", Online, []string{"sales"})
				s.SetDevice("x", live("d1"))
			},
			op:      func(s *Site) Change { return s.SetDevice("x", lingering("d1")) },
			touches: map[string]bool{"": false, "sales": false, "support": false},
		},
		{
			name: "sales agent reconnects",
			setup: func(s *Site) {
				s.SetAgent("x", Online, []string{"sales"})
				s.SetDevice("x", lingering("d1"))
			},
			op:      func(s *Site) Change { return s.SetDevice("x", live("d1")) },
			touches: map[string]bool{"": false, "sales": false, "support": false},
		},
		{
			name: "connected agent moves from sales to support",
			setup: func(s *Site) {
				s.SetAgent("x", Online, []string{"sales"})
				s.SetDevice("x", live("d1"))
			},
			op:      func(s *Site) Change { return s.SetAgent("x", Online, []string{"support"}) },
			touches: map[string]bool{"": false, "sales": true, "support": true, "billing": false},
		},
		{
			name: "connected agent leaves all groups",
			setup: func(s *Site) {
				s.SetAgent("x", Busy, []string{"sales"})
				s.SetDevice("x", live("d1"))
			},
			op:      func(s *Site) Change { return s.SetAgent("x", Busy, nil) },
			touches: map[string]bool{"": false, "sales": true, "support": true, "billing": true},
		},
		{
			name: "record removed while connected",
			setup: func(s *Site) {
				s.SetAgent("x", Busy, []string{"sales"})
				s.SetDevice("x", live("d1"))
			},
			op:      func(s *Site) Change { return s.RemoveAgent("x") },
			touches: map[string]bool{"": true, "sales": true, "support": true},
		},
		{
			name:  "record removed while disconnected",
			setup: func(s *Site) { s.SetAgent("x", Online, []string{"sales"}) },
			op:    func(s *Site) Change { return s.RemoveAgent("x") },
			// Other groups may be reported too (the agent was offline
			// throughout); only the site and the agent's own group are pinned.
			touches: map[string]bool{"": false, "sales": true},
		},
		{
			name:    "remove device of unknown agent",
			op:      func(s *Site) Change { return s.RemoveDevice("ghost", "d1") },
			touches: map[string]bool{"": false, "sales": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			if tt.setup != nil {
				tt.setup(s)
			}
			ch := tt.op(s)
			for g, want := range tt.touches {
				if got := ch.Touches(g); got != want {
					t.Errorf("Touches(%q): got %v, want %v (change %+v)", g, got, want, ch)
				}
			}
		})
	}
}
