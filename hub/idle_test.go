package hub_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// recordWrite is one write of an agent record, as a watch of its key reads
// it.
type recordWrite struct {
	Status presence.Status `json:"status"`
	By     string          `json:"by"`
	ByID   string          `json:"by_id"`
	Rev    uint64          `json:"-"` // the write's bucket revision
}

// watchRecord follows every write of an agent's record, from now on.
func watchRecord(t *testing.T, ns *natsserver.Server, site, agent string) chan recordWrite {
	t.Helper()
	out := make(chan recordWrite, 100)
	watchKey(t, ns, "a."+site+"."+agent, func(e jetstream.KeyValueEntry) {
		var r recordWrite
		json.Unmarshal(e.Value(), &r)
		r.Rev = e.Revision()
		out <- r
	})
	return out
}

// watchKey calls put with every value stored at key from now on (not its
// removals), on a goroutine that ends with the test.
func watchKey(t *testing.T, ns *natsserver.Server, key string, put func(jetstream.KeyValueEntry)) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				put(e)
			}
		}
	}()
}

// nextWrite returns the next write of the record, failing the test if none
// comes in time.
func nextWrite(t *testing.T, writes chan recordWrite, want string) recordWrite {
	t.Helper()
	select {
	case w := <-writes:
		return w
	case <-time.After(waitTimeout):
		t.Fatalf("no write of the agent record in time; want %s", want)
		return recordWrite{}
	}
}

func expectWrite(t *testing.T, writes chan recordWrite, status presence.Status, by string) recordWrite {
	t.Helper()
	w := nextWrite(t, writes, string(status)+" by "+by)
	if w.Status != status || w.By != by {
		t.Fatalf("got the record written %s by %s, want %s by %s", w.Status, w.By, status, by)
	}
	return w
}

// waitApplied waits until every hub's view has applied bucket revision rev.
func waitApplied(t *testing.T, rev uint64, hubs ...*testHub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, h := range hubs {
		if err := h.WaitApplied(ctx, testSite, rev); err != nil {
			t.Fatalf("a replica did not apply revision %d in time: %v", rev, err)
		}
	}
}

func putSettings(t *testing.T, h *testHub, site string, s presence.Settings) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.PutSettings(ctx, site, s); err != nil {
		t.Fatal(err)
	}
}

// TestIdleRule runs the idle rule on two replicas: the idle deadline is an
// activity key's TTL in NATS, so it lands once whichever replica is alive,
// activity postpones it, activity after it restores online, and a status
// chosen by hand is left alone. The agent's device is on the replica that
// owns the duties, which dies before the last deadline: the other one
// takes them over and applies the rule.
func TestIdleRule(t *testing.T) {
	ns := natstest.Start(t)
	a, b := dutyPair(t, ns.ClientURL(), hub.Config{Grace: time.Hour, MarkerTTL: time.Second})
	const after = 2 * time.Second
	putSettings(t, a, "acme", presence.Settings{Idle: &presence.IdleSettings{After: after.String(), Status: presence.Busy}})
	writes := watchRecord(t, ns, "acme", "alice")

	q := newQueue(64)
	alice := connect(t, a, "acme", "alice", nil, q)
	q.expect(t, "welcome")
	expectWrite(t, writes, presence.Online, "") // the record a first connect creates
	// The hello was activity; with none since, both replicas see the key
	// expire after 2s and race to apply the rule: one write lands.
	expectWrite(t, writes, presence.Busy, protocol.ByIdle)
	q.expect(t, "status", "status", "busy", "by", "idle")

	// Activity brings back an agent the rule set busy. A second write of
	// the rule above would come before this one.
	alice.Activity()
	expectWrite(t, writes, presence.Online, protocol.ByActivity)

	// A status chosen by hand is not the rule's: activity leaves it.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := alice.SetStatus(ctx, presence.Busy, ""); err != nil {
		t.Fatal(err)
	}
	expectWrite(t, writes, presence.Busy, protocol.ByDevice)
	alice.Activity()
	if err := alice.SetStatus(ctx, presence.Online, ""); err != nil {
		t.Fatal(err)
	}
	expectWrite(t, writes, presence.Online, protocol.ByDevice) // not online by activity before it

	// Activity more often than after keeps the agent online past it.
	tick := time.NewTicker(after / 3)
	for range 6 { // 4s of activity, twice after
		<-tick.C
		alice.Activity()
	}
	tick.Stop()
	select {
	case w := <-writes:
		t.Fatalf("got the record written %s by %s while the agent was active", w.Status, w.By)
	default:
	}
	// The replica holding the agent's device, and the duties, dies before
	// the deadline: the other takes the duties over and applies the rule.
	a.crash()
	w := expectWrite(t, writes, presence.Busy, protocol.ByIdle)
	waitApplied(t, w.Rev, b)
	if st, ok, err := b.Agent("acme", "alice"); err != nil || !ok || st.Status != presence.Busy || st.ChangedBy == nil || st.ChangedBy.Kind != protocol.ByIdle {
		t.Fatalf("replica B shows alice %+v (%v), want busy by idle", st, err)
	}
}

// A device coming back with its id while its lease lasts (a dropped
// network, a client renewing its token) is no activity: an agent the idle
// rule set away stays away. A new device's hello is: someone opened an app.
// Which device's activity brought the agent back is in the activity key the
// hub writes, once per quarter of the idle delay: had the reconnect
// counted, its device would be the one named.
func TestReconnectIsNoActivity(t *testing.T) {
	ns := natstest.Start(t)
	a := startHub(t, ns, time.Hour)
	const after = time.Second
	putSettings(t, a, "acme", presence.Settings{Idle: &presence.IdleSettings{After: after.String(), Status: presence.Busy}})
	writes := watchRecord(t, ns, "acme", "alice")

	q := newQueue(64)
	s := connect(t, a, "acme", "alice", nil, q)
	q.expect(t, "welcome")
	expectWrite(t, writes, presence.Online, "")
	expectWrite(t, writes, presence.Busy, protocol.ByIdle)
	activity := watchActivity(t, ns, "acme", "alice")

	// The same device again, its lease still there (a close starts the
	// grace; a token renewal opens the new socket before closing the old).
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	again := newQueue(64)
	if _, err := a.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{ID: s.Device(), Kind: presence.Desktop}, again); err != nil {
		t.Fatal(err)
	}
	again.expect(t, "welcome", "status", "busy")
	// A new device: activity, which brings the agent back.
	phone := connect(t, a, "acme", "alice", nil, newQueue(64))
	select {
	case device := <-activity:
		if device != phone.Device() {
			t.Fatalf("got activity of device %s first (the reconnecting one is %s), want the new device %s", device, s.Device(), phone.Device())
		}
	case <-time.After(waitTimeout):
		t.Fatal("got no activity written for the new device")
	}
	w := expectWrite(t, writes, presence.Online, protocol.ByActivity)
	if w.ByID != phone.Device() {
		t.Fatalf("got the agent brought back by device %s, want the new device %s", w.ByID, phone.Device())
	}
}

// watchActivity follows the writes of an agent's activity key, from now
// on, and hands over the device each names.
func watchActivity(t *testing.T, ns *natsserver.Server, site, agent string) chan string {
	t.Helper()
	out := make(chan string, 100)
	watchKey(t, ns, "i."+site+"."+agent, func(e jetstream.KeyValueEntry) {
		var r store.ActivityRecord
		json.Unmarshal(e.Value(), &r)
		out <- r.Device
	})
	return out
}
