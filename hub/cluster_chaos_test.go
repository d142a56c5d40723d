//go:build unix

package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// Chaos on a real three-node NATS cluster (nats-server processes) with two
// hubs and a three-replica bucket. Nothing here measures time: every wait is
// for an event, with a deadline for failing.

// Cluster timing for the chaos tests. The liveness TTL follows the rule of
// docs/operations.md: ttl*2/3 > election (10s at most) + margin.
const (
	chaosGrace    = 15 * time.Second
	chaosRefresh  = 2 * time.Second
	chaosLiveness = 20 * time.Second
	// chaosWait bounds the waits of a chaos test: an election, a hub
	// leaving a frozen node, a write riding them out.
	chaosWait = 45 * time.Second
	kvStream  = "KV_" + store.DefaultBucket
	// chaosMarkerTTL outlasts a node's restart: a node that comes back
	// after the marker of a removed lease expired may keep that lease
	// (see docs/operations.md).
	chaosMarkerTTL = 30 * time.Second
)

// startClusterHub runs a hub connected to every node of c, with the
// keepalive serve uses by default (ping 2s, 2 pings out).
func startClusterHub(t *testing.T, c *natstest.Cluster) *testHub {
	t.Helper()
	return startHubWith(t, c.URLs(), []nats.Option{nats.PingInterval(2 * time.Second), nats.MaxPingsOutstanding(2)},
		store.BucketConfig{Replicas: 3, LimitMarkerTTL: chaosMarkerTTL},
		hub.Config{Grace: chaosGrace, RefreshEvery: chaosRefresh, LivenessTTL: chaosLiveness, MarkerTTL: chaosMarkerTTL, HealthEvery: 500 * time.Millisecond},
		chaosWait)
}

// chaosSite is what a chaos test watches: on each hub, a widget per group,
// each group having one agent. alice (group a, on hub a) and bob (group b,
// on hub b) stay connected throughout, so the widgets of a, b and the whole
// site must never get a frame.
type chaosSite struct {
	t       *testing.T
	c       *natstest.Cluster
	js      jetstream.JetStream // the test's own connection
	a, b    *testHub
	widgets map[*testHub]map[string]*queue // hub -> group -> widget
	devices map[string]*queue              // agent -> its device's queue
	carol   *hub.Session
	dave    *hub.Session
}

var chaosGroups = []string{"", "a", "b", "c", "d", "e", "z"}

func newChaosSite(t *testing.T) *chaosSite {
	t.Helper()
	c := natstest.StartCluster(t)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	cs := &chaosSite{t: t, c: c, js: js, widgets: make(map[*testHub]map[string]*queue), devices: make(map[string]*queue)}
	cs.a = startClusterHub(t, c)
	cs.b = startClusterHub(t, c)
	for _, h := range []*testHub{cs.a, cs.b} {
		cs.widgets[h] = make(map[string]*queue)
		for _, g := range chaosGroups {
			w := newQueue(64)
			subscribeWidget(t, h, "acme", g, w)
			w.expect(t, "widget_status", "status", "offline")
			cs.widgets[h][g] = w
		}
	}
	cs.connect(cs.a, "alice", "a")
	cs.connect(cs.b, "bob", "b")
	cs.carol = cs.connect(cs.a, "carol", "c")
	cs.dave = cs.connect(cs.b, "dave", "d")
	for _, h := range []*testHub{cs.a, cs.b} {
		cs.widgets[h][""].expect(t, "widget_status", "status", "online")
		for _, g := range []string{"a", "b", "c", "d"} {
			cs.widgets[h][g].expect(t, "widget_status", "status", "online")
		}
	}
	return cs
}

// connect starts a device session of agent (in group) on h; the device's
// queue is kept to check it is never kicked.
func (cs *chaosSite) connect(h *testHub, agent, group string) *hub.Session {
	cs.t.Helper()
	dev := newQueue(256)
	s := connect(cs.t, h, "acme", agent, []string{group}, dev)
	dev.expect(cs.t, "welcome")
	cs.devices[agent] = dev
	return s
}

