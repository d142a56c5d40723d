package presence

import (
	"slices"
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
type agentSpec struct {
	id      string
	status  Status
	groups  []string
	devices []Device // nil: not connected
	noRec   bool     // known only from devices, no stored record
}

func buildSite(t *testing.T, specs []agentSpec) *Site {
	t.Helper()
	s := NewSite()
	for _, sp := range specs {
		if !sp.noRec {
			s.SetAgent(sp.id, sp.status, sp.groups)
		}
		for _, d := range sp.devices {
			s.SetDevice(sp.id, d)
		}
	}
	checkTallies(t, s)
	return s
}

func TestWidgetNoGroups(t *testing.T) {
	on := []Device{live("d1")}
	gone := []Device{lingering("d1")}
	tests := []struct {
		name   string
		agents []agentSpec
		want   Widget
	}{
		{name: "no agents", want: widgetOffline},
		{name: "one online, connected",
			agents: []agentSpec{{id: "a", status: Online, devices: on}}, want: widgetOnline},
		{name: "one online, not connected",
			agents: []agentSpec{{id: "a", status: Online}}, want: widgetOffline},
		{name: "one busy, connected",
			agents: []agentSpec{{id: "a", status: Busy, devices: on}}, want: widgetBusy},
		{name: "busy only",
			agents: []agentSpec{{id: "a", status: Busy, devices: on}, {id: "b", status: Busy, devices: on}}, want: widgetBusy},
		{name: "busy and online",
			agents: []agentSpec{{id: "a", status: Busy, devices: on}, {id: "b", status: Online, devices: on}}, want: widgetOnline},
		{name: "online but disconnected, busy connected",
			agents: []agentSpec{{id: "a", status: Online}, {id: "b", status: Busy, devices: on}}, want: widgetBusy},
		{name: "offline chosen but connected",
			agents: []agentSpec{{id: "a", status: Offline, devices: on}}, want: widgetOffline},
		{name: "offline chosen but connected, with a busy one",
			agents: []agentSpec{{id: "a", status: Offline, devices: on}, {id: "b", status: Busy, devices: on}}, want: widgetBusy},
		{name: "all offline chosen",
			agents: []agentSpec{{id: "a", status: Offline, devices: on}, {id: "b", status: Offline, devices: on}, {id: "c", status: Offline}}, want: widgetOffline},
		{name: "device only, no record, counts online",
			agents: []agentSpec{{id: "a", devices: on, noRec: true}}, want: widgetOnline},
		{name: "any online agent makes the site online",
			agents: []agentSpec{
				{id: "a", status: Offline, devices: on}, {id: "b", status: Busy, devices: on},
				{id: "c", status: Busy, devices: on}, {id: "d", status: Online, devices: on},
				{id: "e", status: Offline}}, want: widgetOnline},
		{name: "one agent who forgets to go offline keeps the chat online",
			agents: []agentSpec{
				{id: "a", status: Offline, devices: on}, {id: "b", status: Offline, devices: on},
				{id: "forgetful", status: Online, devices: on}}, want: widgetOnline},
		{name: "forgetful agent's lease lingering still keeps the chat online",
			agents: []agentSpec{
				{id: "a", status: Offline, devices: on},
				{id: "forgetful", status: Online, devices: gone}}, want: widgetOnline},
		{name: "lingering busy agent keeps busy",
			agents: []agentSpec{{id: "a", status: Busy, devices: gone}}, want: widgetBusy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := buildSite(t, tt.agents)
			wantWidget(t, s, "", tt.want)
			// With no groups, every agent is ungrouped and so counts for
			// any group's widget as well.
			wantWidget(t, s, "sales", tt.want)
			wantWidget(t, s, "any-group", tt.want)
		})
	}
}

