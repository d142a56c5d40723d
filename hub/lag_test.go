package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// TestLaggingWatchEndsAtLatestAndCountsWhatItMissed holds the hub's bucket
// watch back on the server, as an overloaded NATS does, while the agent
// changes status several times. The bucket keeps one revision per key (its
// leases need that), so the statuses replaced meanwhile are gone: the
// device and the widget must get the latest status, once, and the hub must
// count the revisions it never read.
func TestLaggingWatchEndsAtLatestAndCountsWhatItMissed(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Hour)
	w := newQueue(16)
	subscribeWidget(t, h, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	dev := newQueue(16)
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
	js, stream, watch := pauseWatch(ctx, t, ns)
	// busy, online, busy, online, busy while the watch is held back.
	const changes = 5
	status := func(i int) presence.Status { return []presence.Status{presence.Busy, presence.Online}[i%2] }
	for i := range changes {
		if err := s.SetStatus(ctx, status(i), fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.ResumeConsumer(ctx, stream, watch); err != nil {
		t.Fatalf("failed to resume the watch: %v", err)
	}
	// A resumed consumer may wait for news before it delivers again: a key
	// the hub ignores is news that changes nothing.
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "test.nudge", nil); err != nil {
		t.Fatal(err)
	}
	dev.expect(t, "status", "status", string(status(changes-1)), "ref", fmt.Sprintf("r%d", changes-1))
	w.expect(t, "widget_status", "status", string(status(changes-1)))
	if got, want := counterValue(t, h.reg, "presencehub_watch_missed_revisions_total"), float64(changes-1); got != want {
		t.Fatalf("got %v missed revisions, want %v: the changes replaced while the watch was held", got, want)
	}
	dev.empty(t)
	w.empty(t)
}

// pauseWatch holds the hub's bucket watch (the one consumer of the bucket's
// stream on ns) back on the server, as an overloaded NATS does, and returns
// a JetStream client of the test's own, the stream and the consumer, for
// resuming it.
func pauseWatch(ctx context.Context, t *testing.T, ns *natsserver.Server) (jetstream.JetStream, string, string) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	stream := "KV_" + store.DefaultBucket
	watch := watchConsumer(ctx, t, js, stream)
	if _, err := js.PauseConsumer(ctx, stream, watch, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("failed to pause the watch: %v", err)
	}
	return js, stream, watch
}

// watchConsumer returns the name of the one consumer on stream: the hub's
// bucket watch.
func watchConsumer(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range st.ConsumerNames(ctx).Name() {
		names = append(names, name)
	}
	if len(names) != 1 {
		t.Fatalf("got consumers %v on %s, want only the hub's watch", names, stream)
	}
	return names[0]
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
// during a watch restart) keeps its first lease alive until the view shows
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
	js, stream, watch := pauseWatch(ctx, t, ns)
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
	if _, err := js.ResumeConsumer(ctx, stream, watch); err != nil {
		t.Fatalf("failed to resume the watch: %v", err)
	}
	if _, err := kv.Put(ctx, "test.nudge", nil); err != nil { // see TestLaggingWatch...
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("got %v, want the device connected once the view caught up", r.err)
	}
	dev.expect(t, "welcome")
}
