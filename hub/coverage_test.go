package hub_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// coverageEvent is a coverage.* event with its data decoded.
type coverageEvent struct {
	events.Event
	Group   string  `json:"group"`
	Since   string  `json:"since"`
	Reason  string  `json:"reason"`
	LostFor float64 `json:"lost_for"`
}

// nextCoverage returns the next coverage.* event of site in the stream,
// skipping the other events; with sentinel, it returns ok false at the
// first event of the site sentinel instead.
func nextCoverage(t *testing.T, es *eventStream, site, sentinel string) (ev coverageEvent, ok bool) {
	t.Helper()
	for {
		e := es.next(t)
		if sentinel != "" && e.Site == sentinel {
			return coverageEvent{}, false
		}
		if e.Site != site || !strings.HasPrefix(e.Type, "coverage.") {
			continue
		}
		ev.Event = e
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatal(err)
		}
		return ev, true
	}
}

// coverageByGroup reads the next n coverage.* events of site, of type
// typ, by group.
func coverageByGroup(t *testing.T, es *eventStream, site, typ string, n int) map[string]coverageEvent {
	t.Helper()
	out := make(map[string]coverageEvent)
	for range n {
		ev, _ := nextCoverage(t, es, site, "")
		if ev.Type != typ {
			t.Fatalf("got %s %s, want %s", ev.Type, ev.Data, typ)
		}
		if _, dup := out[ev.Group]; dup {
			t.Fatalf("got %s for group %q twice: %s", typ, ev.Group, ev.Data)
		}
		out[ev.Group] = ev
	}
	return out
}

// expectNoMoreCoverage makes a change on another site, a sentinel, and
// fails if a coverage.* event of site comes before its events.
func expectNoMoreCoverage(t *testing.T, es *eventStream, h *testHub, site string) {
	t.Helper()
	connect(t, h, "sentinel", "sam", nil, newQueue(16))
	if ev, ok := nextCoverage(t, es, site, "sentinel"); ok {
		t.Fatalf("got %s %s, want no more coverage events", ev.Type, ev.Data)
	}
}

