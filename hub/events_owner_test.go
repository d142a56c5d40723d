package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// The replica that publishes a partition's events is killed part-way
// through a run of changes: the standby, which derived the same events and
// kept them, comes to own the partition and publishes what it kept, so
// every change has its event in the stream, once, in the order of the
// changes, whichever of them the dead owner had published.
func TestOwnerKilledPartWayEachEventOnce(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	owner, standby, other := dutyTrio(t, ns.ClientURL(), hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// The changes are made on the third replica, which lives on.
	alice := connect(t, other, "acme", "alice", nil, newQueue(256))
	statuses := make([]presence.Status, 40)
	for i := range statuses {
		statuses[i] = []presence.Status{presence.Busy, presence.Online}[i%2]
	}
	for i, st := range statuses {
		if i == len(statuses)/2 {
			owner.crash()
		}
		if err := alice.SetStatus(ctx, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	// A sentinel after the last change: the standby, owner once the dead
	// one's liveness ran out, publishes it after what it kept.
	connect(t, other, "globex", "sam", nil, newQueue(16))
	var got []events.Event
	seen := make(map[string]bool)
	for ev := es.next(t); ev.Site != "globex"; ev = es.next(t) {
		if seen[ev.ID] {
			t.Fatalf("event %s is in the stream twice", ev.ID)
		}
		seen[ev.ID] = true
		if ev.Type == events.TypeAgentStatus {
			got = append(got, ev)
		}
	}
	if len(got) != len(statuses) {
		t.Fatalf("got %d agent.status events, want one for each of the %d changes", len(got), len(statuses))
	}
	prev := presence.Online
	for i, ev := range got {
		if s, want := summary(t, ev), fmt.Sprintf("agent.status alice %s->%s", prev, statuses[i]); s != want {
			t.Fatalf("agent.status event %d is %s, want %s", i, s, want)
		}
		if i > 0 && revOf(t, ev) <= revOf(t, got[i-1]) {
			t.Fatalf("agent.status event %d (%s) comes after a later change's (%s)", i, ev.ID, got[i-1].ID)
		}
		prev = statuses[i]
	}
	if n := counterSum(t, standby, "presencehub_events_standby_published_total"); n == 0 {
		t.Error("the standby published none of the events it kept, want those of the changes the dead owner had not published")
	}
}

// A watch held back while one key changes many times still derives every
// change's event, in order: it reads the messages NATS republished as it
// stored them, kept for it meanwhile, not the bucket, which keeps each
// key's last revision only. Here the owner's watch is held back while the
// agent's status changes heldBackChanges times through the standby.
func TestHeldBackWatchDerivesEveryChange(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	owner, standby := dutyPair(t, ns.ClientURL(), hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	alice := connect(t, standby, "acme", "alice", nil, newQueue(16))
	expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`)

	release := owner.HoldBackWatches()
	statuses := make([]presence.Status, heldBackChanges)
	for i := range statuses {
		statuses[i] = []presence.Status{presence.Busy, presence.Online}[i%2]
		if err := alice.SetStatus(ctx, statuses[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	release()
	prev := presence.Online
	for i, st := range statuses {
		ev := es.next(t)
		for ev.Type != events.TypeAgentStatus {
			ev = es.next(t)
		}
		if s, want := summary(t, ev), fmt.Sprintf("agent.status alice %s->%s", prev, st); s != want {
			t.Fatalf("agent.status event %d is %s, want %s", i, s, want)
		}
		prev = st
	}
	if n := counterSum(t, owner, "presencehub_watch_missed_revisions_total"); n != 0 {
		t.Errorf("the held-back watch missed %v revisions, want none", n)
	}
}

// heldBackChanges is how many changes TestHeldBackWatchDerivesEveryChange
// makes while the watch is held back.
const heldBackChanges = 300
