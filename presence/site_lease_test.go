package presence

import (
	"testing"
)

func TestNewSite(t *testing.T) {
	s := NewSite()
	if !s.Empty() {
		t.Errorf("Empty(): got false, want true")
	}
	if got := s.Agents(); len(got) != 0 {
		t.Errorf("Agents(): got %d agents, want 0", len(got))
	}
	for _, g := range []string{"", "sales", "support"} {
		wantWidget(t, s, g, widgetOffline)
	}
	wantNoAgent(t, s, "ann")
	checkTallies(t, s)
}

// TestFirstSeenAgent covers rule 1: an agent seen for the first time starts
// online, whichever way they are first seen.
func TestFirstSeenAgent(t *testing.T) {
	tests := []struct {
		name          string
		op            func(*Site) Change
		wantStatus    Status
		wantEffective Status
		wantConnected bool
	}{
		{
			name:          "first seen through a live device",
			op:            func(s *Site) Change { return s.SetDevice("ann", live("d1")) },
			wantStatus:    Online,
			wantEffective: Online,
			wantConnected: true,
		},
		{
			name:          "first seen through a lingering device",
			op:            func(s *Site) Change { return s.SetDevice("ann", lingering("d1")) },
			wantStatus:    Online,
			wantEffective: Online,
			wantConnected: true,
		},
		{
			name:          "record stored as online, no device",
			op:            func(s *Site) Change { return s.SetAgent("ann", Online, nil) },
			wantStatus:    Online,
			wantEffective: Offline,
		},
		{
			name:          "record stored as busy, no device",
			op:            func(s *Site) Change { return s.SetAgent("ann", Busy, nil) },
			wantStatus:    Busy,
			wantEffective: Offline,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			ch := tt.op(s)
			a := mustAgent(t, s, "ann")
			if a.ID != "ann" {
				t.Errorf("Agent.ID: got %q, want %q", a.ID, "ann")
			}
			if a.Status != tt.wantStatus {
				t.Errorf("Agent.Status: got %q, want %q", a.Status, tt.wantStatus)
			}
			if got := a.Effective(); got != tt.wantEffective {
				t.Errorf("Effective(): got %q, want %q", got, tt.wantEffective)
			}
			if got := a.Connected(); got != tt.wantConnected {
				t.Errorf("Connected(): got %v, want %v", got, tt.wantConnected)
			}
			if ch.Agent != "ann" {
				t.Errorf("Change.Agent: got %q, want %q", ch.Agent, "ann")
			}
			if ch.Before != Offline {
				t.Errorf("Change.Before: got %q, want %q", ch.Before, Offline)
			}
			if ch.After != tt.wantEffective {
				t.Errorf("Change.After: got %q, want %q", ch.After, tt.wantEffective)
			}
			if s.Empty() {
				t.Errorf("Empty(): got true, want false")
			}
			checkTallies(t, s)
		})
	}
}

// step is one operation in a scenario with what it must report and leave.
type step struct {
	name string
	op   func(*Site) Change
	// The Change the operation must report.
	before, after      Status
	effectiveChanged   bool
	devicesChanged     bool
	groupsChanged      bool
	wantConnected      bool
	wantLingering      bool
	wantSiteWidget     Widget
	wantAgentRemaining bool
}