// faultOps runs during a fault: dave goes busy, erin connects a new device,
// carol says bye. The change and the new device must succeed once the
// election ends; the bye is either stored or says it was not. It reports
// whether carol's bye was confirmed.
func (cs *chaosSite) faultOps() (byeStored bool) {
	t := cs.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chaosWait)
	defer cancel()
	type result struct {
		what string
		err  error
	}
	results := make(chan result, 3)
	go func() { results <- result{"dave's status change", cs.dave.SetStatus(ctx, presence.Busy, "chaos")} }()
	go func() {
		dev := newQueue(256)
		_, err := cs.b.Connect(ctx, hub.Identity{Site: "acme", Agent: "erin", Groups: []string{"e"}}, hub.DeviceHello{Kind: presence.Mobile}, dev)
		results <- result{"erin's new device", err}
	}()
	go func() {
		err := cs.carol.Bye(ctx)
		if errors.Is(err, hub.ErrNotStored) {
			t.Logf("carol's bye was not stored: %v", err)
			err = nil
		} else if err == nil {
			byeStored = true
		}
		results <- result{"carol's bye", err}
	}()
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Errorf("%s failed during the fault: %v", r.what, r.err)
		}
	}
	return byeStored
}

// settle waits until the fault is over for the views: both hubs'
// liveness keys have been refreshed after it, and a sentinel written after
// that reached both hubs' widgets. A liveness key that expired during the
// fault would have started the grace of its devices; a lease dropped so
// and not taken back would have shown its agent offline by then.
func (cs *chaosSite) settle() {
	t := cs.t
	t.Helper()
	ctx := context.Background()
	var (
		info *jetstream.StreamInfo
		kv   jetstream.KeyValue
	)
	wstest.Eventually(t, chaosWait, "the members bucket's stream answers", func() bool {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		stream, err := cs.js.Stream(ictx, "KV_"+store.DefaultBucket+"-cluster")
		if err == nil {
			info, err = stream.Info(ictx)
		}
		if err == nil {
			kv, err = cs.js.KeyValue(ictx, store.DefaultBucket+"-cluster")
		}
		return err == nil
	})
	mark := info.State.LastSeq
	var w jetstream.KeyWatcher
	wstest.Eventually(t, chaosWait, "a watch of the liveness keys starts", func() bool {
		var err error
		w, err = kv.Watch(ctx, "r.*", jetstream.UpdatesOnly())
		return err == nil
	})
	refreshed := make(map[string]bool)
	timeout := time.After(chaosWait)
	for len(refreshed) < 2 {
		select {
		case e := <-w.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut && e.Revision() > mark {
				refreshed[e.Key()] = true
			}
		case <-timeout:
			t.Fatalf("got %d hubs' liveness keys refreshed after the fault within %v, want 2", len(refreshed), chaosWait)
		}
	}
	w.Stop()
	cs.connect(cs.b, "zed", "z")
	for _, h := range []*testHub{cs.a, cs.b} {
		cs.widgets[h]["z"].expect(t, "widget_status", "status", "online")
	}
}

// check asserts what the fault must not have done, once settled: no frame
// on the widgets whose agents did not change (alice, bob, the site), no
// device kicked, dave busy and erin online everywhere, carol offline for
// good if her bye was confirmed, and both views the same.
func (cs *chaosSite) check(byeStored bool) {
	t := cs.t
	t.Helper()
	for name, h := range map[string]*testHub{"a": cs.a, "b": cs.b} {
		for _, g := range []string{"", "a", "b", "z"} {
			if w := cs.widgets[h][g]; len(w.frames) > 0 {
				t.Errorf("hub %s, widget of group %q: got %d frames (first %s), want none: its agents' statuses never changed",
					name, g, len(w.frames), <-w.frames)
			}
		}
		cs.expectOnly(name, "d", cs.widgets[h]["d"], "busy")
		cs.expectOnly(name, "e", cs.widgets[h]["e"], "online")
		if byeStored {
			cs.expectOnly(name, "c", cs.widgets[h]["c"], "offline")
		}
	}
	for agent, dev := range cs.devices {
		select {
		case reason := <-dev.kicked:
			t.Errorf("%s's device was kicked (%v), want it kept", agent, reason)
		default:
		}
	}
	for _, g := range chaosGroups {
		wstest.Eventually(t, chaosWait, "both views agree on group "+g, func() bool {
			wa, errA := cs.a.WidgetStatus("acme", g)
			wb, errB := cs.b.WidgetStatus("acme", g)
			return errA == nil && errB == nil && wa.Status == wb.Status
		})
	}
}

