package presence

import (
	"slices"
	"testing"
)

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
