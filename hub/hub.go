package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/presence"
)

// Defaults for Config.
const (
	DefaultGrace      = 2 * time.Minute
	DefaultMarkerTTL  = time.Minute
	DefaultBucket     = "presence"
	DefaultMaxDevices = 10
)

// ErrNotReady is returned while the view is still loading.
var ErrNotReady = errors.New("hub: view not loaded yet")

// Config configures a Hub.
type Config struct {
	// JetStream is the NATS JetStream context the hub uses; required.
	JetStream jetstream.JetStream
	// KV is the bucket, as opened by OpenBucket; required.
	KV jetstream.KeyValue
	// Grace is how long a dropped device keeps its lease. NATS TTLs have a
	// resolution of one second, so it must be at least 1s. Default 2m.
	Grace time.Duration
	// RefreshEvery is how often live leases are refreshed; default Grace/4.
	RefreshEvery time.Duration
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
	// PerSiteMetrics adds per-site series (one per site: keep it off with
	// many sites).
	PerSiteMetrics bool
}

// Hub is one replica's view of all presence state and its local subscribers.
type Hub struct {
	cfg       Config
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	kvSubject string // "$KV.<bucket>.", the subject prefix of keys
	log       *slog.Logger
	ready     atomic.Bool
	loaded    chan struct{} // closed when the view first loads
	loadOnce  sync.Once

	mu sync.Mutex
	// sites is the view: every site's presence state, and its local
	// subscribers. Guarded by mu.
	sites map[string]*siteState
	// applied is the highest bucket revision applied to the view; appliedCh
	// is closed and replaced each time it moves. Guarded by mu.
	applied   uint64
	appliedCh chan struct{}
	// unsubs holds, for every registered subscriber, what unregisters it.
	// Guarded by mu.
	unsubs map[Subscriber][]func()
	// missedLogged is when noteSkipped last logged, and missedUnlogged what
	// it counted since. Only the watcher goroutine touches them.
	missedLogged   time.Time
	missedUnlogged uint64
	// fanOut is scratch space for splitting a large fan-out, kept between
	// fan-outs (cleared, so that it holds no subscriber). Guarded by mu.
	fanOut []Subscriber
	// sessions are the live local device sessions, whose leases the keeper
	// refreshes. Guarded by mu.
	sessions map[*Session]struct{}

	started  time.Time
	counters counters
	book     replicaBook
	metrics  *metrics
}

// siteState is the view of one site plus its local subscribers.
type siteState struct {
	id       string
	presence *presence.Site
	agents   map[string]storedAgent
	devices  map[string]storedDevice // by device key
	widgets  map[string]*widgetTopic // by group, "" for the site
	roster   map[Subscriber]struct{}
	// local maps agent id to the agent's device sessions on this hub.
	local map[string]map[*Session]struct{}
	// hours maps group ("" for the site) to its working hours; timers holds
	// the one timer per schedule, armed for its next boundary.
	hours  map[string]*presence.Schedule
	timers map[string]*hoursTimer
	// hoursSent is the site's open state as last told to its agents.
	hoursSent Hours
	// settings are the site's settings; hasSettings says they were set.
	settings    SiteSettings
	hasSettings bool
}

type storedAgent struct {
	rec agentRecord
	rev uint64
}

type storedDevice struct {
	rec deviceRecord
	rev uint64
}

// widgetTopic is one (site, group) widget with local subscribers: its last
// status and the frame that says it.
type widgetTopic struct {
	widget presence.Widget
	next   time.Time // next hours boundary; zero if none
	status WidgetStatus
	frame  *Frame
	subs   map[Subscriber]struct{}
}

// New returns a hub; call Run to load the view and keep it current.
func New(cfg Config) (*Hub, error) {
	if cfg.JetStream == nil || cfg.KV == nil {
		return nil, errors.New("hub: JetStream and KV are required")
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hub{
		cfg:       cfg,
		js:        cfg.JetStream,
		kv:        cfg.KV,
		kvSubject: "$KV." + cfg.KV.Bucket() + ".",
		log:       cfg.Logger.With("hub", cfg.ID),
		sites:     make(map[string]*siteState),
		appliedCh: make(chan struct{}),
		loaded:    make(chan struct{}),
		unsubs:    make(map[Subscriber][]func()),
		sessions:  make(map[*Session]struct{}),
		started:   cfg.Now(),
		book:      replicaBook{replicas: make(map[string]ReplicaStats), seen: make(map[string]time.Time)},
	}
	h.metrics = newMetrics(h, cfg.Registerer, cfg.PerSiteMetrics)
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
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.watch(ctx) })
	g.Go(func() error { return h.keepLeases(ctx) })
	g.Go(func() error { return h.publishStats(ctx) })
	err := g.Wait()
	h.ready.Store(false)
	h.stopTimers()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// watch keeps the view in step with the bucket. Each watch starts with a
