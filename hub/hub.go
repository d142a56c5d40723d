package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub/cluster"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
)

// Defaults for Config.
const (
	DefaultGrace      = 2 * time.Minute
	DefaultMarkerTTL  = store.DefaultMarkerTTL
	DefaultMaxDevices = 10
	// DefaultRuleWorkers is how many goroutines carry out the rules'
	// decisions (worker.go).
	DefaultRuleWorkers = 4
	// DefaultLivenessTTL is the default Config.LivenessTTL: its refresh,
	// every third of it, outlasts a stream leader election (10s) with a
	// margin.
	DefaultLivenessTTL = 20 * time.Second
	// DefaultFollowLinger is how long a site stays followed after its last
	// interest ends.
	DefaultFollowLinger = time.Minute
)

// ErrNotReady is returned while the view is still loading.
var ErrNotReady = errors.New("hub: view not loaded yet")

// Config configures a Hub.
type Config struct {
	// JetStream is the NATS JetStream context the hub uses; required.
	JetStream jetstream.JetStream
	// Bucket is the presence bucket, as opened by store.OpenBucket;
	// required. Only the hub's store reads and writes it.
	Bucket *store.Bucket
	// Grace is how long a dropped device keeps its lease. NATS TTLs have a
	// resolution of one second, so it must be at least 1s. Default 2m.
	Grace time.Duration
	// RefreshEvery is how often a session whose first lease the view has
	// not shown yet writes it again; default Grace/4. Live leases are not
	// refreshed: the replica's liveness key stands for them.
	RefreshEvery time.Duration
	// Members is the cluster bucket (store.OpenMembers): replicas'
	// liveness keys and partition ownership. Nil: Run opens the bucket
	// named after Bucket with "-cluster", with as many replicas.
	Members *store.Members
	// LivenessTTL is the TTL of the replica's liveness key: a replica that
	// dies takes at most this long more than the grace to show its devices
	// offline. Default DefaultLivenessTTL.
	LivenessTTL time.Duration
	// FollowLinger is how long a site stays followed after the last local
	// interest in it ends (a client, a request): a client that comes back
	// within it finds the site loaded. Default DefaultFollowLinger.
	FollowLinger time.Duration
	// Partitions is how many partitions a new deployment has (its
	// duties are shared by partition); an existing one keeps its count.
	// Default 1.
	Partitions int
	// MarkerTTL is how long purge markers (bye) stay in the bucket; default 1m.
	MarkerTTL time.Duration
	// ID names this hub replica in leases and logs; default a random UUID.
	ID string
	// Logger receives the hub's logs; default slog.Default().
	Logger *slog.Logger
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// MaxDevices is how many live devices one agent may have; default 10.
	MaxDevices int
	// Registerer receives the hub's Prometheus metrics; nil registers none.
	Registerer prometheus.Registerer
	// HealthEvery is how often JetStream is probed for Healthy, and how long
	// a probe may take; default 2s.
	HealthEvery time.Duration
	// WriteRetry bounds how long a write that meets a stream without a
	// leader, or a server that went away, is retried; 0 means
	// DefaultWriteRetry, negative means no retries.
	WriteRetry time.Duration
	// PerSiteMetrics adds per-site series (one per site: keep it off with
	// many sites).
	PerSiteMetrics bool
	// Events publishes an event for every change the watch applies live to
	// the event stream (package events), which must have been opened with
	// events.OpenStream.
	Events bool
	// RuleWorkers is how many goroutines carry out the writes of the idle,
	// sign-off and coverage rules (worker.go); default DefaultRuleWorkers.
	RuleWorkers int
	// EventsQueue bounds the events waiting for JetStream behind a full
	// backlog or a stream without a leader; more are dropped and counted.
	// Default events.DefaultQueue.
	EventsQueue int
	// StandbyKept bounds the changes whose events a partition's standby
	// keeps (event_duty.go); the oldest are forgotten first, and counted.
	// Default DefaultStandbyKept.
	StandbyKept int
	// WatchPendingBytes bounds the messages a partition's watch that runs
	// behind keeps for it, unread (store.WatchEveryMessage); beyond, it
	// misses revisions and re-reads the bucket. Default
	// store.DefaultWatchPendingBytes.
	WatchPendingBytes int
}

