package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

const waitTimeout = 15 * time.Second

// testSite is the site most tests use.
const testSite = "acme"

// queue is a real, in-memory Subscriber with a bounded queue, as the
// transport's sockets are, minus the socket.
type queue struct {
	frames chan []byte
	kicked chan error
}

func newQueue(n int) *queue { return &queue{frames: make(chan []byte, n), kicked: make(chan error, 1)} }

func (q *queue) Send(f *hub.Frame) bool {
	select {
	case q.frames <- f.Payload():
		return true
	default:
		return false
	}
}

func (q *queue) Kick(reason error) { q.kicked <- reason }

// next waits for the next frame and decodes it.
func (q *queue) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case f := <-q.frames:
		var m map[string]any
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("got undecodable frame %q: %v", f, err)
		}
		return m
	case <-time.After(waitTimeout):
		t.Fatal("no frame arrived in time")
	}
	panic("unreachable")
}

func (q *queue) expect(t *testing.T, typ string, kv ...string) map[string]any {
	t.Helper()
	m := q.next(t)
	if m["type"] != typ {
		t.Fatalf("got frame %v, want type %s", m, typ)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if got := m[kv[i]]; got != kv[i+1] {
			t.Fatalf("got %s=%v in %v, want %s", kv[i], got, m, kv[i+1])
		}
	}
	return m
}

// empty fails if a frame is waiting.
func (q *queue) empty(t *testing.T) {
	t.Helper()
	select {
	case f := <-q.frames:
		t.Fatalf("got unexpected frame %s", f)
	default:
	}
}

type testHub struct {
	*hub.Hub
	reg  *prometheus.Registry // the hub's metrics
	nc   *nats.Conn
	stop context.CancelFunc
	done chan error
	once sync.Once
}

// startHub runs a hub with its own NATS connection until the test ends.
func startHub(t *testing.T, ns *natsserver.Server, grace time.Duration) *testHub {
	t.Helper()
	return startHubAt(t, ns.ClientURL(), grace)
}

// startHubAt runs a hub connected to the NATS at url (a proxy, say).
func startHubAt(t *testing.T, url string, grace time.Duration) *testHub {
	t.Helper()
	return startHubWith(t, url, nil, store.BucketConfig{LimitMarkerTTL: time.Second},
		hub.Config{Grace: grace, MarkerTTL: time.Second}, waitTimeout)
}