func TestWidgetWithGroups(t *testing.T) {
	on := []Device{live("d1")}
	type want struct {
		group string
		w     Widget
	}
	tests := []struct {
		name   string
		agents []agentSpec
		want   []want
	}{
		{
			name: "agents only affect their groups",
			agents: []agentSpec{
				{id: "s1", status: Online, groups: []string{"sales"}, devices: on},
				{id: "p1", status: Busy, groups: []string{"support"}, devices: on},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOnline}, {"support", widgetBusy}, {"billing", widgetOffline},
			},
		},
		{
			name: "grouped agent not connected",
			agents: []agentSpec{
				{id: "s1", status: Online, groups: []string{"sales"}},
				{id: "p1", status: Online, groups: []string{"support"}, devices: on},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOffline}, {"support", widgetOnline},
			},
		},
		{
			name: "ungrouped online agent changes every group and the site",
			agents: []agentSpec{
				{id: "s1", status: Offline, groups: []string{"sales"}, devices: on},
				{id: "p1", status: Busy, groups: []string{"support"}, devices: on},
				{id: "u", status: Online, devices: on},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOnline}, {"support", widgetOnline}, {"billing", widgetOnline},
			},
		},
		{
			name: "ungrouped busy agent makes empty groups busy",
			agents: []agentSpec{
				{id: "s1", status: Online, groups: []string{"sales"}, devices: on},
				{id: "u", status: Busy, devices: on},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOnline}, {"support", widgetBusy}, {"billing", widgetBusy},
			},
		},
		{
			name: "ungrouped offline agent changes nothing",
			agents: []agentSpec{
				{id: "s1", status: Busy, groups: []string{"sales"}, devices: on},
				{id: "u", status: Offline, devices: on},
			},
			want: []want{
				{"", widgetBusy}, {"sales", widgetBusy}, {"support", widgetOffline},
			},
		},
		{
			name: "agent in two groups",
			agents: []agentSpec{
				{id: "x", status: Online, groups: []string{"sales", "support"}, devices: on},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOnline}, {"support", widgetOnline}, {"billing", widgetOffline},
			},
		},
		{
			name: "group mixed busy and online",
			agents: []agentSpec{
				{id: "a", status: Busy, groups: []string{"sales"}, devices: on},
				{id: "b", status: Online, groups: []string{"sales"}, devices: on},
				{id: "c", status: Busy, groups: []string{"support"}, devices: on},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOnline}, {"support", widgetBusy},
			},
		},
		{
			name: "device-only agent has no group, so counts everywhere",
			agents: []agentSpec{
				{id: "s1", status: Busy, groups: []string{"sales"}, devices: on},
				{id: "ghost", devices: on, noRec: true},
			},
			want: []want{
				{"", widgetOnline}, {"sales", widgetOnline}, {"support", widgetOnline},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := buildSite(t, tt.agents)
			for _, w := range tt.want {
				wantWidget(t, s, w.group, w.w)
			}
		})
	}
}

// TestWidgetFollowsGroupMoves moves one agent between groups and checks
// every widget after each move.
func TestWidgetFollowsGroupMoves(t *testing.T) {
	s := NewSite()
	s.SetAgent("p", Busy, []string{"support"})
	s.SetDevice("p", live("d1"))
	s.SetDevice("x", live("d1")) // device-only: ungrouped, online

	tests := []struct {
		name                    string
		groups                  []string
		site, sales, support, b Widget
	}{
		{"into sales", []string{"sales"}, widgetOnline, widgetOnline, widgetBusy, widgetOffline},
		{"into support", []string{"support"}, widgetOnline, widgetOffline, widgetOnline, widgetOffline},
		{"into both", []string{"support", "sales"}, widgetOnline, widgetOnline, widgetOnline, widgetOffline},
		{"into no group", nil, widgetOnline, widgetOnline, widgetOnline, widgetOnline},
		{"into billing", []string{"billing"}, widgetOnline, widgetOffline, widgetBusy, widgetOnline},
	}
	for _, tt := range tests {
		ch := s.SetAgent("x", Online, tt.groups)
		if ch.EffectiveChanged() {
			t.Errorf("%s: EffectiveChanged(): got true, want false", tt.name)
		}
		if !ch.GroupsChanged() {
			t.Errorf("%s: GroupsChanged(): got false, want true", tt.name)
		}
		wantWidget(t, s, "", tt.site)
		wantWidget(t, s, "sales", tt.sales)
		wantWidget(t, s, "support", tt.support)
		wantWidget(t, s, "billing", tt.b)
		checkTallies(t, s)
	}
}