// expectOnly reads a widget's frames and fails unless every one is status
// want: one frame for one change, no flap through another status. It waits
// for the first.
func (cs *chaosSite) expectOnly(hubName, group string, w *queue, want string) {
	t := cs.t
	t.Helper()
	select {
	case f := <-w.frames:
		var m map[string]any
		if err := json.Unmarshal(f, &m); err != nil || m["status"] != want {
			t.Fatalf("hub %s, widget of group %s: got %s first, want status %s", hubName, group, f, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("hub %s, widget of group %s: no frame in time, want status %s", hubName, group, want)
	}
	for len(w.frames) > 0 {
		var m map[string]any
		if err := json.Unmarshal(<-w.frames, &m); err != nil {
			t.Fatal(err)
		}
		if m["status"] != want {
			t.Errorf("hub %s, widget of group %s: got a widget frame %v after %s, want only %s", hubName, group, m, want, want)
		}
	}
}

// Killing the stream leader (SIGKILL, no hand-over) during a status change,
// a new device and a bye: they succeed once a new leader is elected, live
// agents never show offline, and widgets see only real changes.
func TestClusterChaosLeaderKilled(t *testing.T) {
	cs := newChaosSite(t)
	leader := cs.c.StreamLeader(t, cs.js, kvStream)
	leader.Kill()
	byeStored := cs.faultOps()
	cs.c.StreamLeader(t, cs.js, kvStream) // a new one
	leader.Restart()
	cs.settle()
	cs.check(byeStored)
}

// Freezing (SIGSTOP) the node hub a is connected to, for longer than the
// grace: hub a reports not ready, leaves it for a healthy node and is ready
// again; nothing shows offline that did not go offline.
func TestClusterChaosNodeFrozenLongerThanGrace(t *testing.T) {
	cs := newChaosSite(t)
	frozen := cs.c.Node(cs.a.nc.ConnectedServerName())
	if frozen == nil {
		t.Fatalf("hub a is connected to unknown server %q", cs.a.nc.ConnectedServerName())
	}
	frozen.Freeze()
	frozenAt := time.Now()
	thawAt := time.After(chaosGrace + 2*time.Second)
	wstest.Eventually(t, chaosWait, "hub a reports not ready while its NATS node is frozen", func() bool {
		return cs.a.Healthy() != nil
	})
	byeStored := cs.faultOps()
	wstest.Eventually(t, chaosWait, "hub a is ready again on a healthy node", func() bool {
		return cs.a.Healthy() == nil && cs.a.nc.ConnectedServerName() != frozen.Name
	})
	t.Logf("hub a ready on %s %v after its node %s froze (a figure for docs/operations.md, not a limit)",
		cs.a.nc.ConnectedServerName(), time.Since(frozenAt).Round(100*time.Millisecond), frozen.Name)
	<-thawAt // the freeze lasts longer than the grace: what it does, not a wait for an event
	frozen.Thaw()
	cs.c.WaitStreamCurrent(t, cs.js, kvStream)
	cs.settle()
	cs.check(byeStored)
}

// A rolling restart of all three nodes, one at a time, each back and caught
// up before the next: no agent flaps, and writes made during it succeed.
func TestClusterChaosRollingRestart(t *testing.T) {
	cs := newChaosSite(t)
	var byeStored bool
	for i, n := range cs.c.Nodes {
		n.Kill()
		if i == 1 {
			byeStored = cs.faultOps()
		}
		n.Restart()
		cs.c.WaitStreamCurrent(t, cs.js, kvStream)
	}
	cs.settle()
	cs.check(byeStored)
}