// Hub is one replica's state and its local subscribers: the composition of
// its parts (see the package doc) and the API the transport uses: sessions
// (Connect), widgets (SubscribeWidget, WidgetStatus), the admin's writes
// (PutSchedule, PutSettings, SetAgentStatus, RevokeDevice), the agents API
// (Agents, Agent), statistics (Replicas, AdminStats) and health.
type Hub struct {
	cfg Config
	js  jetstream.JetStream
	nc  *nats.Conn
	// store is the stores of the deployment's partitions (store.Layout);
	// set by Run to the layout's count before anything uses it.
	store    *store.Layout
	storeCfg store.Config
	log      *slog.Logger
	ready    atomic.Bool
	loaded   chan struct{} // closed when the view first loads
	// watchGate, set by tests only, holds back every partition watch
	// before it applies a live entry, until the channel is closed.
	watchGate atomic.Pointer[chan struct{}]
	loadOnce  sync.Once

	// follows keeps the view in step with the sites this replica has an
	// interest in (follow.go); duty with the whole bucket of each
	// partition it owns (duty.go, watch.go).
	follows follows
	duty    duty
	// sessionCount and widgetSubs count the local device sessions and
	// widget subscribers, for statistics.
	sessionCount atomic.Int64
	widgetSubs   atomic.Int64

	// bg runs work that outlives its caller, such as a bye's purge.
	bg background
	// The parts: view holds the state (view.go), fanout sends frames
	// (fanout.go), rules carries out the rules' decisions (worker.go).
	view   view
	fanout fanout
	rules  rules
	// health is the outcome of the last JetStream probe.
	health health
	// membership is this replica's part of the cluster: liveness, the
	// layout, the hand-over of a gone replica's leases (liveness.go,
	// layout.go).
	membership membership
	// member keeps this replica's liveness and partitions (package
	// cluster); set by Run before anything uses it.
	member *cluster.Member
	// memberID names this run of the replica in the cluster, its leases
	// and their index: the replica's id made a subject token, and a
	// random suffix, so that a replica restarted under the same id is not
	// taken for the run before it, whose leases must be dropped.
	memberID string

	counters counters
	stats    stats
	metrics  *metrics
	// events publishes the event stream; nil without Config.Events.
	events *events.Publisher
}