// snapshot of the bucket that is reconciled with the view, so a view that
// missed updates (a NATS outage longer than the marker TTL loses the markers
// of leases that expired meanwhile) is corrected. A new watch starts whenever
// the NATS connection comes back or the watch ends.
func (h *Hub) watch(ctx context.Context) error {
	reconnected := h.js.Conn().StatusChanged(nats.CONNECTED)
	defer h.js.Conn().RemoveStatusListener(reconnected)
	for {
		err := h.watchOnce(ctx, reconnected)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.log.Warn("restarting bucket watch", "reason", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(watchRetryDelay):
		}
	}
}

// watchRetryDelay spaces out watch restarts while NATS is unreachable.
const watchRetryDelay = 500 * time.Millisecond

var errReconnected = errors.New("NATS connection re-established")

func (h *Hub) watchOnce(ctx context.Context, reconnected <-chan nats.Status) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := h.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("failed to watch bucket: %w", err)
	}
	defer w.Stop()
	snapshot := make(map[string]jetstream.KeyValueEntry)
	loading := true
	var lastLive uint64 // revision of the last entry read after loading
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-reconnected:
			return errReconnected
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("bucket watch ended")
			case loading && e != nil:
				snapshot[e.Key()] = e
			case loading:
				loading = false
				h.reconcile(snapshot)
				snapshot = nil
				h.ready.Store(true)
				h.loadOnce.Do(func() {
					close(h.loaded)
					h.log.Info("view loaded")
				})
			case e != nil:
				h.noteSkipped(lastLive, e.Revision())
				lastLive = e.Revision()
				h.apply(e)
			}
		}
	}
}

// noteSkipped counts the revisions between two entries of a live watch.
// Once loaded, the watch reads every message of the bucket's stream in
// order, so a gap means messages were removed before the watch got to them:
// it runs behind by more than the bucket's history. The first live entry is
// not compared with the snapshot, whose last revision need not be the
// stream's last sequence.
// A replica that runs behind would skip revisions over and over, so the
// warning sums them up at most once per missedLogEvery.
func (h *Hub) noteSkipped(last, rev uint64) {
	if last == 0 || rev <= last+1 {
		return
	}
	missed := rev - last - 1
	h.metrics.watchMissed.Add(float64(missed))
	h.missedUnlogged += missed
	if now := time.Now(); now.Sub(h.missedLogged) >= missedLogEvery {
		h.log.Warn("bucket watch missed revisions: it runs behind", "missed", h.missedUnlogged, "since", h.missedLogged, "next", rev)
		h.missedLogged, h.missedUnlogged = now, 0
	}
}

const missedLogEvery = 10 * time.Second

// reconcile makes the view equal to a snapshot of the bucket: keys the view
// holds that the snapshot lacks are removed, then every snapshot entry is
// applied. Applying what the view already holds changes nothing, so only
// real differences produce frames.
func (h *Hub) reconcile(snapshot map[string]jetstream.KeyValueEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, key := range h.viewKeysLocked() {
		if _, ok := snapshot[key]; !ok {
			h.applyLocked(key, 0, jetstream.KeyValuePurge, nil)
		}
	}
	entries := make([]jetstream.KeyValueEntry, 0, len(snapshot))
	for _, e := range snapshot {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b jetstream.KeyValueEntry) int { return cmp.Compare(a.Revision(), b.Revision()) })
	for _, e := range entries {
		h.applyLocked(e.Key(), e.Revision(), e.Operation(), e.Value())
	}
}

// viewKeysLocked lists the bucket keys the view holds.
func (h *Hub) viewKeysLocked() []string {
	var keys []string
	for _, s := range h.sites {
		for agent := range s.agents {
			keys = append(keys, agentKey(s.id, agent))
		}
		for key := range s.devices {
			keys = append(keys, key)
		}
		for group := range s.hours {
			keys = append(keys, hoursKey(s.id, group))
		}
		if s.hasSettings {
			keys = append(keys, settingsKey(s.id))
		}
	}
	return keys
}

// apply folds one bucket entry into the view and fans out what it changes.
func (h *Hub) apply(e jetstream.KeyValueEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applyLocked(e.Key(), e.Revision(), e.Operation(), e.Value())
}

