package change

import (
	"slices"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

func TestTouchedBy(t *testing.T) {
	sales := &store.AgentRecord{Groups: []string{"sales"}}
	vip := &store.AgentRecord{Groups: []string{"vip"}}
	noGroup := &store.AgentRecord{}
	inSales := &presence.Agent{Groups: []string{"sales"}}
	for _, tc := range []struct {
		name      string
		key       store.Key
		rec, next *store.AgentRecord
		agent     *presence.Agent
		want      Touched
	}{
		{"lease of an agent in a group", store.LeaseKey("acme", "a", "d"), sales, nil, inSales, Touched{Groups: []string{"", "sales"}}},
		{"lease of an agent the view has no record of", store.LeaseKey("acme", "a", "d"), nil, nil, nil, Touched{Groups: []string{""}, All: true}},
		{"record moving the agent to another group", store.AgentKey("acme", "a"), sales, vip, inSales, Touched{Groups: []string{"", "sales", "vip"}}},
		{"record moving the agent out of every group", store.AgentKey("acme", "a"), sales, noGroup, inSales, Touched{Groups: []string{"", "sales"}, All: true}},
		{"agent in no group", store.AgentKey("acme", "a"), noGroup, noGroup, &presence.Agent{}, Touched{Groups: []string{""}, All: true}},
		{"site's hours", store.HoursKey("acme", ""), nil, nil, nil, Touched{Groups: []string{""}, All: true}},
		{"group's hours", store.HoursKey("acme", "vip"), nil, nil, nil, Touched{Groups: []string{"", "vip"}, All: true}},
		{"settings", store.SettingsKey("acme"), nil, nil, nil, Touched{}},
		{"activity", store.ActivityKey("acme", "a"), sales, nil, inSales, Touched{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TouchedBy(tc.key, tc.rec, tc.agent, tc.next)
			if got.All != tc.want.All || !slices.Equal(got.Groups, tc.want.Groups) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTouchedHasAndExpand(t *testing.T) {
	site := presence.NewSite()
	site.SetAgent("bob", presence.Offline, []string{"night"})
	site.SetAgent("carol", presence.Online, []string{"sales"})
	site.SetDevice("carol", presence.Device{ID: "d", Kind: presence.Web, State: presence.Live})
	some := Touched{Groups: []string{"", "vip"}}
	if !some.Has("vip") || some.Has("sales") || !some.Has("") {
		t.Fatalf("%+v: Has is wrong", some)
	}
	if got := some.Expand(site); !slices.Equal(got, []string{"", "vip"}) {
		t.Fatalf("Expand of %+v = %v", some, got)
	}
	all := Touched{Groups: []string{""}, All: true}
	if !all.Has("anything") {
		t.Fatal("All does not have every group")
	}
	// Every group the rules know and every group an agent is in, online
	// or not: bob's night group too.
	if got := all.Expand(site); !slices.Equal(got, []string{"", "night", "sales"}) {
		t.Fatalf("Expand of %+v = %v, want the site, night and sales", all, got)
	}
	var acc Touched
	acc.Add(some)
	acc.Add(Touched{Groups: []string{"", "sales"}})
	if acc.All || !slices.Equal(acc.Groups, []string{"", "sales", "vip"}) {
		t.Fatalf("Add gathered %+v", acc)
	}
}

func TestAgentChanges(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	chosen := store.AgentRecord{Status: presence.Busy, By: "device", ByID: "d1", At: at}
	def := store.AgentRecord{Status: presence.Online, At: at}
	for _, tc := range []struct {
		name                    string
		ch                      Agent
		status, devices, roster bool
	}{
		{"first record, a default", Agent{After: AgentState{Record: def, HasRecord: true}}, false, false, false},
		{"first record, chosen", Agent{After: AgentState{Record: chosen, HasRecord: true}}, true, false, false},
		{"status chosen again at a new time", Agent{
			Before: AgentState{Record: chosen, HasRecord: true},
			After:  AgentState{Record: store.AgentRecord{Status: presence.Busy, By: "device", At: at.Add(time.Second)}, HasRecord: true},
		}, true, false, false},
		{"record removed", Agent{Before: AgentState{Record: chosen, HasRecord: true}}, false, false, false},
		{"a device went live", Agent{
			Before: AgentState{Effective: presence.Offline},
			After:  AgentState{Effective: presence.Online, Live: []string{"d1/live"}},
		}, false, true, true},
		{"a device went to the background", Agent{
			Before: AgentState{Effective: presence.Online, Live: []string{"d1/live"}},
			After:  AgentState{Effective: presence.Online, Live: []string{"d1/background"}},
		}, false, true, false},
		{"groups changed", Agent{Before: AgentState{Groups: []string{"a"}}, After: AgentState{Groups: []string{"b"}}}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ch.StatusChanged(); got != tc.status {
				t.Errorf("StatusChanged = %v, want %v", got, tc.status)
			}
			if got := tc.ch.DevicesChanged(); got != tc.devices {
				t.Errorf("DevicesChanged = %v, want %v", got, tc.devices)
			}
			if got := tc.ch.RosterChanged(); got != tc.roster {
				t.Errorf("RosterChanged = %v, want %v", got, tc.roster)
			}
		})
	}
}

// TestWidgetMoved: a widget moved when its status, reason or next boundary
// did; the same boundary in another zone's clothes (a schedule's zone
// renamed to one with the same rules) is no move.
func TestWidgetMoved(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	next := time.Date(2026, 12, 7, 17, 0, 0, 0, berlin)
	open := presence.Widget{Status: presence.Online, Reason: presence.ReasonAgentsOnline}
	same := Widget{Before: WidgetState{Widget: open, Next: next}, After: WidgetState{Widget: open, Next: next.In(paris)}}
	if same.Moved() {
		t.Error("the same boundary in another zone counts as a move")
	}
	later := Widget{Before: WidgetState{Widget: open, Next: next}, After: WidgetState{Widget: open, Next: next.Add(time.Hour)}}
	busy := Widget{Before: WidgetState{Widget: open, Next: next}, After: WidgetState{Widget: presence.Widget{Status: presence.Busy, Reason: presence.ReasonAllBusy}, Next: next}}
	if !later.Moved() || !busy.Moved() {
		t.Error("a new boundary or a new status does not count as a move")
	}
}
