package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// eventStream is the event stream as a consumer outside the hubs sees it.
type eventStream struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cons   jetstream.Consumer
}

// openEvents opens the event stream and an ordered consumer of
// presence.events.> on it, from its start.
func openEvents(t *testing.T, ns *natsserver.Server) *eventStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := events.OpenStream(ctx, js, events.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"presence.events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	return &eventStream{js: js, stream: s, cons: cons}
}

// next waits for the next event in the stream and checks that its subject
// and message id agree with its envelope.
func (es *eventStream) next(t *testing.T) events.Event {
	t.Helper()
	msg, err := es.cons.Next(jetstream.FetchMaxWait(waitTimeout))
	if err != nil {
		t.Fatalf("no event arrived: %v", err)
	}
	var ev events.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		t.Fatalf("got undecodable event %s: %v", msg.Data(), err)
	}
	if msg.Subject() != "presence.events."+ev.Site+"."+ev.Type {
		t.Fatalf("got event %s on subject %s", msg.Data(), msg.Subject())
	}
	if id := msg.Headers().Get("Nats-Msg-Id"); id != ev.ID {
		t.Fatalf("got Nats-Msg-Id %q for event %s", id, msg.Data())
	}
	return ev
}

// stored counts the messages in the stream.
func (es *eventStream) stored(t *testing.T) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	info, err := es.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// settle waits until each hub has applied bucket revision rev and JetStream
// has acknowledged every event the hubs handed it: every copy of every
// event up to rev is then in the stream or was dropped as a duplicate.
func settle(t *testing.T, rev uint64, hubs ...*testHub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, h := range hubs {
		if err := h.WaitApplied(ctx, testSite, rev); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.EventsComplete():
		case <-ctx.Done():
			t.Fatal("events not acknowledged in time")
		}
	}
}

func startEventHub(t *testing.T, ns *natsserver.Server, grace time.Duration) *testHub {
	t.Helper()
	return startHubWith(t, ns.ClientURL(), nil, store.BucketConfig{LimitMarkerTTL: time.Second},
		hub.Config{Grace: grace, MarkerTTL: time.Second, Events: true}, waitTimeout)
}

// summary is an event reduced to what the tests compare.
func summary(t *testing.T, ev events.Event) string {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	switch {
	case ev.Type == events.TypeWidgetStatus:
		return fmt.Sprintf("%s %q %v", ev.Type, d["group"], d["status"])
	case strings.HasPrefix(ev.Type, "device."):
		return fmt.Sprintf("%s %v %v", ev.Type, d["agent"], d["cause"])
	case ev.Type == events.TypeAgentStatus:
		return fmt.Sprintf("%s %v %v->%v", ev.Type, d["agent"], d["previous"], d["status"])
	}
	return fmt.Sprintf("%s %v %v->%v %v", ev.Type, d["agent"], d["previous"], d["status"], d["cause"])
}

