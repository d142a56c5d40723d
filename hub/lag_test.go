package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// TestLaggingWatchMissesNothing holds the hub's bucket watch back, as an
// overloaded hub does, while the agent changes status several times. The
// watch reads the messages NATS republished as it stored them, kept for it
// meanwhile, so once it goes on it applies every change, in order, and
// misses no revision (the bucket, which keeps one revision per key, no
// longer has the replaced statuses); the device and the widget end at the
// latest status.
func TestLaggingWatchMissesNothing(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Hour)
	w := newQueue(64)
	subscribeWidget(t, h, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	dev := newQueue(64)
	s := connect(t, h, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")
	w.expect(t, "widget_status", "status", "online")

	// The hub owns the duties: once its whole-bucket watch has loaded, the
	// site comes through it alone.
	wstest.Eventually(t, waitTimeout, "the whole-bucket watch holds the site", func() bool {
		return gauge(t, h, "presencehub_site_subscriptions") == 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	release := h.HoldBackWatches()
	// busy, online, busy, online, busy while the watch is held back; the
	// writes wait for the view, so they are made from another goroutine.
	const changes = 5
	status := func(i int) presence.Status { return []presence.Status{presence.Busy, presence.Online}[i%2] }
	written := make(chan error, 1)
	go func() {
		for i := range changes {
			if err := s.SetStatus(ctx, status(i), fmt.Sprintf("r%d", i)); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	release()
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("r%d", changes-1)
	for f := dev.next(t); f["ref"] != last; f = dev.next(t) {
	}
	for f := w.next(t); f["status"] != string(status(changes-1)); f = w.next(t) {
	}
	if got := counterValue(t, h.reg, "presencehub_watch_missed_revisions_total"); got != 0 {
		t.Fatalf("got %v missed revisions, want none", got)
	}
}

// counterValue reads a counter without labels from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("got no metric %s", name)
	return 0
}

// A device that connects while the view lags (its watch held back, as
// while the hub is overloaded) keeps its first lease alive until the view shows
// it, even for longer than the grace, and is not refused as replaced.
func TestConnectKeepsFirstLeaseWhileViewLags(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 2 * time.Second
	h := startHub(t, ns, grace)
	// The hub owns the duties: once its whole-bucket watch has loaded, a
	// site comes through it alone.
	wstest.Eventually(t, waitTimeout, "the whole-bucket watch loads", func() bool {
		return gauge(t, h, "presencehub_duties") == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	release := h.HoldBackWatches()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	const device = "6f1d3c2a-5b4e-4d7f-8a9b-0c1d2e3f4a5b"
	leases, err := kv.Watch(ctx, "d.acme.alice."+device, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Stop()

	type result struct {
		s   *hub.Session
		err error
	}
	done := make(chan result, 1)
	dev := newQueue(16)
	go func() {
		s, err := h.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{ID: device, Kind: presence.Desktop}, dev)
		done <- result{s, err}
	}()
	// Writes of the lease until they span more than the grace: the first
	// one and the refreshes Connect makes while it waits.
	var first time.Time
	for span := time.Duration(0); span <= grace; {
		select {
		case e := <-leases.Updates():
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				t.Fatalf("got %v on the waiting device's lease, want only writes", e.Operation())
			}
			if first.IsZero() {
				first = e.Created()
			}
			span = e.Created().Sub(first)
		case <-ctx.Done():
			t.Fatal("the waiting device's lease was not kept")
		}
	}
	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("got %v, want the device connected once the view caught up", r.err)
	}
	dev.expect(t, "welcome")
}