func TestGroupsNormalised(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, nil},
		{"empty", []string{}, nil},
		{"one", []string{"a"}, []string{"a"}},
		{"sorted", []string{"a", "b"}, []string{"a", "b"}},
		{"unsorted", []string{"c", "a", "b"}, []string{"a", "b", "c"}},
		{"duplicates", []string{"a", "a", "a"}, []string{"a"}},
		{"unsorted duplicates", []string{"b", "a", "b", "c", "a"}, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			in := slices.Clone(tt.in)
			ch := s.SetAgent("ann", Online, in)
			a := mustAgent(t, s, "ann")
			if !slices.Equal(a.Groups, tt.want) || (a.Groups == nil) != (tt.want == nil) {
				t.Errorf("Groups: got %#v, want %#v", a.Groups, tt.want)
			}
			if !slices.Equal(ch.AfterGroups, tt.want) {
				t.Errorf("Change.AfterGroups: got %#v, want %#v", ch.AfterGroups, tt.want)
			}
			// The caller's slice must be neither reordered nor aliased.
			if !slices.Equal(in, tt.in) {
				t.Errorf("input groups: got %#v after the call, want %#v untouched", in, tt.in)
			}
			if len(in) > 0 {
				in[0] = "mutated"
				if slices.Contains(a.Groups, "mutated") {
					t.Errorf("Groups: got %#v, want no alias of the caller's slice", a.Groups)
				}
			}

			// Setting the same set in another order or with duplicates
			// changes nothing.
			again := slices.Clone(tt.want)
			slices.Reverse(again)
			again = append(again, again...)
			if ch := s.SetAgent("ann", Online, again); ch.GroupsChanged() {
				t.Errorf("GroupsChanged() after re-setting %#v: got true, want false", again)
			}

			// A duplicate group must be counted once: connect, then go
			// offline, and no tally may be left behind.
			s.SetAgent("ann", Online, tt.in)
			s.SetDevice("ann", live("d1"))
			checkTallies(t, s)
			for _, g := range tt.want {
				wantWidget(t, s, g, widgetOnline)
			}
			s.SetAgent("ann", Offline, tt.in)
			checkTallies(t, s)
			for _, g := range append([]string{""}, tt.want...) {
				wantWidget(t, s, g, widgetOffline)
			}
			if len(s.groups) != 0 {
				t.Errorf("group tallies: got %d, want 0", len(s.groups))
			}
		})
	}
}

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

// TestAgentLifetime covers when a Site keeps or drops an agent: it is
// dropped once it has neither a stored record nor a device lease.
func TestAgentLifetime(t *testing.T) {
	tests := []struct {
		name        string
		ops         func(*Site)
		wantPresent bool
		wantStatus  Status // when present
		wantGroups  []string
		wantEff     Status
	}{
		{
			name:        "device-only agent, last device removed",
			ops:         func(s *Site) { s.SetDevice("a", live("d1")); s.RemoveDevice("a", "d1") },
			wantPresent: false,
		},
		{
			name: "device-only agent, one of two devices removed",
			ops: func(s *Site) {
				s.SetDevice("a", live("d1"))
				s.SetDevice("a", lingering("d2"))
				s.RemoveDevice("a", "d1")
			},
			wantPresent: true, wantStatus: Online, wantEff: Online,
		},
		{
			name:        "stored agent, no devices, record removed",
			ops:         func(s *Site) { s.SetAgent("a", Busy, []string{"g"}); s.RemoveAgent("a") },
			wantPresent: false,
		},
		{
			name: "stored agent, last device removed, kept",
			ops: func(s *Site) {
				s.SetAgent("a", Busy, []string{"g"})
				s.SetDevice("a", live("d1"))
				s.RemoveDevice("a", "d1")
			},
			wantPresent: true, wantStatus: Busy, wantGroups: []string{"g"}, wantEff: Offline,
		},
		{
			name: "record removed while a device holds a lease: kept with defaults",
			ops: func(s *Site) {
				s.SetAgent("a", Busy, []string{"g"})
				s.SetDevice("a", lingering("d1"))
				s.RemoveAgent("a")
			},
			wantPresent: true, wantStatus: Online, wantEff: Online,
		},
		{
			name: "record removed, then last lease goes",
			ops: func(s *Site) {
				s.SetAgent("a", Busy, []string{"g"})
				s.SetDevice("a", live("d1"))
				s.RemoveAgent("a")
				s.RemoveDevice("a", "d1")
			},
			wantPresent: false,
		},
		{
			name:        "remove unknown agent",
			ops:         func(s *Site) { s.RemoveAgent("a") },
			wantPresent: false,
		},
		{
			name:        "remove device of unknown agent",
			ops:         func(s *Site) { s.RemoveDevice("a", "d1") },
			wantPresent: false,
		},
		{
			name: "device-only agent, unknown device removed",
			ops: func(s *Site) {
				s.SetDevice("a", live("d1"))
				s.RemoveDevice("a", "d2")
			},
			wantPresent: true, wantStatus: Online, wantEff: Online,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			tt.ops(s)
			checkTallies(t, s)
			a, ok := s.Agent("a")
			if ok != tt.wantPresent {
				t.Fatalf("agent present: got %v, want %v", ok, tt.wantPresent)
			}
			if got := s.Empty(); got == tt.wantPresent {
				t.Errorf("Empty(): got %v, want %v", got, !tt.wantPresent)
			}
			if got := len(s.Agents()); got != map[bool]int{false: 0, true: 1}[tt.wantPresent] {
				t.Errorf("len(Agents()): got %d, want %d", got, map[bool]int{false: 0, true: 1}[tt.wantPresent])
			}
			if !ok {
				for _, g := range []string{"", "g"} {
					wantWidget(t, s, g, widgetOffline)
				}
				return
			}
			if a.Status != tt.wantStatus {
				t.Errorf("Status: got %q, want %q", a.Status, tt.wantStatus)
			}
			if !slices.Equal(a.Groups, tt.wantGroups) {
				t.Errorf("Groups: got %#v, want %#v", a.Groups, tt.wantGroups)
			}
			if got := a.Effective(); got != tt.wantEff {
				t.Errorf("Effective(): got %q, want %q", got, tt.wantEff)
			}
		})
	}
}