// revOf is the bucket revision an event's id names.
func revOf(t *testing.T, ev events.Event) uint64 {
	t.Helper()
	rev, err := strconv.ParseUint(strings.SplitN(ev.ID, ".", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("event id %q does not start with a revision: %v", ev.ID, err)
	}
	return rev
}

func expectEvents(t *testing.T, es *eventStream, want ...string) []events.Event {
	t.Helper()
	var got []events.Event
	for i, w := range want {
		ev := es.next(t)
		if s := summary(t, ev); s != w {
			t.Fatalf("event %d is %s (%s), want %s", i, s, ev.Data, w)
		}
		got = append(got, ev)
	}
	return got
}

func TestStatusChangeIsInTheEventStreamOnceFromTwoReplicas(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	a := startEventHub(t, ns, time.Hour)
	b := startEventHub(t, ns, time.Hour)

	dev := newQueue(16)
	s := connect(t, a, "acme", "alice", []string{"sales"}, dev)
	dev.expect(t, "welcome")
	expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`,
		`widget.status "sales" online`)

	ctx := context.Background()
	if err := s.SetStatus(ctx, presence.Busy, "r1"); err != nil {
		t.Fatal(err)
	}
	got := expectEvents(t, es,
		"agent.status alice online->busy",
		"agent.availability alice online->busy status_set",
		`widget.status "" busy`,
		`widget.status "sales" busy`)
	status := got[0]
	var data events.AgentStatusData
	if err := json.Unmarshal(status.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.By != (events.By{Kind: "device", ID: s.Device()}) {
		t.Fatalf("got by %+v, want the device %s", data.By, s.Device())
	}
	rev := revOf(t, status)
	if want := fmt.Sprintf("%d.agent.status.alice", rev); status.ID != want || status.Site != "acme" {
		t.Fatalf("got id %q site %q, want %q acme", status.ID, status.Site, want)
	}
	for _, ev := range got[1:] {
		if revOf(t, ev) != rev || time.Time(ev.Timestamp) != time.Time(status.Timestamp) {
			t.Fatalf("event %s has another revision or time than the status change %s", ev.ID, status.ID)
		}
	}

	// Events of one agent stay in the order of its changes.
	// Each change is applied by both replicas before the next is made: the
	// bucket keeps one revision per key, so a change replaced before any
	// watch read it has no event of its own (docs/events.md).
	kvJS, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := kvJS.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	statuses := []presence.Status{presence.Online, presence.Busy, presence.Online, presence.Busy, presence.Online}
	var last uint64
	for _, st := range statuses {
		if err := s.SetStatus(ctx, st, ""); err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, "a.acme.alice")
		if err != nil {
			t.Fatal(err)
		}
		last = e.Revision()
		waitCtx, cancel := context.WithTimeout(ctx, waitTimeout)
		for _, h := range []*testHub{a, b} {
			if err := h.WaitApplied(waitCtx, testSite, last); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
	}
	prev := presence.Busy
	for _, st := range statuses {
		expectEvents(t, es,
			fmt.Sprintf("agent.status alice %s->%s", prev, st),
			fmt.Sprintf("agent.availability alice %s->%s status_set", prev, st),
			fmt.Sprintf(`widget.status "" %s`, st),
			fmt.Sprintf(`widget.status "sales" %s`, st))
		prev = st
	}

	// Both replicas published every event; the stream holds each once.
	settle(t, last, a, b)
	if n, want := es.stored(t), uint64(4+4+4*len(statuses)); n != want {
		t.Fatalf("stream holds %d events, want %d", n, want)
	}
}

func TestCrashedReplicasAgentGoesOfflineInTheEventStreamOnce(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	const grace = 2 * time.Second
	a := startEventHub(t, ns, grace)
	b := startEventHub(t, ns, grace)

	connect(t, a, "acme", "alice", nil, newQueue(16))
	connected := expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`)
	settle(t, revOf(t, connected[0]), a, b)
	a.crash()

	// Its liveness runs out: b starts the grace of its device (dropped),
	// which then runs out.
	ended := expectEvents(t, es,
		"device.dropped alice <nil>",
		"device.ended alice grace_expired",
		"agent.availability alice online->offline grace_expired",
		`widget.status "" offline`)
	settle(t, revOf(t, ended[1]), b)
	if n := es.stored(t); n != 7 {
		t.Fatalf("stream holds %d events, want 7", n)
	}
}

func TestDeviceLifecycleEvents(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	a := startEventHub(t, ns, time.Hour)
	b := startEventHub(t, ns, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	s := connect(t, a, "acme", "alice", nil, newQueue(16))
	expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dropped := expectEvents(t, es, "device.dropped alice <nil>")[0]
	var d events.DeviceData
	if err := json.Unmarshal(dropped.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.GraceUntil == nil || !time.Time(*d.GraceUntil).Equal(time.Time(dropped.Timestamp).Add(time.Hour)) {
		t.Fatalf("got grace_until %v, want the drop plus the grace", d.GraceUntil)
	}

	// The device comes back inside its grace, on the other replica.
	back, err := b.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{ID: s.Device(), Kind: presence.Desktop}, newQueue(16))
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, es, "device.resumed alice <nil>")
	if err := back.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	ended := expectEvents(t, es,
		"device.ended alice bye",
		"agent.availability alice online->offline bye",
		`widget.status "" offline`)
	settle(t, revOf(t, ended[0]), a, b)
	const want = 3 + 1 + 1 + 3
	if n := es.stored(t); n != want {
		t.Fatalf("stream holds %d events, want %d", n, want)
	}
	// Each replica published the events of the site while it held it
	// (a, the device's first replica, all but the last three; b from the
	// device's return on): every event by one of them, none twice by one.
	na, nb := eventsPublished(t, a), eventsPublished(t, b)
	if na+nb < want || na > want || nb > want {
		t.Fatalf("the replicas published %v and %v events, want each at most %d and %d in all at least", na, nb, want, want)
	}
}

