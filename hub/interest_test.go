package hub_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// gauge returns the sum of a gauge's series on h.
func gauge(t *testing.T, h *testHub, name string) float64 {
	t.Helper()
	return metricSum(t, h, name, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

// counterSum returns the sum of a counter's series on h.
func counterSum(t *testing.T, h *testHub, name string) float64 {
	t.Helper()
	return metricSum(t, h, name, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

// metricSum returns the sum of value over the series of metric name on h.
func metricSum(t *testing.T, h *testHub, name string, value func(*dto.Metric) float64) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += value(m)
			}
		}
	}
	return total
}

// dutyPair starts two hubs on url with cfg, waits until ownership of the
// one partition has settled, and returns its owner and the other, its
// standby.
func dutyPair(t *testing.T, url string, cfg hub.Config) (owner, other *testHub) {
	t.Helper()
	hs := settledHubs(t, url, cfg, 2)
	return hs[0], hs[1]
}

// dutyTrio is dutyPair with three hubs: the partition's owner, its standby,
// and one that is neither.
func dutyTrio(t *testing.T, url string, cfg hub.Config) (owner, standby, other *testHub) {
	t.Helper()
	hs := settledHubs(t, url, cfg, 3)
	return hs[0], hs[1], hs[2]
}

// settledHubs starts n hubs on url with cfg (one partition) and returns
// them once ownership has settled: the partition's owner first, then its
// standby, then the others.
func settledHubs(t *testing.T, url string, cfg hub.Config, n int) []*testHub {
	t.Helper()
	bucket := store.BucketConfig{LimitMarkerTTL: time.Second}
	var hs []*testHub
	for range n {
		hs = append(hs, startHubWith(t, url, nil, bucket, cfg, waitTimeout))
	}
	// Each replica rebalances the partitions at each refresh of its
	// liveness key, and as soon as it sees another replica come: once
	// every key has been refreshed twice, ownership has settled.
	js, err := jetstream.New(natstest.ConnectURL(t, url))
	if err != nil {
		t.Fatal(err)
	}
	members, err := js.KeyValue(context.Background(), store.DefaultBucket+"-cluster")
	if err != nil {
		t.Fatal(err)
	}
	w, err := members.Watch(context.Background(), "r.*", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	beats := make(map[string]int)
	for settled := false; !settled; {
		select {
		case e := <-w.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				beats[e.Key()]++
			}
		case <-time.After(waitTimeout):
			t.Fatalf("got liveness refreshes %v, want %d replicas' twice", beats, n)
		}
		settled = len(beats) == n
		for _, b := range beats {
			settled = settled && b >= 2
		}
	}
	sum := func(name string) (total float64) {
		for _, h := range hs {
			total += gauge(t, h, name)
		}
		return total
	}
	wstest.Eventually(t, waitTimeout, "one hub owns the duties and one stands by", func() bool {
		return sum("presencehub_duties") == 1 && sum("presencehub_standby_partitions") == float64(min(n-1, 1))
	})
	slices.SortStableFunc(hs, func(a, b *testHub) int {
		rank := func(h *testHub) float64 {
			return 2*gauge(t, h, "presencehub_duties") + gauge(t, h, "presencehub_standby_partitions")
		}
		return cmp.Compare(rank(b), rank(a))
	})
	return hs
}

