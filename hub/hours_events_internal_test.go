package hub

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// A hand-set clock: the boundary timers are armed for hours ahead of it and
// never fire during the test; the test fires them by calling onBoundary
// itself, with the clock set to when the timer fires (late).

type handClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *handClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *handClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// fireBoundary fires the armed timer of (site, group) as if it ran now,
// and returns the boundary it was armed for.
func fireBoundary(t *testing.T, h *Hub, siteID, group string) time.Time {
	t.Helper()
	s := h.view.lockExistingSite(siteID)
	ht := s.timers[group]
	h.view.unlockSite(s)
	if ht == nil {
		t.Fatalf("no timer armed for %q", group)
	}
	h.rules.onBoundary(siteID, group, ht)
	return ht.at
}

func TestBoundaryEventsAreStampedWithTheBoundaryNotTheFiring(t *testing.T) {
	b := newBucketEntries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := events.OpenStream(ctx, b.js, events.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() events.Event {
		t.Helper()
		msg, err := cons.Next(jetstream.FetchMaxWait(15 * time.Second))
		if err != nil {
			t.Fatalf("no event arrived: %v", err)
		}
		var ev events.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if id := msg.Headers().Get("Nats-Msg-Id"); id != ev.ID {
			t.Fatalf("got Nats-Msg-Id %q for event %s", id, msg.Data())
		}
		return ev
	}

	clock := &handClock{now: time.Date(2026, 1, 12, 8, 0, 0, 0, time.UTC)} // a Monday
	h, err := New(Config{JetStream: b.js, Bucket: b.bucket, Events: true, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.ready.Store(true)
	defer h.rules.stopTimers()
	daily := map[string][]presence.Interval{}
	allDay := map[string][]presence.Interval{}
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		daily[d] = []presence.Interval{{From: "09:00", To: "17:00"}}
		allDay[d] = []presence.Interval{{From: "00:00", To: "24:00"}}
	}
	// alice (sales) follows the site's hours; bob's group vip has hours of
	// its own, open around the clock, so the site's boundaries do not move
	// its widget; carol's group ops has no one online: not a widget.
	for _, e := range []*store.Entry{
		b.entry(store.HoursKey("acme", "").String(), presence.Schedule{Timezone: "UTC", Weekly: daily}),
		b.entry(store.HoursKey("acme", "vip").String(), presence.Schedule{Timezone: "UTC", Weekly: allDay}),
		b.entry(store.AgentKey("acme", "alice").String(), store.AgentRecord{Status: presence.Online, Groups: []string{"sales"}}),
		b.entry(store.LeaseKey("acme", "alice", "d1").String(), store.DeviceRecord{Kind: presence.Desktop, Session: "s1", State: presence.Live}),
		b.entry(store.AgentKey("acme", "bob").String(), store.AgentRecord{Status: presence.Online, Groups: []string{"vip"}}),
		b.entry(store.LeaseKey("acme", "bob", "d2").String(), store.DeviceRecord{Kind: presence.Desktop, Session: "s2", State: presence.Live}),
		b.entry(store.AgentKey("acme", "carol").String(), store.AgentRecord{Status: presence.Online, Groups: []string{"ops"}}),
	} {
		testWatcher(h).apply(context.Background(), e)
	}
	// The entries' events go first.
	acked := func() {
		t.Helper()
		select {
		case <-h.events.Complete():
		case <-ctx.Done():
			t.Fatal("events not acknowledged in time")
		}
	}
	acked()
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nEntryEvents := int(info.State.Msgs)
	for range nEntryEvents {
		if ev := next(); ev.Timestamp == (protocol.Time{}) {
			t.Fatalf("entry event %s has no time", ev.ID)
		}
	}

	opens := time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)
	closes := time.Date(2026, 1, 12, 17, 0, 0, 0, time.UTC)
	// The timer fires 750ms late: the events still say 09:00.
	clock.set(opens.Add(750 * time.Millisecond))
	if at := fireBoundary(t, h, "acme", ""); !at.Equal(opens) {
		t.Fatalf("timer was armed for %v, want %v", at, opens)
	}
	want := []events.WidgetStatusData{
		{Group: "", Status: presence.Online, Reason: presence.ReasonAgentsOnline, NextChange: protocol.OptionalTime(closes)},
		// ops has a member, none online: its widget opens too.
		{Group: "ops", Status: presence.Offline, Reason: presence.ReasonNoAgents, NextChange: protocol.OptionalTime(closes)},
		{Group: "sales", Status: presence.Online, Reason: presence.ReasonAgentsOnline, NextChange: protocol.OptionalTime(closes)},
	}
	for _, w := range want {
		expectBoundaryEvent(t, next(), "hours.acme..1768208400.widget.status."+w.Group, opens, w)
	}

	// The timer for 17:00 fires a minute late (a process suspended that
	// long): another replica's copy may be out of the duplicate window,
	// so this one publishes nothing. The next boundary, on time, is the
	// next event.
	clock.set(closes.Add(resyncEventAge))
	fireBoundary(t, h, "acme", "")
	reopens := opens.AddDate(0, 0, 1)
	clock.set(reopens)
	fireBoundary(t, h, "acme", "")
	for _, w := range want {
		w.NextChange = protocol.OptionalTime(closes.AddDate(0, 0, 1))
		expectBoundaryEvent(t, next(), "hours.acme..1768294800.widget.status."+w.Group, reopens, w)
	}
	// Nothing else: not vip (its own hours), not the late boundary.
	acked()
	info, err = stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Msgs, uint64(nEntryEvents+2*len(want)); got != want {
		t.Fatalf("stream holds %d events, want %d", got, want)
	}
}

func expectBoundaryEvent(t *testing.T, ev events.Event, id string, at time.Time, want events.WidgetStatusData) {
	t.Helper()
	if ev.ID != id || ev.Type != events.TypeWidgetStatus || ev.Site != "acme" {
		t.Fatalf("got event %s %s of %s, want %s", ev.ID, ev.Type, ev.Site, id)
	}
	if !time.Time(ev.Timestamp).Equal(at) {
		t.Fatalf("event %s is stamped %v, want the boundary %v", ev.ID, time.Time(ev.Timestamp).UTC(), at)
	}
	var got events.WidgetStatusData
	if err := json.Unmarshal(ev.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Group != want.Group || got.Status != want.Status || got.Reason != want.Reason ||
		got.NextChange == nil || !time.Time(*got.NextChange).Equal(time.Time(*want.NextChange)) {
		t.Fatalf("event %s says %s, want %+v next %v", ev.ID, ev.Data, want, time.Time(*want.NextChange))
	}
}