// TestRemoveDeviceUnknownAgentChange checks the Change reported for a lease
// that vanishes for an agent the site never saw.
func TestRemoveDeviceUnknownAgentChange(t *testing.T) {
	s := NewSite()
	ch := s.RemoveDevice("ghost", "d1")
	want := Change{Agent: "ghost", Before: Offline, After: Offline}
	if ch.Agent != want.Agent || ch.Before != want.Before || ch.After != want.After ||
		ch.BeforeGroups != nil || ch.AfterGroups != nil || ch.DevicesChanged {
		t.Errorf("RemoveDevice on unknown agent: got %+v, want %+v", ch, want)
	}
	if !s.Empty() {
		t.Errorf("Empty(): got false, want true")
	}
}

func TestLiveDevicesOrder(t *testing.T) {
	dev := func(id string, sec int, st DeviceState) Device {
		return Device{ID: id, Kind: Web, Since: at(sec), Session: "s-" + id, State: st}
	}
	tests := []struct {
		name    string
		devices []Device
		want    []string
	}{
		{name: "none", want: nil},
		{name: "only lingering", devices: []Device{dev("a", 1, Lingering)}, want: nil},
		{name: "one", devices: []Device{dev("a", 1, Live)}, want: []string{"a"}},
		{
			name:    "by Since, oldest first",
			devices: []Device{dev("a", 30, Live), dev("b", 10, Live), dev("c", 20, Live)},
			want:    []string{"b", "c", "a"},
		},
		{
			name:    "Since ties broken by ID",
			devices: []Device{dev("zz", 5, Live), dev("aa", 5, Live), dev("mm", 5, Live), dev("early", 1, Live)},
			want:    []string{"early", "aa", "mm", "zz"},
		},
		{
			name: "lingering devices left out",
			devices: []Device{
				dev("a", 1, Lingering), dev("b", 2, Live), dev("c", 0, Lingering), dev("d", 3, Live),
			},
			want: []string{"b", "d"},
		},
		{
			name: "Since compared as instants, not by location",
			devices: []Device{
				{ID: "a", Since: at(10).In(time.FixedZone("X", 5*3600)), State: Live},
				{ID: "b", Since: at(5), State: Live},
			},
			want: []string{"b", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Insert in both orders: the result must not depend on it.
			for _, reversed := range []bool{false, true} {
				s := NewSite()
				ds := slices.Clone(tt.devices)
				if reversed {
					slices.Reverse(ds)
				}
				for _, d := range ds {
					s.SetDevice("ann", d)
				}
				var got []string
				if a, ok := s.Agent("ann"); ok {
					for _, d := range a.LiveDevices() {
						got = append(got, d.ID)
						if d.State != Live {
							t.Errorf("LiveDevices() returned %q in state %q, want %q", d.ID, d.State, Live)
						}
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("LiveDevices() (reversed=%v): got %v, want %v", reversed, got, tt.want)
				}
			}
		})
	}
}

func TestAgentDevice(t *testing.T) {
	s := NewSite()
	d1 := Device{ID: "d1", Kind: Mobile, Since: at(3), Session: "sess-1", State: Live}
	s.SetDevice("ann", d1)
	a := mustAgent(t, s, "ann")
	tests := []struct {
		id     string
		want   Device
		wantOK bool
	}{
		{"d1", d1, true},
		{"d2", Device{}, false},
		{"", Device{}, false},
	}
	for _, tt := range tests {
		got, ok := a.Device(tt.id)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Device(%q): got %+v, %v, want %+v, %v", tt.id, got, ok, tt.want, tt.wantOK)
		}
	}
	// Replacing the device replaces what Device returns.
	d1b := d1
	d1b.State, d1b.Session = Lingering, "sess-1"
	s.SetDevice("ann", d1b)
	if got, _ := a.Device("d1"); got != d1b {
		t.Errorf("Device(%q) after replace: got %+v, want %+v", "d1", got, d1b)
	}
}