// New returns a hub; call Run to load the view and keep it current.
func New(cfg Config) (*Hub, error) {
	if cfg.JetStream == nil || cfg.Bucket == nil {
		return nil, errors.New("hub: JetStream and Bucket are required")
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Grace < time.Second {
		return nil, fmt.Errorf("hub: grace %v is under the 1s resolution of NATS TTLs", cfg.Grace)
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = cfg.Grace / 4
	}
	if cfg.RefreshEvery <= 0 || cfg.RefreshEvery >= cfg.Grace {
		return nil, fmt.Errorf("hub: refresh interval %v must be between 0 and grace %v", cfg.RefreshEvery, cfg.Grace)
	}
	if cfg.MarkerTTL == 0 {
		cfg.MarkerTTL = DefaultMarkerTTL
	}
	if cfg.MarkerTTL < time.Second {
		return nil, fmt.Errorf("hub: marker TTL %v is under 1s", cfg.MarkerTTL)
	}
	if cfg.ID == "" {
		cfg.ID = uuid.NewString()
	}
	if cfg.MaxDevices == 0 {
		cfg.MaxDevices = DefaultMaxDevices
	}
	if cfg.HealthEvery == 0 {
		cfg.HealthEvery = DefaultHealthEvery
	}
	if cfg.HealthEvery < 0 {
		return nil, fmt.Errorf("hub: health probe interval %v is negative", cfg.HealthEvery)
	}
	if cfg.RuleWorkers == 0 {
		cfg.RuleWorkers = DefaultRuleWorkers
	}
	if cfg.RuleWorkers < 0 {
		return nil, fmt.Errorf("hub: rule workers %d is negative", cfg.RuleWorkers)
	}
	for _, l := range []struct {
		v   *int
		def int
		why string
	}{
		{&cfg.EventsQueue, events.DefaultQueue, "events queue"},
		{&cfg.StandbyKept, DefaultStandbyKept, "standby's kept changes"},
		{&cfg.WatchPendingBytes, store.DefaultWatchPendingBytes, "watch's pending bytes"},
	} {
		if *l.v == 0 {
			*l.v = l.def
		}
		if *l.v < 0 {
			return nil, fmt.Errorf("hub: %s %d is negative", l.why, *l.v)
		}
	}
	if cfg.WriteRetry == 0 {
		cfg.WriteRetry = DefaultWriteRetry
	}
	if cfg.FollowLinger == 0 {
		cfg.FollowLinger = DefaultFollowLinger
	}
	if cfg.FollowLinger < 0 {
		return nil, fmt.Errorf("hub: follow linger %v is negative", cfg.FollowLinger)
	}
	if cfg.LivenessTTL == 0 {
		cfg.LivenessTTL = DefaultLivenessTTL
	}
	if cfg.LivenessTTL < time.Second {
		return nil, fmt.Errorf("hub: liveness TTL %v is under the 1s resolution of NATS TTLs", cfg.LivenessTTL)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hub{
		cfg:      cfg,
		js:       cfg.JetStream,
		nc:       cfg.JetStream.Conn(),
		log:      cfg.Logger.With("hub", cfg.ID),
		memberID: memberID(cfg.ID),
		view:     view{sites: newSiteRegistry()},
		loaded:   make(chan struct{}),
		stats:    stats{started: cfg.Now(), book: replicaBook{replicas: make(map[string]ReplicaStats), seen: make(map[string]time.Time)}},
	}
	h.stats.h, h.view.h, h.fanout.h, h.rules.h, h.duty.h, h.membership.h = h, h, h, h, h, h
	h.follows = newFollows(h)
	h.health.set(errNotProbed)
	h.metrics = newMetrics(h, cfg.Registerer, cfg.PerSiteMetrics)
	h.storeCfg = store.Config{
		Grace: cfg.Grace, MarkerTTL: cfg.MarkerTTL, WriteRetry: cfg.WriteRetry,
		Metrics: store.Metrics{Ops: h.metrics.kvOps, Errors: h.metrics.kvErrors, Retries: h.metrics.writeRetries},
	}
	// One partition until Run reads the deployment's layout.
	h.store = store.SingleLayout(store.New(cfg.Bucket, h.storeCfg))
	if cfg.Events {
		p, err := events.NewPublisher(h.js.Conn(), events.Metrics{Published: h.metrics.eventsPublished, Errors: h.metrics.eventErrors}, h.goBackground, cfg.Now, cfg.EventsQueue)
		if err != nil {
			return nil, err
		}
		h.events = p
	}
	return h, nil
}

// ID returns the replica's id.
func (h *Hub) ID() string { return h.cfg.ID }

// Grace returns the configured grace period.
func (h *Hub) Grace() time.Duration { return h.cfg.Grace }

// Ready reports whether the view has loaded the bucket's current state.
func (h *Hub) Ready() bool { return h.ready.Load() }

// Loaded returns a channel that is closed once the view has first loaded.
func (h *Hub) Loaded() <-chan struct{} { return h.loaded }

// Run loads the view, keeps it current and refreshes local leases until ctx
// is done or the watch fails.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.membership.join(ctx); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	h.bg.start(ctx)
	h.rules.worker.start(ctx, h.cfg.RuleWorkers)
	h.follows.ctx = ctx
	h.duty.ctx = ctx
	g.Go(func() error { return h.member.Run(ctx) })
	g.Go(func() error {
		select {
		case <-h.member.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
		if h.events != nil {
			// Changes made before their partition has an owner that
			// loaded it would have no events (event_duty.go): a replica
			// serves once every partition has one.
			select {
			case <-h.member.OwnersLoaded():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return h.follows.run(ctx)
	})
	g.Go(func() error { return h.stats.publish(ctx) })
	g.Go(func() error { return h.probeJetStream(ctx) })
	err := g.Wait()
	h.duty.stop()
	h.rules.worker.stop()
	h.bg.stop()
	h.ready.Store(false)
	h.rules.stopTimers()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// markLoaded marks the replica ready: its follows run. A replica holds
// nothing at start; it loads a site when something here needs it.
func (h *Hub) markLoaded() {
	h.ready.Store(true)
	// JetStream answered the cluster member: a replica whose view loaded
	// before its first probe did is ready.
	if errors.Is(h.health.get(), errNotProbed) {
		h.health.set(nil)
		h.metrics.jetstreamHealthy.Set(1)
	}
	h.loadOnce.Do(func() {
		close(h.loaded)
		h.log.Info("view loaded")
	})
}

// background runs goroutines that outlive the call that started them, on
// Run's context, and Run waits for them.
type background struct {
	mu  sync.Mutex
	ctx context.Context // guarded by mu; nil while Run is not running
	wg  sync.WaitGroup
}

func (b *background) start(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ctx = ctx
}

// stop waits for the goroutines; Run's context is done by then, so they
// are ending.
func (b *background) stop() {
	b.mu.Lock()
	b.ctx = nil
	b.mu.Unlock()
	b.wg.Wait()
}

// goBackground runs fn on a goroutine owned by Run, with Run's context; it
// reports false, running nothing, when Run is not running.
func (h *Hub) goBackground(fn func(ctx context.Context)) bool {
	h.bg.mu.Lock()
	defer h.bg.mu.Unlock()
	if h.bg.ctx == nil || h.bg.ctx.Err() != nil {
		return false
	}
	ctx := h.bg.ctx
	h.bg.wg.Go(func() { fn(ctx) })
	return true
}

// memberID returns the cluster id of a run of replica id: id with every
// character that is not a letter, a digit, _ or - replaced by _, and a
// random suffix.
func memberID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b) + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
}

// sleep waits for d, or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