// waitSettings waits until every hub has applied the site's settings.
func waitSettings(t *testing.T, ns *natsserver.Server, site string, hubs ...*testHub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rev := lastRevision(t, ns, "s."+site)
	for _, h := range hubs {
		if err := h.WaitApplied(ctx, site, rev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUncoveredAlertOnceFromTwoReplicas: the last agent of a site leaves;
// after the alert's delay, kept by NATS, both replicas see the gap and the
// stream holds one coverage.lost for the site's widget and one for the
// group's; when the agent is back, one coverage.restored each.
func TestUncoveredAlertOnceFromTwoReplicas(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	// Every copy every replica publishes, before JetStream drops any.
	published := make(chan *nats.Msg, 64)
	if _, err := natstest.Connect(t, ns).ChanSubscribe("presence.events.acme.coverage.>", published); err != nil {
		t.Fatal(err)
	}
	a := startEventHub(t, ns, time.Hour)
	b := startEventHub(t, ns, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	dev := newQueue(16)
	alice := connect(t, a, "acme", "alice", []string{"sales"}, dev)
	dev.expect(t, "welcome")
	const alert = 2 * time.Second
	putSettings(t, a, "acme", presence.Settings{UncoveredAlert: alert.String()})
	waitSettings(t, ns, "acme", a, b)

	if err := alice.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	lost := coverageByGroup(t, es, "acme", events.TypeCoverageLost, 2)
	for _, g := range []string{"", "sales"} {
		ev, ok := lost[g]
		if !ok {
			t.Fatalf("got coverage.lost for %v, want the site's and sales'", lost)
		}
		since, err := time.Parse(time.RFC3339Nano, ev.Since)
		if err != nil || ev.Reason != string(presence.ReasonNoAgents) || time.Time(ev.Timestamp).Sub(since) < alert {
			t.Fatalf("got coverage.lost %s at %v, want reason no_agents, since at least %v before", ev.Data, time.Time(ev.Timestamp), alert)
		}
	}

	// Alice comes back, through the other replica.
	connect(t, b, "acme", "alice", []string{"sales"}, newQueue(16))
	restored := coverageByGroup(t, es, "acme", events.TypeCoverageRestored, 2)
	for g, ev := range restored {
		l, ok := lost[g]
		if !ok {
			t.Fatalf("got coverage.restored %s for a group that was not lost", ev.Data)
		}
		if ev.LostFor < alert.Seconds() {
			t.Fatalf("got coverage.restored %s, want lost_for at least the alert's %v", ev.Data, alert)
		}
		// The ids of one loss name the same since.
		if strings.TrimSuffix(ev.ID, events.TypeCoverageRestored) != strings.TrimSuffix(l.ID, events.TypeCoverageLost) {
			t.Fatalf("coverage.restored %s and coverage.lost %s name different losses", ev.ID, l.ID)
		}
	}
	expectNoMoreCoverage(t, es, a, "acme")

	// Each replica published its own copies; the stream kept one of each.
	copies := make(map[string]int)
	for len(copies) < 4 {
		select {
		case msg := <-published:
			copies[msg.Header.Get("Nats-Msg-Id")]++
		case <-ctx.Done():
			t.Fatalf("got copies of %v in time, want 4 events", copies)
		}
	}
	for n := len(published); n > 0; n-- {
		copies[(<-published).Header.Get("Nats-Msg-Id")]++
	}
	t.Logf("copies published by the two replicas: %v", copies)
	if len(copies) != 4 {
		t.Fatalf("replicas published events with ids %v, want 4", copies)
	}
}

// TestUncoveredAlertNotOutsideHours: a site whose hours are closed has no
// coverage to lose: its widget and that of a group following its hours
// are offline outside_hours, and no alert starts for them. A group with
// hours of its own, open, does lose coverage, and that alert is the
// sentinel: the keys written for it come after any the others would have
// had.
func TestUncoveredAlertNotOutsideHours(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	a := startEventHub(t, ns, time.Hour)
	b := startEventHub(t, ns, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// The site is always closed; vip is open around the clock.
	allDay := map[string][]presence.Interval{}
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		allDay[d] = []presence.Interval{{From: "00:00", To: "24:00"}}
	}
	if err := a.PutSchedule(ctx, "acme", "", &presence.Schedule{Timezone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	if err := a.PutSchedule(ctx, "acme", "vip", &presence.Schedule{Timezone: "UTC", Weekly: allDay}); err != nil {
		t.Fatal(err)
	}
	alice := connect(t, a, "acme", "alice", []string{"sales"}, newQueue(16))
	bob := connect(t, b, "acme", "bob", []string{"vip"}, newQueue(16))

	// Every write of a coverage key of the site, from now on.
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchFiltered(ctx, []string{"u.acme", "u.acme.*", "c.acme", "c.acme.*"}, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	putSettings(t, a, "acme", presence.Settings{UncoveredAlert: "2s"})
	waitSettings(t, ns, "acme", a, b)
	if err := alice.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	ev, _ := nextCoverage(t, es, "acme", "")
	if ev.Type != events.TypeCoverageLost || ev.Group != "vip" {
		t.Fatalf("got %s %s, want coverage.lost of vip only", ev.Type, ev.Data)
	}
	// vip's keys, the loss's mark last; nothing of the site or sales.
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			t.Fatal("the loss of vip was not marked in time")
		}
		if e == nil {
			continue
		}
		if !strings.HasSuffix(e.Key(), ".vip") {
			t.Fatalf("got %s of %s written, want no coverage key but vip's", e.Operation(), e.Key())
		}
		if e.Key() == "c.acme.vip" && e.Operation() == jetstream.KeyValuePut {
			break
		}
	}
	expectNoMoreCoverage(t, es, a, "acme")
}

// TestUncoveredAlertSurvivesTheReplicaThatSawTheGap: the replica holding
// the last agent's device, which also owns the duties, sees it leave and
// is killed before the delay; the deadline is NATS's, so the other replica,
// which takes the duties over, still publishes coverage.lost.
func TestUncoveredAlertSurvivesTheReplicaThatSawTheGap(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	a, b := dutyPair(t, ns.ClientURL(), hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	alice := connect(t, a, "acme", "alice", nil, newQueue(16))
	putSettings(t, a, "acme", presence.Settings{UncoveredAlert: "2s"})
	waitSettings(t, ns, "acme", a, b)
	if err := alice.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	a.crash()
	ev, _ := nextCoverage(t, es, "acme", "")
	if ev.Type != events.TypeCoverageLost || ev.Group != "" || ev.Reason != string(presence.ReasonNoAgents) {
		t.Fatalf("got %s %s, want coverage.lost of the site, no_agents", ev.Type, ev.Data)
	}
	expectNoMoreCoverage(t, es, b, "acme")
}

// TestUncoveredAlertEndsWhenHoursClose: a widget uncovered just before its
// hours close has no alert: at the closing boundary its deadline, the u.
// key, is removed, so it never expires.
//
// The hub's clock is set a few seconds before a whole-minute boundary (as
// in the hours events tests).
func TestUncoveredAlertEndsWhenHoursClose(t *testing.T) {
	ns := natstest.Start(t)
	openEvents(t, ns)
	var clock fakeClock
	now := clock.now
	h := startHubWith(t, ns.ClientURL(), nil, store.BucketConfig{LimitMarkerTTL: time.Second},
		hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true, Now: now}, waitTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// The fake clock reads 6s before a 17:00 close, whatever the real time.
	const ahead = 6 * time.Second
	boundary := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	clock.set(boundary.Add(-ahead))
	// Open today until the boundary.
	if err := h.PutSchedule(ctx, "acme", "", &presence.Schedule{Timezone: "UTC", Exceptions: []presence.Exception{{
		Date:  boundary.Format(time.DateOnly),
		Hours: []presence.Interval{{From: "00:00", To: boundary.Format("15:04")}},
	}}}); err != nil {
		t.Fatal(err)
	}
	alice := connect(t, h, "acme", "alice", nil, newQueue(16))

	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "u.acme", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() jetstream.KeyValueEntry {
		for {
			select {
			case e := <-w.Updates():
				if e != nil {
					return e
				}
			case <-ctx.Done():
				t.Fatal("no write of u.acme in time")
			}
		}
	}

	putSettings(t, h, "acme", presence.Settings{UncoveredAlert: "1h"})
	if err := alice.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Operation() != jetstream.KeyValuePut {
		t.Fatalf("got %s of u.acme, want the deadline created", e.Operation())
	}
	if !now().Before(boundary) {
		t.Fatalf("the boundary %v passed before the deadline was created: the machine is too slow for this test", boundary)
	}
	if e := next(); e.Operation() == jetstream.KeyValuePut || string(e.Value()) != "cleared" {
		t.Fatalf("got %s %q of u.acme, want it removed at the close", e.Operation(), e.Value())
	}
	if !now().After(boundary) {
		t.Fatalf("the deadline was removed before the close at %v", boundary)
	}
}