func TestLingering(t *testing.T) {
	tests := []struct {
		name          string
		devices       []Device
		stored        bool
		wantLingering bool
		wantConnected bool
	}{
		{name: "no devices", stored: true, wantLingering: false, wantConnected: false},
		{name: "one live", devices: []Device{live("a")}, wantLingering: false, wantConnected: true},
		{name: "one lingering", devices: []Device{lingering("a")}, wantLingering: true, wantConnected: true},
		{name: "live and lingering", devices: []Device{live("a"), lingering("b")}, wantLingering: false, wantConnected: true},
		{name: "two lingering", devices: []Device{lingering("a"), lingering("b")}, wantLingering: true, wantConnected: true},
		{name: "three, one live", devices: []Device{lingering("a"), lingering("b"), live("c")}, wantLingering: false, wantConnected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			if tt.stored {
				s.SetAgent("ann", Online, nil)
			}
			for _, d := range tt.devices {
				s.SetDevice("ann", d)
			}
			a := mustAgent(t, s, "ann")
			if got := a.Lingering(); got != tt.wantLingering {
				t.Errorf("Lingering(): got %v, want %v", got, tt.wantLingering)
			}
			if got := a.Connected(); got != tt.wantConnected {
				t.Errorf("Connected(): got %v, want %v", got, tt.wantConnected)
			}
		})
	}
}

func TestAgentsSorted(t *testing.T) {
	s := NewSite()
	for _, id := range []string{"m", "b", "z", "a", "B", "_", "-", "0"} {
		s.SetAgent(id, Online, nil)
	}
	s.SetDevice("c", live("d1"))
	var got []string
	for _, a := range s.Agents() {
		got = append(got, a.ID)
	}
	want := []string{"-", "0", "B", "_", "a", "b", "c", "m", "z"}
	if !slices.Equal(got, want) {
		t.Errorf("Agents() ids: got %v, want %v", got, want)
	}
}

func TestDevicesChanged(t *testing.T) {
	tests := []struct {
		name  string
		setup []Device
		op    func(*Site) Change
		want  bool
	}{
		{"first live device", nil, func(s *Site) Change { return s.SetDevice("a", live("d1")) }, true},
		{"first lingering device", nil, func(s *Site) Change { return s.SetDevice("a", lingering("d1")) }, false},
		{"second live device", []Device{live("d1")}, func(s *Site) Change { return s.SetDevice("a", live("d2")) }, true},
		{"live refreshed", []Device{live("d1")}, func(s *Site) Change {
			d := live("d1")
			d.Session = "new"
			return s.SetDevice("a", d)
		}, false},
		{"live to lingering", []Device{live("d1")}, func(s *Site) Change { return s.SetDevice("a", lingering("d1")) }, true},
		{"lingering to live", []Device{lingering("d1")}, func(s *Site) Change { return s.SetDevice("a", live("d1")) }, true},
		{"lingering refreshed", []Device{lingering("d1")}, func(s *Site) Change { return s.SetDevice("a", lingering("d1")) }, false},
		{"live removed", []Device{live("d1"), live("d2")}, func(s *Site) Change { return s.RemoveDevice("a", "d1") }, true},
		{"lingering removed", []Device{live("d1"), lingering("d2")}, func(s *Site) Change { return s.RemoveDevice("a", "d2") }, false},
		{"unknown removed", []Device{live("d1")}, func(s *Site) Change { return s.RemoveDevice("a", "zz") }, false},
		{"status change", []Device{live("d1")}, func(s *Site) Change { return s.SetAgent("a", Busy, nil) }, false},
		{"group change", []Device{live("d1")}, func(s *Site) Change { return s.SetAgent("a", Online, []string{"g"}) }, false},
		{"record removed", []Device{live("d1")}, func(s *Site) Change { return s.RemoveAgent("a") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			for _, d := range tt.setup {
				s.SetDevice("a", d)
			}
			if got := tt.op(s).DevicesChanged; got != tt.want {
				t.Errorf("DevicesChanged: got %v, want %v", got, tt.want)
			}
		})
	}
}