func (h *Hub) applyLocked(key string, rev uint64, op jetstream.KeyValueOp, value []byte) {
	defer h.markAppliedLocked(rev)
	k, ok := parseKey(key)
	if !ok {
		h.log.Warn("ignoring unknown key in bucket", "key", key)
		return
	}
	e := entry{key: key, rev: rev, value: value, deleted: op != jetstream.KeyValuePut}
	s := h.siteLocked(k.site)
	defer h.gcSiteLocked(s)
	switch k.kind {
	case agentPrefix:
		h.applyAgentLocked(s, k.agent, e)
	case devicePrefix:
		h.applyDeviceLocked(s, k, e)
	case hoursPrefix:
		h.applyHoursLocked(s, k.group, e)
	case settingsPrefix:
		h.applySettingsLocked(s, e)
	}
}

// entry is one bucket update: a put of value, or the key's removal.
type entry struct {
	key     string
	rev     uint64
	value   []byte
	deleted bool
}

func (h *Hub) applyAgentLocked(s *siteState, agent string, e entry) {
	if e.deleted {
		delete(s.agents, agent)
		h.publishChangeLocked(s, s.presence.RemoveAgent(agent))
		return
	}
	rec, err := decodeAgentRecord(e.value)
	if err != nil {
		h.log.Error("ignoring bad agent record", "key", e.key, "err", err)
		return
	}
	old, existed := s.agents[agent]
	s.agents[agent] = storedAgent{rec: rec, rev: e.rev}
	ch := s.presence.SetAgent(agent, rec.Status, rec.Groups)
	if (existed && (old.rec.Status != rec.Status || !old.rec.At.Equal(rec.At))) || (!existed && rec.ByDevice != "") {
		frame := encode(statusFrame{Type: "status", Status: rec.Status, ByDevice: rec.ByDevice, Ref: rec.Ref, At: Time(rec.At)})
		h.sendToAgentLocked(s, agent, frame)
		defer h.metrics.observePropagation(rec.At, h.cfg.Now())
	}
	h.publishChangeLocked(s, ch)
}

func (h *Hub) applyDeviceLocked(s *siteState, k parsedKey, e entry) {
	before, known := s.presence.Agent(k.agent)
	wasLingering := known && before.Lingering()
	defer func() {
		a, ok := s.presence.Agent(k.agent)
		h.metrics.observeGrace(wasLingering, a, ok)
	}()
	var ch presence.Change
	if e.deleted {
		delete(s.devices, e.key)
		ch = s.presence.RemoveDevice(k.agent, k.device)
	} else {
		rec, err := decodeDeviceRecord(e.value)
		if err != nil {
			h.log.Error("ignoring bad device record", "key", e.key, "err", err)
			return
		}
		s.devices[e.key] = storedDevice{rec: rec, rev: e.rev}
		ch = s.presence.SetDevice(k.agent, presence.Device{
			ID: k.device, Kind: rec.Kind, Since: rec.Since, Session: rec.Session, State: rec.State,
		})
		h.kickReplacedLocked(s, k, rec.Session)
	}
	h.publishChangeLocked(s, ch)
}

// kickReplacedLocked closes a local session whose device has been taken over
// by a newer session (the same device id connected again elsewhere).
func (h *Hub) kickReplacedLocked(s *siteState, k parsedKey, session string) {
	for sess := range s.local[k.agent] {
		if sess.device == k.device && sess.id != session {
			h.log.Debug("device session replaced", "site", k.site, "agent", k.agent, "device", k.device)
			h.dropLocked(sess.sub, ErrReplaced)
		}
	}
}

// publishChangeLocked sends what one agent change means to local subscribers:
// widget frames where a widget's status moved, roster frames, and the agent's
// device list to the agent's own devices.
func (h *Hub) publishChangeLocked(s *siteState, ch presence.Change) {
	if ch.DevicesChanged {
		h.sendDevicesLocked(s, ch.Agent)
	}
	if !ch.EffectiveChanged() && !ch.GroupsChanged() {
		return
	}
	h.refreshWidgetsLocked(s, ch.Touches)
	if len(s.roster) > 0 {
		a, ok := s.presence.Agent(ch.Agent)
		groups := ch.AfterGroups
		status := presence.Offline
		if ok {
			status = a.Effective()
		}
		h.fanOutLocked(s.roster, encode(agentFrame{Type: "agent", ID: ch.Agent, Status: status, Groups: nonNil(groups)}))
	}
}