func runSteps(t *testing.T, id string, steps []step) {
	t.Helper()
	s := NewSite()
	for i, st := range steps {
		ch := st.op(s)
		if ch.Agent != id {
			t.Errorf("step %d (%s): Change.Agent: got %q, want %q", i, st.name, ch.Agent, id)
		}
		if ch.Before != st.before || ch.After != st.after {
			t.Errorf("step %d (%s): Change Before/After: got %q/%q, want %q/%q", i, st.name, ch.Before, ch.After, st.before, st.after)
		}
		if got := ch.EffectiveChanged(); got != st.effectiveChanged {
			t.Errorf("step %d (%s): EffectiveChanged(): got %v, want %v", i, st.name, got, st.effectiveChanged)
		}
		if ch.DevicesChanged != st.devicesChanged {
			t.Errorf("step %d (%s): DevicesChanged: got %v, want %v", i, st.name, ch.DevicesChanged, st.devicesChanged)
		}
		if got := ch.GroupsChanged(); got != st.groupsChanged {
			t.Errorf("step %d (%s): GroupsChanged(): got %v, want %v", i, st.name, got, st.groupsChanged)
		}
		a, ok := s.Agent(id)
		if ok != st.wantAgentRemaining {
			t.Fatalf("step %d (%s): agent present: got %v, want %v", i, st.name, ok, st.wantAgentRemaining)
		}
		if ok {
			if got := a.Effective(); got != st.after {
				t.Errorf("step %d (%s): Effective(): got %q, want %q", i, st.name, got, st.after)
			}
			if got := a.Connected(); got != st.wantConnected {
				t.Errorf("step %d (%s): Connected(): got %v, want %v", i, st.name, got, st.wantConnected)
			}
			if got := a.Lingering(); got != st.wantLingering {
				t.Errorf("step %d (%s): Lingering(): got %v, want %v", i, st.name, got, st.wantLingering)
			}
		}
		if got := s.Widget(""); got != st.wantSiteWidget {
			t.Errorf("step %d (%s): Widget(\"\"): got %+v, want %+v", i, st.name, got, st.wantSiteWidget)
		}
		checkTallies(t, s)
	}
}