// startHubWith runs a hub with cfg (its JetStream, bucket and registry
// filled in) on a connection to url with extra options, opening the bucket
// with bucket; it fails the test if the view does not load within wait.
func startHubWith(t *testing.T, url string, opts []nats.Option, bucket store.BucketConfig, cfg hub.Config, wait time.Duration) *testHub {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	kv, err := store.OpenBucket(ctx, js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.JetStream, cfg.Bucket, cfg.Registerer = js, kv, reg
	if cfg.LivenessTTL == 0 {
		cfg.LivenessTTL = testLivenessTTL
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	th := &testHub{Hub: h, reg: reg, nc: nc, stop: stop, done: make(chan error, 1)}
	go func() { th.done <- h.Run(runCtx) }()
	t.Cleanup(th.crash)
	select {
	case <-h.Loaded():
	case <-ctx.Done():
		t.Fatal("view did not load")
	}
	return th
}

// stopGracefully stops the hub as a SIGTERM does, after its sessions
// ended: it leaves the cluster, and its NATS connection is closed.
func (th *testHub) stopGracefully() {
	th.once.Do(func() {
		th.stop()
		<-th.done
		th.nc.Close()
	})
}

// testLivenessTTL is the hubs' liveness TTL in tests: a crashed hub's
// devices start their grace about this long after the crash.
const testLivenessTTL = 2 * time.Second

// crash stops the hub the way a killed process does: no session is closed,
// no lease is written again, the NATS connection just goes away (first,
// so that the hub cannot leave the cluster gracefully either).
func (th *testHub) crash() {
	th.once.Do(func() {
		th.nc.Close()
		th.stop()
		<-th.done
	})
}

func connect(t *testing.T, h *testHub, site, agent string, groups []string, sub hub.Subscriber) *hub.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := h.Connect(ctx, hub.Identity{Site: site, Agent: agent, Groups: groups}, hub.DeviceHello{Kind: presence.Desktop}, sub)
	if err != nil {
		t.Fatalf("failed to connect %s: %v", agent, err)
	}
	return s
}

func subscribeWidget(t *testing.T, h *testHub, site, group string, sub hub.Subscriber) {
	t.Helper()
	unsub, err := h.SubscribeWidget(site, group, sub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
}

func TestSlowSubscriberIsDroppedWithoutDelayingOthers(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Hour)
	slow, fast := newQueue(1), newQueue(16)
	subscribeWidget(t, h, "acme", "", slow) // its one slot now holds the snapshot
	subscribeWidget(t, h, "acme", "", fast)
	fast.expect(t, "widget_status", "status", "offline")

	dev := newQueue(16)
	s := connect(t, h, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")
	fast.expect(t, "widget_status", "status", "online")
	select {
	case reason := <-slow.kicked:
		if !errors.Is(reason, hub.ErrSlowSubscriber) {
			t.Fatalf("got kick reason %v, want ErrSlowSubscriber", reason)
		}
	case <-time.After(waitTimeout):
		t.Fatal("slow subscriber was not kicked")
	}
	ctx := context.Background()
	if err := s.SetStatus(ctx, presence.Busy, "r1"); err != nil {
		t.Fatal(err)
	}
	dev.expect(t, "status", "status", "busy", "ref", "r1")
	fast.expect(t, "widget_status", "status", "busy")
	if got := len(slow.frames); got != 1 {
		t.Fatalf("got %d frames queued to the dropped subscriber, want only the first 1", got)
	}
}

func TestCrashedHubLeasesExpire(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 2 * time.Second
	a := startHub(t, ns, grace)
	b := startHub(t, ns, grace)
	w := newQueue(16)
	subscribeWidget(t, b, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")

	connect(t, a, "acme", "alice", nil, newQueue(16))
	w.expect(t, "widget_status", "status", "online")
	killed := time.Now()
	a.crash()
	w.expect(t, "widget_status", "status", "offline", "reason", "no_agents")
	t.Logf("offline %v after the crash (grace %v)", time.Since(killed).Round(time.Millisecond), grace)
}

// A live device's lease is written once: while its hub's liveness key is
// refreshed, over several graces, the lease is not written again, the
// agent stays online and nobody gets a frame.
func TestLiveLeaseIsNotRewritten(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 2 * time.Second
	h := startHub(t, ns, grace)
	w := newQueue(16)
	subscribeWidget(t, h, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	dev := newQueue(16)
	s := connect(t, h, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")
	w.expect(t, "widget_status", "status", "online")

	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	members, err := js.KeyValue(ctx, store.DefaultBucket+"-cluster")
	if err != nil {
		t.Fatal(err)
	}
	lease, err := kv.Watch(ctx, "d.acme.alice."+s.Device(), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Stop()
	liveness, err := members.Watch(ctx, "r.*", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer liveness.Stop()
	// The liveness key is refreshed every third of its TTL: 9 refreshes
	// span three TTLs, longer than two graces.
	for beats := 0; beats < 9; {
		select {
		case e := <-lease.Updates():
			t.Fatalf("got the live lease written again (%v, revision %d) after %d liveness refreshes, want it left alone", e.Operation(), e.Revision(), beats)
		case e := <-liveness.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				beats++
			}
		case <-time.After(waitTimeout):
			t.Fatalf("liveness key not refreshed after %d refreshes", beats)
		}
	}
	w.empty(t)
	dev.empty(t)
}

func TestConnectBeforeLoadIsRefused(t *testing.T) {
	ns := natstest.Start(t)
	nc := natstest.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.OpenBucket(context.Background(), js, store.BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{JetStream: js, Bucket: kv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SubscribeWidget("acme", "", newQueue(1)); !errors.Is(err, hub.ErrNotReady) {
		t.Fatalf("got %v before Run, want ErrNotReady", err)
	}
}

func TestConfigValidation(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.OpenBucket(context.Background(), js, store.BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  hub.Config
	}{
		{"grace under a second", hub.Config{JetStream: js, Bucket: kv, Grace: 500 * time.Millisecond}},
		{"refresh not under grace", hub.Config{JetStream: js, Bucket: kv, Grace: 2 * time.Second, RefreshEvery: 2 * time.Second}},
		{"marker ttl under a second", hub.Config{JetStream: js, Bucket: kv, MarkerTTL: time.Millisecond}},
		{"no bucket", hub.Config{JetStream: js}},
		{"negative rule workers", hub.Config{JetStream: js, Bucket: kv, RuleWorkers: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := hub.New(tt.cfg); err == nil {
				t.Fatal("got no error, want one")
			}
		})
	}
}

// TestLargeFanOut: a fan-out large enough to be split over several
// goroutines still hands the frame to every subscriber exactly once, counts
// each, and drops exactly the subscribers whose queue is full.
func TestLargeFanOut(t *testing.T) {
	prev := runtime.GOMAXPROCS(4) // split even on a one-core machine
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Hour)
	dev := newQueue(16)
	s := connect(t, h, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")
	const n = 500
	slow := func(i int) bool { return i%7 == 0 }
	subs := make([]*queue, n)
	for i := range subs {
		size := 16
		if slow(i) {
			size = 1 // the snapshot fills it: too slow for the change
		}
		subs[i] = newQueue(size)
		subscribeWidget(t, h, "acme", "", subs[i])
		if !slow(i) {
			subs[i].expect(t, "widget_status", "status", "online")
		}
	}
	before := counterValue(t, h.reg, "presencehub_frames_out_total")

	if err := s.SetStatus(context.Background(), presence.Busy, "r1"); err != nil {
		t.Fatal(err)
	}
	dev.expect(t, "status", "status", "busy", "ref", "r1")
	served := 0
	for i, q := range subs {
		if slow(i) {
			select {
			case reason := <-q.kicked:
				if !errors.Is(reason, hub.ErrSlowSubscriber) {
					t.Fatalf("got kick reason %v for subscriber %d, want ErrSlowSubscriber", reason, i)
				}
			case <-time.After(waitTimeout):
				t.Fatalf("full subscriber %d was not kicked", i)
			}
			continue
		}
		q.expect(t, "widget_status", "status", "busy")
		q.empty(t)
		select {
		case reason := <-q.kicked:
			t.Fatalf("got subscriber %d kicked (%v), want it served", i, reason)
		default:
		}
		served++
	}
	if got, want := counterValue(t, h.reg, "presencehub_frames_out_total")-before, float64(served+1); got != want {
		t.Fatalf("got %v frames counted, want %v: one per served widget and the device's status", got, want)
	}
}

// fakeClock is a wall clock (hub.Config.Now) that a test can move while
// the hub's real timers run: it reads the real time plus an offset.
type fakeClock struct{ offset atomic.Int64 }

// set moves the clock so that it reads at, now.
func (c *fakeClock) set(at time.Time) { c.offset.Store(int64(time.Until(at))) }
func (c *fakeClock) now() time.Time   { return time.Now().Add(time.Duration(c.offset.Load())) }