// refreshWidgetsLocked recomputes the widgets of the site's groups for
// which touched reports true, and sends a frame to the subscribers of each
// one whose status, reason or next hours boundary moved.
func (h *Hub) refreshWidgetsLocked(s *siteState, touched func(group string) bool) {
	now := h.cfg.Now()
	for group, t := range s.widgets {
		if !touched(group) {
			continue
		}
		w, next := h.widgetLocked(s, group, now)
		if w == t.widget && next.Equal(t.next) {
			continue
		}
		t.widget, t.next = w, next
		t.status, t.frame = h.widgetFrame(s.id, group, w, next, now)
		h.fanOutLocked(t.subs, t.frame)
	}
}

// widgetLocked is the widget of (s, group) at now: what the agents make it,
// forced offline outside the working hours that apply to it.
func (h *Hub) widgetLocked(s *siteState, group string, now time.Time) (presence.Widget, time.Time) {
	sched := s.hours[""]
	if group != "" {
		sched = presence.EffectiveSchedule(sched, s.hours[group])
	}
	return presence.ApplyHours(s.presence.Widget(group), sched, now)
}

func (h *Hub) widgetFrame(site, group string, w presence.Widget, next, now time.Time) (WidgetStatus, *Frame) {
	ws := WidgetStatus{Type: "widget_status", Site: site, Group: group, Status: w.Status, Reason: w.Reason, NextChange: optionalTime(next), At: Time(now)}
	return ws, encode(ws)
}

func (h *Hub) sendDevicesLocked(s *siteState, agent string) {
	if len(s.local[agent]) == 0 {
		return
	}
	var devices []presence.Device
	if a, ok := s.presence.Agent(agent); ok {
		devices = a.LiveDevices()
	}
	h.sendToAgentLocked(s, agent, encode(devicesFrame{Type: "devices", Devices: deviceInfos(devices)}))
}

func (h *Hub) sendToAgentLocked(s *siteState, agent string, frame *Frame) {
	var full []Subscriber
	for sess := range s.local[agent] {
		if !h.sendLocked(sess.sub, frame) {
			full = append(full, sess.sub)
		}
	}
	for _, sub := range full {
		h.dropLocked(sub, ErrSlowSubscriber)
	}
}

// fanOutLocked hands one frame to every subscriber in subs, dropping those
// whose queue is full.
func (h *Hub) fanOutLocked(subs map[Subscriber]struct{}, frame *Frame) {
	var fulls [][]Subscriber
	if parts := min(runtime.GOMAXPROCS(0), len(subs)/fanOutPart, maxFanOutParts); parts > 1 {
		fulls = h.sendSplitLocked(subs, frame, parts)
	} else {
		fulls = [][]Subscriber{h.sendAll(maps.Keys(subs), frame)}
	}
	for _, full := range fulls {
		for _, sub := range full {
			h.dropLocked(sub, ErrSlowSubscriber)
		}
	}
}

// sendSplitLocked sends frame to subs from parts goroutines and returns
// the subscribers each found full. A Send writes to a socket at once, and a
// write costs the kernel a few microseconds, so splitting a large fan-out
// over the cores gets the frame to the last subscriber sooner.
func (h *Hub) sendSplitLocked(subs map[Subscriber]struct{}, frame *Frame, parts int) [][]Subscriber {
	all := slices.AppendSeq(h.fanOut[:0], maps.Keys(subs))
	defer func() { clear(all); h.fanOut = all[:0] }()
	part := func(i int) iter.Seq[Subscriber] {
		return slices.Values(all[i*len(all)/parts : (i+1)*len(all)/parts])
	}
	fulls := make([][]Subscriber, parts)
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Go(func() { fulls[i] = h.sendAll(part(i), frame) })
	}
	fulls[0] = h.sendAll(part(0), frame)
	wg.Wait()
	return fulls
}

// A split fan-out gives each goroutine at least fanOutPart subscribers and
// uses at most maxFanOutParts goroutines.
const (
	fanOutPart     = 32
	maxFanOutParts = 8
)

// sendAll hands frame to each subscriber and returns those whose queue was
// full. It may run on several goroutines at once for one fan-out, while
// the fan-out's caller holds h.mu.
func (h *Hub) sendAll(subs iter.Seq[Subscriber], frame *Frame) []Subscriber {
	var full []Subscriber
	sent := 0
	for sub := range subs {
		if sub.Send(frame) {
			sent++
		} else {
			full = append(full, sub)
		}
	}
	h.counters.framesOut.Add(uint64(sent))
	h.metrics.framesOut.Add(float64(sent))
	return full
}

