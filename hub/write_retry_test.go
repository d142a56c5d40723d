package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// kvErrors is the hub's count of failed bucket operations: a retried write
// adds one per failed attempt.
func kvErrors(t *testing.T, h *testHub) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == "presencehub_kv_errors_total" {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// cutOffSession starts a hub reaching NATS through a proxy and a session of
// alice on it, then cuts the hub off NATS.
func cutOffSession(t *testing.T) (*testHub, *natstest.Proxy, *hub.Session, *queue) {
	t.Helper()
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	a := startHubAt(t, proxy.URL(), time.Hour)
	dev := newQueue(16)
	s := connect(t, a, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")

	proxy.Cut()
	wstest.Eventually(t, waitTimeout, "the hub sees NATS gone", func() bool { return a.Healthy() != nil })
	return a, proxy, s, dev
}

// A status change made while the hub cannot reach NATS waits, and is
// stored once NATS is back, instead of failing.
func TestStatusChangeRidesOutOutage(t *testing.T) {
	a, proxy, s, dev := cutOffSession(t)
	before := kvErrors(t, a)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
		defer cancel()
		done <- s.SetStatus(ctx, presence.Busy, "r1")
	}()
	wstest.Eventually(t, waitTimeout, "the change has failed once and is being retried", func() bool { return kvErrors(t, a) > before })
	proxy.Restore()
	if err := <-done; err != nil {
		t.Fatalf("got %v, want the change stored once NATS is back", err)
	}
	dev.expect(t, "status", "status", "busy", "ref", "r1")
	wstest.Eventually(t, waitTimeout, "the hub is ready again", func() bool { return a.Healthy() == nil })
}

// A change whose caller gives up while NATS is away is reported as of
// unknown outcome, not as failed: the client library buffered it, and it
// lands once NATS is back, which the device learns from the status frame
// carrying its ref.
func TestStatusChangeOfUnknownOutcomeSaysSo(t *testing.T) {
	_, proxy, s, dev := cutOffSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := s.SetStatus(ctx, presence.Busy, "maybe")
	if !errors.Is(err, hub.ErrOutcomeUnknown) {
		t.Fatalf("got %v, want ErrOutcomeUnknown", err)
	}
	proxy.Restore()
	dev.expect(t, "status", "status", "busy", "ref", "maybe")
}

// A bye that NATS cannot take is not confirmed: Bye says ErrNotStored at
// once when its caller gives up, and the purge goes on in the background
// (owned by Run: the package's goleak check fails if it outlives the test)
// until NATS takes it, long before the grace would have ended.
func TestByeNotStoredIsReportedAndRetried(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	a := startHubAt(t, proxy.URL(), time.Hour)
	b := startHub(t, ns, time.Hour)
	w := newQueue(16)
	subscribeWidget(t, b, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	s := connect(t, a, "acme", "alice", nil, newQueue(16))
	w.expect(t, "widget_status", "status", "online")

	proxy.Cut()
	wstest.Eventually(t, waitTimeout, "the hub sees NATS gone", func() bool { return a.Healthy() != nil })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Bye(ctx); !errors.Is(err, hub.ErrNotStored) {
		t.Fatalf("got %v, want ErrNotStored", err)
	}
	w.empty(t)
	proxy.Restore()
	w.expect(t, "widget_status", "status", "offline", "reason", "no_agents")
}