// TestLeaseLifecycle covers rules 2 to 4: effective status follows leases,
// a drop without bye changes nothing outside, a reconnect changes nothing,
// a bye (lease removed) takes the agent offline.
func TestLeaseLifecycle(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		steps []step
	}{
		{
			name: "busy agent: connect, drop, reconnect, bye",
			id:   "ann",
			steps: []step{
				{name: "record busy", op: func(s *Site) Change { return s.SetAgent("ann", Busy, nil) },
					before: Offline, after: Offline, wantSiteWidget: widgetOffline, wantAgentRemaining: true},
				{name: "device connects", op: func(s *Site) Change { return s.SetDevice("ann", live("d1")) },
					before: Offline, after: Busy, effectiveChanged: true, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetBusy, wantAgentRemaining: true},
				{name: "device drops without bye", op: func(s *Site) Change { return s.SetDevice("ann", lingering("d1")) },
					before: Busy, after: Busy, devicesChanged: true,
					wantConnected: true, wantLingering: true, wantSiteWidget: widgetBusy, wantAgentRemaining: true},
				{name: "device reconnects", op: func(s *Site) Change {
					d := live("d1")
					d.Session = "d1-s2"
					return s.SetDevice("ann", d)
				},
					before: Busy, after: Busy, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetBusy, wantAgentRemaining: true},
				{name: "bye", op: func(s *Site) Change { return s.RemoveDevice("ann", "d1") },
					before: Busy, after: Offline, effectiveChanged: true, devicesChanged: true,
					wantSiteWidget: widgetOffline, wantAgentRemaining: true},
			},
		},
		{
			name: "lingering lease expires",
			id:   "bob",
			steps: []step{
				{name: "device connects, no record", op: func(s *Site) Change { return s.SetDevice("bob", live("d1")) },
					before: Offline, after: Online, effectiveChanged: true, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "drop", op: func(s *Site) Change { return s.SetDevice("bob", lingering("d1")) },
					before: Online, after: Online, devicesChanged: true,
					wantConnected: true, wantLingering: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "lease expires", op: func(s *Site) Change { return s.RemoveDevice("bob", "d1") },
					before: Online, after: Offline, effectiveChanged: true,
					wantSiteWidget: widgetOffline},
			},
		},
		{
			name: "two devices: one drops, one says bye",
			id:   "cy",
			steps: []step{
				{name: "record online", op: func(s *Site) Change { return s.SetAgent("cy", Online, []string{"sales"}) },
					before: Offline, after: Offline, groupsChanged: true, wantSiteWidget: widgetOffline, wantAgentRemaining: true},
				{name: "desktop", op: func(s *Site) Change { return s.SetDevice("cy", live("desk")) },
					before: Offline, after: Online, effectiveChanged: true, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "phone", op: func(s *Site) Change { return s.SetDevice("cy", live("phone")) },
					before: Online, after: Online, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "desktop drops", op: func(s *Site) Change { return s.SetDevice("cy", lingering("desk")) },
					before: Online, after: Online, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "phone bye", op: func(s *Site) Change { return s.RemoveDevice("cy", "phone") },
					before: Online, after: Online, devicesChanged: true,
					wantConnected: true, wantLingering: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "desktop lease expires", op: func(s *Site) Change { return s.RemoveDevice("cy", "desk") },
					before: Online, after: Offline, effectiveChanged: true,
					wantSiteWidget: widgetOffline, wantAgentRemaining: true},
			},
		},
		{
			name: "status changes while connected and while not",
			id:   "dee",
			steps: []step{
				{name: "connect", op: func(s *Site) Change { return s.SetDevice("dee", live("d1")) },
					before: Offline, after: Online, effectiveChanged: true, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "goes busy", op: func(s *Site) Change { return s.SetAgent("dee", Busy, nil) },
					before: Online, after: Busy, effectiveChanged: true,
					wantConnected: true, wantSiteWidget: widgetBusy, wantAgentRemaining: true},
				{name: "goes offline by hand", op: func(s *Site) Change { return s.SetAgent("dee", Offline, nil) },
					before: Busy, after: Offline, effectiveChanged: true,
					wantConnected: true, wantSiteWidget: widgetOffline, wantAgentRemaining: true},
				{name: "second device while offline", op: func(s *Site) Change { return s.SetDevice("dee", live("d2")) },
					before: Offline, after: Offline, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOffline, wantAgentRemaining: true},
				{name: "bye both", op: func(s *Site) Change { s.RemoveDevice("dee", "d1"); return s.RemoveDevice("dee", "d2") },
					before: Offline, after: Offline, devicesChanged: true,
					wantSiteWidget: widgetOffline, wantAgentRemaining: true},
				{name: "online while disconnected", op: func(s *Site) Change { return s.SetAgent("dee", Online, nil) },
					before: Offline, after: Offline, wantSiteWidget: widgetOffline, wantAgentRemaining: true},
				{name: "reconnect adopts stored status", op: func(s *Site) Change { return s.SetDevice("dee", live("d1")) },
					before: Offline, after: Online, effectiveChanged: true, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
			},
		},
		{
			name: "no-op updates",
			id:   "eve",
			steps: []step{
				{name: "connect", op: func(s *Site) Change { return s.SetDevice("eve", live("d1")) },
					before: Offline, after: Online, effectiveChanged: true, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "same device refreshed with new session", op: func(s *Site) Change {
					d := live("d1")
					d.Session = "d1-s9"
					d.Since = at(60)
					return s.SetDevice("eve", d)
				},
					before: Online, after: Online,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "remove unknown device", op: func(s *Site) Change { return s.RemoveDevice("eve", "nope") },
					before: Online, after: Online,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "store same status", op: func(s *Site) Change { return s.SetAgent("eve", Online, nil) },
					before: Online, after: Online,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "store same status twice", op: func(s *Site) Change { return s.SetAgent("eve", Online, []string{}) },
					before: Online, after: Online,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
			},
		},
		{
			name: "lingering lease removed changes no live set",
			id:   "fay",
			steps: []step{
				{name: "connect lingering only", op: func(s *Site) Change { return s.SetDevice("fay", lingering("d1")) },
					before: Offline, after: Online, effectiveChanged: true,
					wantConnected: true, wantLingering: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "live device", op: func(s *Site) Change { return s.SetDevice("fay", live("d2")) },
					before: Online, after: Online, devicesChanged: true,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
				{name: "lingering lease expires", op: func(s *Site) Change { return s.RemoveDevice("fay", "d1") },
					before: Online, after: Online,
					wantConnected: true, wantSiteWidget: widgetOnline, wantAgentRemaining: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.id, tt.steps) })
	}
}

// agentSpec describes an agent to set up for a widget test.
