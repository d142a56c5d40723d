package events_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub/change"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// TestDerive: the events of each kind of change, derived from its record
// alone, with no NATS: their types and order, ids and the data that tell
// one kind of change from another.
func TestDerive(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const grace = 2 * time.Minute
	online := change.AgentState{Effective: presence.Online}
	offline := change.AgentState{Effective: presence.Offline}
	live := store.DeviceRecord{Kind: presence.Desktop, Session: "s1", State: presence.Live}
	lingering := live
	lingering.State = presence.Lingering
	lease := func(k store.Key, l change.Lease, before, after change.AgentState, removed bool, marker []byte) change.Record {
		return change.Record{Site: "acme", Key: k, Rev: 7, At: at, Lease: l, Agent: change.Agent{Before: before, After: after},
			Removed: removed, Marker: marker}
	}
	dk := store.LeaseKey("acme", "alice", "d1")
	widgetMoved := []change.Widget{
		{Group: "", Before: change.WidgetState{Widget: presence.Widget{Status: presence.Offline, Reason: presence.ReasonNoAgents}},
			After: change.WidgetState{Widget: presence.Widget{Status: presence.Online, Reason: presence.ReasonAgentsOnline}}},
		{Group: "sales"}, // did not move
	}
	for _, tc := range []struct {
		name  string
		rec   change.Record
		want  []string          // ids
		check map[string]string // id: a field of its data, as "field=value"
	}{
		{"status chosen on a device", change.Record{Site: "acme", Key: store.AgentKey("acme", "alice"), Rev: 7, At: at, Agent: change.Agent{
			Before: change.AgentState{Record: store.AgentRecord{Status: presence.Online}, HasRecord: true, Effective: presence.Online},
			After:  change.AgentState{Record: store.AgentRecord{Status: presence.Busy, By: "device", ByID: "d1", At: at}, HasRecord: true, Effective: presence.Busy},
		}}, []string{"7.agent.status.alice", "7.agent.availability.alice"},
			map[string]string{"7.agent.status.alice": "previous=online", "7.agent.availability.alice": "cause=status_set"}},
		{"record created by a first connection", change.Record{Site: "acme", Key: store.AgentKey("acme", "alice"), Rev: 7, At: at, Agent: change.Agent{
			After: change.AgentState{Record: store.AgentRecord{Status: presence.Online}, HasRecord: true},
		}}, nil, nil},
		{"device connected", lease(dk, change.Lease{After: live, Has: true}, offline, online, false, nil),
			[]string{"7.device.connected.d1", "7.agent.availability.alice"}, map[string]string{"7.agent.availability.alice": "cause=connected"}},
		{"device dropped", lease(dk, change.Lease{Before: live, After: lingering, Had: true, Has: true}, online, online, false, nil),
			[]string{"7.device.dropped.d1"}, map[string]string{"7.device.dropped.d1": "grace_until=2026-12-07T09:02:00.000Z"}},
		{"device back inside its grace", lease(dk, change.Lease{Before: lingering, After: live, Had: true, Has: true}, online, online, false, nil),
			[]string{"7.device.resumed.d1"}, nil},
		{"bye", lease(dk, change.Lease{Before: live, Had: true}, online, offline, true, store.ByeMarker),
			[]string{"7.device.ended.d1", "7.agent.availability.alice"}, map[string]string{"7.device.ended.d1": "cause=bye", "7.agent.availability.alice": "cause=bye"}},
		{"grace ran out", lease(dk, change.Lease{Before: lingering, Had: true}, online, offline, true, nil),
			[]string{"7.device.ended.d1", "7.agent.availability.alice"}, map[string]string{"7.device.ended.d1": "cause=grace_expired"}},
		{"revoked", lease(dk, change.Lease{Before: live, Had: true}, online, online, true, store.RevokedMarker),
			[]string{"7.device.ended.d1"}, map[string]string{"7.device.ended.d1": "cause=revoked"}},
		{"replaced by a new session", lease(dk, change.Lease{Before: live, After: store.DeviceRecord{Kind: presence.Desktop, Session: "s2", State: presence.Live}, Had: true, Has: true}, online, online, false, nil),
			[]string{"7.device.ended.d1", "7.device.connected.d1"}, map[string]string{"7.device.ended.d1": "cause=replaced"}},
		{"lease refreshed", lease(dk, change.Lease{Before: live, After: live, Had: true, Has: true}, online, online, false, nil), nil, nil},
		{"removal of a lease the view never had", lease(dk, change.Lease{}, offline, offline, true, nil), nil, nil},
		{"widget moved", func() change.Record {
			r := lease(dk, change.Lease{After: live, Has: true}, offline, online, false, nil)
			r.Widgets = widgetMoved
			return r
		}(), []string{"7.device.connected.d1", "7.agent.availability.alice", "7.widget.status."}, map[string]string{"7.widget.status.": "status=online"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := events.Derive(tc.rec, grace)
			var ids []string
			for _, ev := range evs {
				ids = append(ids, ev.ID)
				if ev.Site != "acme" || ev.Rev != 7 || ev.Subject() != events.SubjectPrefix+"acme."+ev.Type {
					t.Errorf("event %s: site %q, rev %d, subject %q", ev.ID, ev.Site, ev.Rev, ev.Subject())
				}
				want, ok := tc.check[ev.ID]
				if !ok {
					continue
				}
				var data map[string]any
				if err := json.Unmarshal(ev.Data, &data); err != nil {
					t.Fatal(err)
				}
				field, value, _ := strings.Cut(want, "=")
				if got, _ := data[field].(string); got != value {
					t.Errorf("event %s: %s = %v, want %s", ev.ID, field, data[field], value)
				}
			}
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("got events %v, want %v", ids, tc.want)
			}
		})
	}
}
