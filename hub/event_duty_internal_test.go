package hub

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// A standby keeps the events it derives; when a new owner announces the
// revision it loaded from, the standby publishes what it kept up to it, and
// what it derives later up to it at once, while it keeps the rest; when it
// comes to own the partition, it publishes the rest and then publishes as
// the owner. Each change's events reach the stream once, in order.
func TestStandbyPublishesWhatItKept(t *testing.T) {
	b := newBucketEntries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := events.OpenStream(ctx, b.js, events.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{JetStream: b.js, Bucket: b.bucket, Events: true})
	if err != nil {
		t.Fatal(err)
	}
	h.ready.Store(true)
	ownEvents(h, 0, false)
	w := newWatcher(h, 0)
	stored := func() uint64 {
		t.Helper()
		select {
		case <-h.events.Complete():
		case <-ctx.Done():
			t.Fatal("events not acknowledged in time")
		}
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	status := func(st presence.Status) uint64 {
		e := b.entry(store.AgentKey("acme", "alice").String(), store.AgentRecord{Status: st, ByDevice: "d1", At: time.Now()})
		w.apply(ctx, e)
		return e.Rev
	}
	// alice's device, then three changes of her status: each change is
	// one agent.status event (she is online through her device, busy is an
	// availability change too, and the site's widget moves).
	w.apply(ctx, b.entry(store.LeaseKey("acme", "alice", "d1").String(), store.DeviceRecord{Kind: presence.Desktop, Session: "s1", State: presence.Live}))
	first := status(presence.Online)
	second := status(presence.Busy)
	third := status(presence.Online)
	if n := stored(); n != 0 {
		t.Fatalf("the standby published %d events, want none: it keeps them", n)
	}
	ev := h.duty.eventDuty(0)

	// A new owner loaded up to the second change: the standby publishes
	// what it kept up to it, and keeps the third's.
	h.duty.announced(0, "another", second)
	upToSecond := stored()
	if upToSecond == 0 {
		t.Fatal("the standby published nothing up to the announced revision")
	}
	ev.mu.Lock()
	kept := len(ev.kept) - ev.head
	ev.mu.Unlock()
	if kept != 1 {
		t.Fatalf("the standby keeps %d changes' events, want the third's only", kept)
	}
	// An announcement of its own load changes nothing.
	h.duty.announced(0, h.memberID, third)
	if n := stored(); n != upToSecond {
		t.Fatalf("the stream holds %d events after the standby's own announcement, want %d", n, upToSecond)
	}

	// It comes to own the partition: the third change's events, then a
	// fourth's, published as the owner.
	h.duty.acquire(0)
	fourth := status(presence.Busy)
	total := stored()
	if total <= upToSecond {
		t.Fatal("the new owner published nothing")
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var revs []uint64
	for range total {
		msg, err := cons.Next()
		if err != nil {
			t.Fatal(err)
		}
		var e events.Event
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == events.TypeAgentStatus {
			n, _, _ := strings.Cut(e.ID, ".")
			rev, err := strconv.ParseUint(n, 10, 64)
			if err != nil {
				t.Fatalf("event id %q does not start with a revision", e.ID)
			}
			revs = append(revs, rev)
		}
	}
	if want := []uint64{first, second, third, fourth}; !slices.Equal(revs, want) {
		t.Fatalf("the stream holds agent.status events of revisions %v, want %v, once each, in order", revs, want)
	}
}

// A standby keeps the events of at most Config.StandbyKept changes: the
// oldest are forgotten first, and counted.
func TestStandbyKeepsAtMostItsBound(t *testing.T) {
	b := newBucketEntries(t)
	h, err := New(Config{JetStream: b.js, Bucket: b.bucket, Events: true, StandbyKept: 2})
	if err != nil {
		t.Fatal(err)
	}
	ownEvents(h, 0, false)
	ev := h.duty.eventDuty(0)
	for rev := uint64(1); rev <= 3; rev++ {
		h.publishEvents(0, rev, []events.Event{{ID: strconv.FormatUint(rev, 10) + ".agent.status.alice", Type: events.TypeAgentStatus, Site: "acme"}})
	}
	ev.mu.Lock()
	var revs []uint64
	for _, k := range ev.kept[ev.head:] {
		revs = append(revs, k.rev)
	}
	ev.mu.Unlock()
	if !slices.Equal(revs, []uint64{2, 3}) {
		t.Fatalf("the standby keeps the changes of revisions %v, want the last 2: [2 3]", revs)
	}
	var m dto.Metric
	if err := h.metrics.eventsKeptDropped.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Fatalf("got %v changes counted as forgotten, want 1", got)
	}
}