// eventsPublished sums presencehub_events_published_total over its types.
func eventsPublished(t *testing.T, h *testHub) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == "presencehub_events_published_total" {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// A replica alone, cut off from NATS while an agent's status went busy,
// online and busy again (written by another client of the bucket),
// publishes, after its resync, the one change its view saw (online to busy,
// at the last revision), and nothing it would have to guess.
func TestResyncPublishesOnlyWhatItSaw(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	a := startHubWith(t, proxy.URL(), nil, store.BucketConfig{LimitMarkerTTL: time.Second},
		hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true}, waitTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	connect(t, a, "acme", "alice", []string{"a"}, newQueue(16))
	connected := expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`,
		`widget.status "a" online`)
	settle(t, revOf(t, connected[0]), a)

	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	var last uint64
	for _, st := range []presence.Status{presence.Busy, presence.Online, presence.Busy} {
		rec, _ := json.Marshal(store.AgentRecord{Status: st, Groups: []string{"a"}, ByDevice: "d1", At: time.Now()})
		if last, err = kv.Put(ctx, store.AgentKey("acme", "alice").String(), rec); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Restore()
	got := expectEvents(t, es,
		"agent.status alice online->busy",
		"agent.availability alice online->busy status_set",
		`widget.status "" busy`,
		`widget.status "a" busy`)
	if rev := revOf(t, got[0]); rev != last {
		t.Fatalf("the resync's events are of revision %d, want the last, %d", rev, last)
	}
	// The sentinel: sam's events come after, and nothing more about alice.
	connect(t, a, "acme", "sam", []string{"s"}, newQueue(16))
	for {
		ev := es.next(t)
		var d map[string]any
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d["agent"] == "alice" {
			t.Fatalf("got %s (%s), want nothing more about alice", ev.ID, ev.Data)
		}
		if ev.Type == events.TypeAgentAvailability && d["agent"] == "sam" {
			break
		}
	}
}

// An owner cut off from NATS while an agent's status went busy, online and
// busy again misses those revisions; its standby read them, in order, and
// publishes their events once the owner announces the revision it
// re-read the bucket at: every change has its events, once, in order.
func TestCutOffOwnersStandbyPublishesWhatItMissed(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	cfg := hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Events: true}
	proxies := map[*testHub]*natstest.Proxy{}
	var hubs []*testHub
	for range 2 {
		p := natstest.NewProxy(t, ns.Addr().String())
		h := startHubWith(t, p.URL(), nil, store.BucketConfig{LimitMarkerTTL: time.Second}, cfg, waitTimeout)
		proxies[h] = p
		hubs = append(hubs, h)
	}
	wstest.Eventually(t, waitTimeout, "one hub owns the partition, the other stands by", func() bool {
		return gauge(t, hubs[0], "presencehub_duties")+gauge(t, hubs[1], "presencehub_duties") == 1 &&
			gauge(t, hubs[0], "presencehub_standby_partitions")+gauge(t, hubs[1], "presencehub_standby_partitions") == 1
	})
	owner, standby := hubs[0], hubs[1]
	if gauge(t, standby, "presencehub_duties") == 1 {
		owner, standby = standby, owner
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	alice := connect(t, standby, "acme", "alice", nil, newQueue(16))
	expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`)

	proxies[owner].Cut()
	statuses := []presence.Status{presence.Busy, presence.Online, presence.Busy}
	for _, st := range statuses {
		if err := alice.SetStatus(ctx, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	proxies[owner].Restore()
	prev := presence.Online
	for _, st := range statuses {
		expectEvents(t, es,
			fmt.Sprintf("agent.status alice %s->%s", prev, st),
			fmt.Sprintf("agent.availability alice %s->%s status_set", prev, st),
			fmt.Sprintf(`widget.status "" %s`, st))
		prev = st
	}
}

// TestBackgroundDeviceEvents: a mobile device in background mode that drops
// is a device.dropped whose grace_until is the background max from the
// drop, and its return a device.resumed.
func TestBackgroundDeviceEvents(t *testing.T) {
	ns := natstest.Start(t)
	es := openEvents(t, ns)
	h := startEventHub(t, ns, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.PutSettings(ctx, "acme", presence.Settings{Background: &presence.BackgroundSettings{Max: "10h"}}); err != nil {
		t.Fatal(err)
	}
	phone, err := h.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{Kind: presence.Mobile}, newQueue(16))
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, es,
		"device.connected alice <nil>",
		"agent.availability alice offline->online connected",
		`widget.status "" online`)
	if err := phone.Background(ctx); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Millisecond) // events carry milliseconds
	if err := phone.Close(ctx); err != nil {
		t.Fatal(err)
	}
	dropped := expectEvents(t, es, "device.dropped alice <nil>")[0]
	var d events.DeviceData
	if err := json.Unmarshal(dropped.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.GraceUntil == nil || time.Time(*d.GraceUntil).Before(before.Add(10*time.Hour)) || time.Time(*d.GraceUntil).After(time.Now().Add(10*time.Hour)) {
		t.Fatalf("got grace_until %v, want the drop plus the background max of 10h", d.GraceUntil)
	}
	if _, err := h.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{ID: phone.Device(), Kind: presence.Mobile}, newQueue(16)); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, es, "device.resumed alice <nil>")
}