// A replica that neither owns the partition nor stands by for it holds and
// follows a site only while something here needs it: with every device on
// another replica it holds no site at all; a widget
// loads its site and follows its changes; a request loads a site on demand;
// once the last interest ended, the site is dropped after the linger.
func TestReplicaFollowsOnlyItsSites(t *testing.T) {
	ns := natstest.Start(t)
	owner, _, other := dutyTrio(t, ns.ClientURL(), hub.Config{Grace: time.Hour, MarkerTTL: time.Second, FollowLinger: 200 * time.Millisecond})

	sessions := make(map[string]*hub.Session)
	for i := range 5 {
		site := fmt.Sprintf("site-%d", i)
		for _, agent := range []string{"alice", "bob"} {
			dev := newQueue(64)
			sessions[site+"/"+agent] = connect(t, owner, site, agent, nil, dev)
			dev.expect(t, "welcome")
		}
	}
	if n := gauge(t, owner, "presencehub_sites"); n != 5 {
		t.Fatalf("the owner of the duties holds %v sites, want the 5 of its clients", n)
	}
	if n, f := gauge(t, other, "presencehub_sites"), gauge(t, other, "presencehub_followed_sites"); n != 0 || f != 0 {
		t.Fatalf("a replica with no client holds %v sites and follows %v, want none", n, f)
	}

	w := newQueue(16)
	unsubscribe, err := other.SubscribeWidget("site-0", "", w)
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, "widget_status", "site", "site-0", "status", "online")
	if n := gauge(t, other, "presencehub_sites"); n != 1 {
		t.Fatalf("with one widget, the replica holds %v sites, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, agent := range []string{"alice", "bob"} {
		if err := sessions["site-0/"+agent].SetStatus(ctx, presence.Busy, "r"); err != nil {
			t.Fatal(err)
		}
	}
	w.expect(t, "widget_status", "site", "site-0", "status", "busy")
	w.empty(t)

	agents, err := other.Agents("site-3")
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 2 || agents[0].Status != presence.Online || agents[1].Status != presence.Online {
		t.Fatalf("the agents API on the other replica got %+v, want alice and bob online", agents)
	}

	unsubscribe()
	wstest.Eventually(t, waitTimeout, "the replica drops the sites once nothing needs them", func() bool {
		return gauge(t, other, "presencehub_sites") == 0 && gauge(t, other, "presencehub_followed_sites") == 0
	})
}

// leaseRecord reads a device's lease as the bucket holds it.
func leaseRecord(t *testing.T, kv jetstream.KeyValue, key string) (store.DeviceRecord, bool) {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if err != nil {
		return store.DeviceRecord{}, false
	}
	var rec store.DeviceRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	return rec, true
}

// A replica that dies without a word: its liveness key runs out, another
// replica starts the grace of its devices, and its agents go offline once
// the grace is over; the other replica's devices are not touched.
func TestCrashedReplicaDevicesGoOffline(t *testing.T) {
	const grace = 2 * time.Second
	for _, ownerDies := range []bool{true, false} {
		t.Run(fmt.Sprintf("owner of the duties dies=%v", ownerDies), func(t *testing.T) {
			ns := natstest.Start(t)
			dies, stays := dutyPair(t, ns.ClientURL(), hub.Config{Grace: grace, MarkerTTL: time.Second})
			if !ownerDies {
				dies, stays = stays, dies
			}
			w := newQueue(16)
			subscribeWidget(t, stays, "acme", "a", w)
			w.expect(t, "widget_status", "status", "offline")
			wb := newQueue(16)
			subscribeWidget(t, stays, "acme", "b", wb)
			wb.expect(t, "widget_status", "status", "offline")
			connect(t, dies, "acme", "alice", []string{"a"}, newQueue(16))
			w.expect(t, "widget_status", "status", "online")
			connect(t, stays, "acme", "bob", []string{"b"}, newQueue(16))
			wb.expect(t, "widget_status", "status", "online")

			dies.crash()
			// A deadline for failing, not a measure: the bound is the
			// liveness TTL, the grace and a moment.
			w.expect(t, "widget_status", "status", "offline", "reason", "no_agents")
			wb.empty(t)
		})
	}
}

