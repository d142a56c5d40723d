package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// Two replicas on one bucket both pass a working-hours boundary: the
// partition's owner publishes the boundary's widget.status events, once
// each, the other (its standby) keeps them, and the stream holds each
// once, stamped with the boundary.
//
// Schedules have whole-minute boundaries, so the hubs' clock runs ahead of
// the real one by an offset that puts the next boundary a few seconds away;
// nothing else in the hubs reads that clock for the events of this test
// (entries are stamped by NATS).
func TestHoursBoundaryIsInTheEventStreamOnceFromTwoReplicas(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	// Every copy every replica publishes, before JetStream drops any.
	published := make(chan *nats.Msg, 256)
	if _, err := natstest.Connect(t, ns).ChanSubscribe("presence.events.>", published); err != nil {
		t.Fatal(err)
	}
	var clock fakeClock
	now := clock.now
	start := func() *testHub {
		return startHubWith(t, ns.ClientURL(), nil, store.BucketConfig{LimitMarkerTTL: time.Second},
			hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true, Now: now}, waitTimeout)
	}
	a, b := start(), start()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// vip has hours of its own, open around the clock: the site's boundary
	// does not move its widget.
	allDay := map[string][]presence.Interval{}
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		allDay[d] = []presence.Interval{{From: "00:00", To: "24:00"}}
	}
	if err := a.PutSchedule(ctx, "acme", "vip", &presence.Schedule{Timezone: "UTC", Weekly: allDay}); err != nil {
		t.Fatal(err)
	}
	connect(t, a, "acme", "alice", []string{"sales"}, newQueue(16))
	connect(t, b, "acme", "bob", []string{"vip"}, newQueue(16))

	// The site opens at the boundary, for a minute. Before, it has no
	// hours (so the entries above are not evaluated against them). The
	// boundary is ahead by the time storing the schedule and both views
	// applying it may take on a busy machine; the clock only moves ahead.
	const ahead = 6 * time.Second
	boundary := time.Now().Add(ahead + time.Second).Truncate(time.Minute).Add(time.Minute).UTC()
	clock.set(boundary.Add(-ahead))
	if err := a.PutSchedule(ctx, "acme", "", &presence.Schedule{Timezone: "UTC", Exceptions: []presence.Exception{{
		Date:  boundary.Format(time.DateOnly),
		Hours: []presence.Interval{{From: boundary.Format("15:04"), To: endOfMinute(boundary)}},
	}}}); err != nil {
		t.Fatal(err)
	}
	rev := lastRevision(t, ns, "h.acme")
	settle(t, rev, a, b)
	if !now().Before(boundary) {
		t.Fatalf("the boundary %v passed while the schedule was being stored: the machine is too slow for this test", boundary)
	}

	prefix := fmt.Sprintf("hours.acme..%d.widget.status.", boundary.Unix())
	want := map[string]string{
		prefix:           `widget.status "" online`,
		prefix + "sales": `widget.status "sales" online`,
	}
	// One replica, the partition's owner, publishes each event; the other
	// derives it too, as the partition's standby, and keeps it.
	copies := make(map[string]int)
	for n := 0; n < len(want); {
		select {
		case msg := <-published:
			id := msg.Header.Get("Nats-Msg-Id")
			if !strings.HasPrefix(id, "hours.") {
				continue // an entry's event
			}
			if _, ok := want[id]; !ok {
				t.Fatalf("a replica published %s (%s), want only %v", id, msg.Data, want)
			}
			copies[id]++
			n++
		case <-ctx.Done():
			t.Fatalf("got %d of the boundary's events in time, want %d", n, len(want))
		}
	}
	// A sentinel change marks the end of what the boundary caused: its
	// events come after any second copy the replicas published at the
	// boundary.
	connect(t, a, "globex", "sam", nil, newQueue(16))
	for sentinel := false; !sentinel; {
		select {
		case msg := <-published:
			sentinel = strings.HasPrefix(msg.Subject, "presence.events.globex.")
			if id := msg.Header.Get("Nats-Msg-Id"); strings.HasPrefix(id, "hours.") {
				copies[id]++
			}
		case <-ctx.Done():
			t.Fatal("the sentinel's events were not published in time")
		}
	}
	for id, n := range copies {
		if n != 1 {
			t.Fatalf("%s was published %d times, want once", id, n)
		}
	}

	// The stream holds each once, stamped with the boundary, and nothing
	// about vip after its own hours were stored.
	seen := make(map[string]bool)
	for {
		ev := es.next(t)
		if ev.Site == "globex" {
			break
		}
		var d events.WidgetStatusData
		if ev.Type == events.TypeWidgetStatus {
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
		}
		if !strings.HasPrefix(ev.ID, "hours.") {
			if revOf(t, ev) >= rev && d.Group == "vip" {
				t.Fatalf("got %s (%s), want no event about vip", ev.ID, ev.Data)
			}
			continue
		}
		if s, ok := want[ev.ID]; !ok || summary(t, ev) != s || seen[ev.ID] {
			t.Fatalf("got %s (%s) in the stream, want each of %v once", ev.ID, ev.Data, want)
		}
		seen[ev.ID] = true
		if !time.Time(ev.Timestamp).Equal(boundary) {
			t.Fatalf("event %s is stamped %v, want the boundary %v", ev.ID, time.Time(ev.Timestamp), boundary)
		}
		if d.NextChange == nil || !time.Time(*d.NextChange).Equal(boundary.Add(time.Minute)) {
			t.Fatalf("event %s says next_change %v, want %v", ev.ID, d.NextChange, boundary.Add(time.Minute))
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("the stream holds %v of the boundary's events, want %v", seen, want)
	}
}

// endOfMinute is the wall time a minute after t, "24:00" at midnight.
func endOfMinute(t time.Time) string {
	if end := t.Add(time.Minute); end.Day() == t.Day() {
		return end.Format("15:04")
	}
	return "24:00"
}

// lastRevision is the revision of key in the bucket.
func lastRevision(t *testing.T, ns *natsserver.Server, key string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return e.Revision()
}