// dropLocked unregisters a subscriber everywhere and kicks it.
func (h *Hub) dropLocked(sub Subscriber, reason error) {
	unsubs, ok := h.unsubs[sub]
	if !ok {
		return
	}
	delete(h.unsubs, sub)
	for _, f := range unsubs {
		f()
	}
	if errors.Is(reason, ErrSlowSubscriber) {
		h.counters.slowClosed.Add(1)
		h.metrics.slowClosed.Inc()
	}
	sub.Kick(reason)
}

// sendLocked hands a frame to a subscriber's queue and counts it; it
// reports false when the queue is full.
func (h *Hub) sendLocked(sub Subscriber, frame *Frame) bool {
	if !sub.Send(frame) {
		return false
	}
	h.counters.framesOut.Add(1)
	h.metrics.framesOut.Inc()
	return true
}

func (h *Hub) registerLocked(sub Subscriber, unsub func()) {
	h.unsubs[sub] = append(h.unsubs[sub], unsub)
}

// unregisterLocked removes a subscriber from everything without kicking it.
func (h *Hub) unregisterLocked(sub Subscriber) {
	for _, f := range h.unsubs[sub] {
		f()
	}
	delete(h.unsubs, sub)
}

func (h *Hub) siteLocked(id string) *siteState {
	s := h.sites[id]
	if s == nil {
		s = &siteState{
			id:        id,
			presence:  presence.NewSite(),
			agents:    make(map[string]storedAgent),
			devices:   make(map[string]storedDevice),
			widgets:   make(map[string]*widgetTopic),
			hours:     make(map[string]*presence.Schedule),
			timers:    make(map[string]*hoursTimer),
			hoursSent: Hours{Open: true},
			roster:    make(map[Subscriber]struct{}),
			local:     make(map[string]map[*Session]struct{}),
		}
		h.sites[id] = s
	}
	return s
}

// gcSiteLocked forgets a site that holds nothing any more.
func (h *Hub) gcSiteLocked(s *siteState) {
	if s.presence.Empty() && len(s.agents) == 0 && len(s.devices) == 0 &&
		len(s.widgets) == 0 && len(s.roster) == 0 && len(s.local) == 0 &&
		len(s.hours) == 0 && !s.hasSettings {
		delete(h.sites, s.id)
	}
}

func (h *Hub) markAppliedLocked(rev uint64) {
	if rev <= h.applied {
		return
	}
	h.applied = rev
	close(h.appliedCh)
	h.appliedCh = make(chan struct{})
}

// waitApplied waits until the view has applied bucket revision rev, so that
// a caller reads its own writes.
func (h *Hub) waitApplied(ctx context.Context, rev uint64) error {
	for {
		h.mu.Lock()
		applied, ch := h.applied, h.appliedCh
		h.mu.Unlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to wait for revision %d: %w", rev, ctx.Err())
		case <-ch:
		}
	}
}

// SubscribeWidget registers sub for the widget of (site, group), group ""
// meaning the whole site. The current status is queued to sub at once, and
// then a frame each time the status or reason changes. The returned func
// unregisters sub.
func (h *Hub) SubscribeWidget(site, group string, sub Subscriber) (unsubscribe func(), err error) {
	if !h.Ready() {
		return nil, ErrNotReady
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.siteLocked(site)
	t := s.widgets[group]
	if t == nil {
		now := h.cfg.Now()
		w, next := h.widgetLocked(s, group, now)
		t = &widgetTopic{widget: w, next: next, subs: make(map[Subscriber]struct{})}
		t.status, t.frame = h.widgetFrame(site, group, w, next, now)
		s.widgets[group] = t
	}
	t.subs[sub] = struct{}{}
	h.registerLocked(sub, func() {
		delete(t.subs, sub)
		if len(t.subs) == 0 && s.widgets[group] == t {
			delete(s.widgets, group)
			h.gcSiteLocked(s)
		}
	})
	if !h.sendLocked(sub, t.frame) {
		h.dropLocked(sub, ErrSlowSubscriber)
	}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.unregisterLocked(sub)
	}, nil
}

// WidgetStatus returns the current widget status of (site, group) from the
// view. At is when a local subscriber last saw it change, or now when no
// subscriber watches it.
func (h *Hub) WidgetStatus(site, group string) (WidgetStatus, error) {
	if !h.Ready() {
		return WidgetStatus{}, ErrNotReady
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	s := h.sites[site]
	if s == nil {
		ws, _ := h.widgetFrame(site, group, presence.NewSite().Widget(group), time.Time{}, now)
		return ws, nil
	}
	if t := s.widgets[group]; t != nil {
		return t.status, nil
	}
	w, next := h.widgetLocked(s, group, now)
	ws, _ := h.widgetFrame(site, group, w, next, now)
	return ws, nil
}