// A device that moves to another replica within its grace (its socket
// dropped, the client reconnected through another) shows nothing to any
// widget; the status it sets from there reaches the widgets of both.
func TestSiteMovesBetweenReplicas(t *testing.T) {
	ns := natstest.Start(t)
	a, b := dutyPair(t, ns.ClientURL(), hub.Config{Grace: time.Hour, MarkerTTL: time.Second, FollowLinger: 200 * time.Millisecond})
	wa, wb := newQueue(16), newQueue(16)
	subscribeWidget(t, a, "acme", "", wa)
	subscribeWidget(t, b, "acme", "", wb)
	wa.expect(t, "widget_status", "status", "offline")
	wb.expect(t, "widget_status", "status", "offline")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := b.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{Kind: presence.Desktop}, newQueue(16))
	if err != nil {
		t.Fatal(err)
	}
	wa.expect(t, "widget_status", "status", "online")
	wb.expect(t, "widget_status", "status", "online")
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	moved, err := a.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{ID: s.Device(), Kind: presence.Desktop}, newQueue(16))
	if err != nil {
		t.Fatal(err)
	}
	if err := moved.SetStatus(ctx, presence.Busy, "moved"); err != nil {
		t.Fatal(err)
	}
	wa.expect(t, "widget_status", "status", "busy")
	wb.expect(t, "widget_status", "status", "busy")
	wa.empty(t)
	wb.empty(t)
}

// A replica cut off from NATS for longer than its liveness TTL finds its
// devices' leases dropped by another replica (their grace started), and
// takes them back once it reaches NATS again; with a grace longer than the
// outage no widget saw anything.
func TestCutOffReplicaTakesItsLeasesBack(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	cfg := hub.Config{Grace: time.Hour, MarkerTTL: time.Second}
	bucket := store.BucketConfig{LimitMarkerTTL: time.Second}
	b := startHubWith(t, ns.ClientURL(), nil, bucket, cfg, waitTimeout)
	a := startHubWith(t, proxy.URL(), nil, bucket, cfg, waitTimeout)
	w := newQueue(16)
	subscribeWidget(t, b, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	s := connect(t, a, "acme", "alice", nil, newQueue(16))
	w.expect(t, "widget_status", "status", "online")

	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := "d.acme.alice." + s.Device()
	proxy.Cut()
	wstest.Eventually(t, waitTimeout, "the other replica starts the grace of the cut-off replica's device", func() bool {
		rec, ok := leaseRecord(t, kv, key)
		return ok && rec.State == presence.Lingering
	})
	proxy.Restore()
	wstest.Eventually(t, waitTimeout, "the replica takes its device's lease back", func() bool {
		rec, ok := leaseRecord(t, kv, key)
		return ok && rec.State == presence.Live && rec.Session == s.ID()
	})
	w.empty(t)
}

// One publish per event: with three replicas, the partition's owner alone
// publishes the events, whichever replica the devices and the changes are
// on; its standby derives them and keeps them, and the third replica, which
// only follows the sites of its clients, derives nothing. Every event
// published is stored: none is a copy.
func TestOnePublishPerEvent(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	owner, standby, other := dutyTrio(t, ns.ClientURL(), hub.Config{Grace: 2 * time.Second, MarkerTTL: time.Second,
		FollowLinger: 100 * time.Millisecond, Events: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var alice *hub.Session
	for i := range 3 {
		s := connect(t, other, fmt.Sprintf("site-%d", i), "alice", nil, newQueue(16))
		if i == 0 {
			alice = s
		}
		if err := s.SetStatus(ctx, presence.Busy, ""); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, standby, "site-1", "bob", nil, newQueue(16))
	// A device that drops: its grace runs out after the other replica
	// stopped following the site.
	if err := alice.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		ev := es.next(t)
		if ev.Site == "site-0" && ev.Type == events.TypeDeviceEnded {
			break
		}
	}
	// A sentinel marks the end of what came before.
	connect(t, owner, "globex", "sam", nil, newQueue(16))
	for ev := es.next(t); ev.Site != "globex"; ev = es.next(t) {
	}
	published := func(h *testHub) float64 { return counterSum(t, h, "presencehub_events_published_total") }
	info, err := es.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := float64(info.State.Msgs)
	if got := published(owner); got != stored {
		t.Errorf("the owner published %v events, the stream holds %v: want the same", got, stored)
	}
	if got := published(standby) + published(other); got != 0 {
		t.Errorf("the standby and the third replica published %v events, want none", got)
	}
}
