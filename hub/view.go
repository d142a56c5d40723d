package hub

import (
	"context"
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// The view: every site's state as the bucket says, each site behind a lock
// of its own, found through a registry sharded so that no lock spans every
// site. Applying a bucket entry locks its site only; what the entry changed
// is collected in the site's pending changes and turned into frames when
// the site is unlocked (see unlockSite), so a run of entries applied
// together (a reconcile) tells subscribers only where things ended up.

// site is the view of one site plus its local subscribers.
type site struct {
	id string

	mu sync.Mutex
	// removed is set when the site left the registry; a caller that finds
	// it set after locking looks the site up again. Guarded by mu.
	removed bool
	// presence holds the rules' state: agents, devices, working hours.
	// Guarded by mu, as is everything below.
	presence *presence.Site
	agents   map[string]storedAgent
	devices  map[string]storedDevice // by device key
	widgets  map[string]*widgetTopic // by group, "" for the site
	roster   subscriberSet
	// local maps agent id to the agent's device sessions on this hub.
	local map[string]map[*Session]struct{}
	// timers holds one timer per schedule, armed for its next boundary.
	timers map[string]*hoursTimer
	// hoursSent is the site's open state as last told to its agents.
	hoursSent Hours
	// activity is the agents' activity keys; activityWritten when this
	// replica last wrote each, so that a burst of activity writes once.
	activity        map[string]storedActivity
	activityWritten map[string]time.Time
	// settings are the site's settings; hasSettings says they were set;
	// settingsAt when NATS stored them.
	settings    presence.Settings
	hasSettings bool
	settingsAt  time.Time
	// hoursAt is when NATS stored each schedule, by group.
	hoursAt map[string]time.Time
	// coverage is the widgets' coverage keys, by group (coverage.go).
	coverage map[string]*coverageState
	// registered holds, for every subscriber of the site, what unregisters
	// it.
	registered map[Subscriber][]func()
	// pending is what was applied but not yet told; out is what was told
	// but not yet sent.
	pending pendingChanges
	out     outbox
}

type storedAgent struct {
	rec agentRecord
	rev uint64
}

type storedDevice struct {
	rec deviceRecord
	rev uint64
	// written is when the bucket stored the lease; a lease in grace is not
	// refreshed, so it runs out at written + grace (the agents API says so).
	written time.Time
}

// widgetTopic is one (site, group) widget with local subscribers: its last
// status and the frame that says it.
type widgetTopic struct {
	widget presence.Widget
	next   time.Time // next hours boundary; zero if none
	status WidgetStatus
	frame  *Frame
	subs   subscriberSet
}

func newSite(id string) *site {
	return &site{
		id:              id,
		presence:        presence.NewSite(),
		agents:          make(map[string]storedAgent),
		devices:         make(map[string]storedDevice),
		activity:        make(map[string]storedActivity),
		activityWritten: make(map[string]time.Time),
		widgets:         make(map[string]*widgetTopic),
		local:           make(map[string]map[*Session]struct{}),
		timers:          make(map[string]*hoursTimer),
		hoursAt:         make(map[string]time.Time),
		hoursSent:       Hours{Open: true},
		registered:      make(map[Subscriber][]func()),
		coverage:        make(map[string]*coverageState),
	}
}

// emptyLocked reports whether the site holds nothing any more, so that the
// view can forget it.
func (s *site) emptyLocked() bool {
	return s.presence.Empty() && len(s.agents) == 0 && len(s.devices) == 0 && len(s.activity) == 0 &&
		len(s.widgets) == 0 && s.roster.len() == 0 && len(s.local) == 0 &&
		len(s.timers) == 0 && !s.hasSettings && len(s.registered) == 0 && len(s.coverage) == 0 &&
		s.pending.empty() && !s.out.busy()
}

// siteRegistry finds sites by id. Its shards' locks are held only to look a
// site up, add or remove it, never while a site is locked by the same
// goroutine's lookup, so the lock order is site, then shard.
type siteRegistry struct {
	seed   maphash.Seed
	shards [registryShards]registryShard
}

const registryShards = 64

type registryShard struct {
	mu    sync.Mutex
	sites map[string]*site // guarded by mu
}

func newSiteRegistry() *siteRegistry {
	r := &siteRegistry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].sites = make(map[string]*site)
	}
	return r
}

func (r *siteRegistry) shard(id string) *registryShard {
	return &r.shards[maphash.String(r.seed, id)%registryShards]
}

// get returns the site with id, or nil; with create, a new one is added if
// there is none.
func (r *siteRegistry) get(id string, create bool) *site {
	sh := r.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.sites[id]
	if s == nil && create {
		s = newSite(id)
		sh.sites[id] = s
	}
	return s
}

// removeLocked takes s out of the registry; the caller holds s.mu.
func (r *siteRegistry) removeLocked(s *site) {
	sh := r.shard(s.id)
	sh.mu.Lock()
	if sh.sites[s.id] == s {
		delete(sh.sites, s.id)
	}
	sh.mu.Unlock()
	s.removed = true
}

// all returns every site in the registry now, in no order.
func (r *siteRegistry) all() []*site {
	var out []*site
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, s := range sh.sites {
			out = append(out, s)
		}
		sh.mu.Unlock()
	}
	return out
}

// lockSite returns the site with id locked, creating it if the view has
// none. Release it with unlockSite.
func (h *Hub) lockSite(id string) *site {
	for {
		s := h.sites.get(id, true)
		s.mu.Lock()
		if !s.removed {
			return s
		}
		s.mu.Unlock()
	}
}

// lockExistingSite returns the site with id locked, or nil when the view
// has none. Release it with unlockSite.
func (h *Hub) lockExistingSite(id string) *site {
	for {
		s := h.sites.get(id, false)
		if s == nil {
			return nil
		}
		s.mu.Lock()
		if !s.removed {
			return s
		}
		s.mu.Unlock()
	}
}

// unlockSite tells what the site's pending changes mean (frames into its
// outbox), forgets the site if it holds nothing, unlocks it, and then starts
// the site's delivery if none is running. Sends therefore never happen with
// a site locked, and never on the caller's goroutine: a subscriber that
// blocks holds up its own site's deliveries, nothing else.
func (h *Hub) unlockSite(s *site) {
	h.flushLocked(s)
	start := s.out.startLocked()
	if !start && s.emptyLocked() {
		h.sites.removeLocked(s)
	}
	s.mu.Unlock()
	if start {
		go h.deliver(s)
	}
}

// viewKeys lists the bucket keys the view holds.
func (h *Hub) viewKeys() []string {
	var keys []string
	for _, s := range h.sites.all() {
		s.mu.Lock()
		for agent := range s.agents {
			keys = append(keys, agentKey(s.id, agent))
		}
		for key := range s.devices {
			keys = append(keys, key)
		}
		for _, group := range s.presence.HoursGroups() {
			keys = append(keys, hoursKey(s.id, group))
		}
		if s.hasSettings {
			keys = append(keys, settingsKey(s.id))
		}
		for agent, a := range s.activity {
			if a.present {
				keys = append(keys, activityKey(s.id, agent))
			}
		}
		for group, c := range s.coverage {
			if c.uncovered != nil {
				keys = append(keys, coverageKey(uncoveredPrefix, s.id, group))
			}
			if c.lost != nil {
				keys = append(keys, coverageKey(lostPrefix, s.id, group))
			}
		}
		s.mu.Unlock()
	}
	return keys
}

// entry is one bucket update: a put of value, or the key's removal.
type entry struct {
	key     string
	rev     uint64
	value   []byte
	deleted bool
	at      time.Time // when NATS stored it; zero for a removal found by absence
	// live is set for an entry the watch read after loading, not one of
	// a snapshot: the view held everything before it when it came.
	live bool
}

// applyLocked folds one bucket entry of site s into the view; what it
// changes is told when s is unlocked.
func (h *Hub) applyLocked(s *site, k parsedKey, e entry) {
	switch k.kind {
	case agentPrefix:
		h.applyAgentLocked(s, k.agent, e)
	case devicePrefix:
		h.applyDeviceLocked(s, k, e)
	case hoursPrefix:
		h.applyHoursLocked(s, k.group, e)
	case settingsPrefix:
		h.applySettingsLocked(s, e)
	case activityPrefix:
		h.applyActivityLocked(s, k, e)
	case uncoveredPrefix, lostPrefix:
		h.applyCoverageLocked(s, k, e)
	}
}

func (h *Hub) applyAgentLocked(s *site, agent string, e entry) {
	h.noteAgentLocked(s, agent)
	if e.deleted {
		delete(s.agents, agent)
		s.pending.changed(s.presence.RemoveAgent(agent))
		return
	}
	rec, err := decodeAgentRecord(e.value)
	if err != nil {
		h.log.Error("ignoring bad agent record", "key", e.key, "err", err)
		return
	}
	s.agents[agent] = storedAgent{rec: rec, rev: e.rev}
	s.pending.changed(s.presence.SetAgent(agent, rec.Status, rec.Groups))
}

func (h *Hub) applyDeviceLocked(s *site, k parsedKey, e entry) {
	before, known := s.presence.Agent(k.agent)
	wasLingering := known && before.Lingering()
	h.noteAgentLocked(s, k.agent)
	revoked := e.deleted && string(e.value) == string(revokedMarker)
	if e.deleted {
		delete(s.devices, e.key)
		s.pending.changed(s.presence.RemoveDevice(k.agent, k.device))
		if revoked {
			h.kickRevokedLocked(s, k)
		}
	} else {
		rec, err := decodeDeviceRecord(e.value)
		if err != nil {
			h.log.Error("ignoring bad device record", "key", e.key, "err", err)
			return
		}
		s.devices[e.key] = storedDevice{rec: rec, rev: e.rev, written: e.at}
		s.pending.changed(s.presence.SetDevice(k.agent, presence.Device{
			ID: k.device, Kind: rec.Kind, Since: rec.Since, Session: rec.Session, State: rec.State,
		}))
		h.kickReplacedLocked(s, k, rec.Session)
	}
	if revoked {
		return // a grace an admin cut short did not run out
	}
	a, ok := s.presence.Agent(k.agent)
	h.metrics.observeGrace(wasLingering, a, ok)
}

// kickReplacedLocked closes a local session whose device has been taken over
// by a newer session (the same device id connected again elsewhere).
func (h *Hub) kickReplacedLocked(s *site, k parsedKey, session string) {
	for sess := range s.local[k.agent] {
		if sess.device == k.device && sess.id != session {
			h.log.Debug("device session replaced", "site", k.site, "agent", k.agent, "device", k.device)
			h.dropLocked(s, sess.sub, ErrReplaced)
		}
	}
}

func (h *Hub) applySettingsLocked(s *site, e entry) {
	s.pending.settingsChanged()
	if e.deleted {
		s.settings, s.hasSettings, s.settingsAt = presence.Settings{}, false, time.Time{}
		return
	}
	settings, err := decodeSettings(e.value)
	if err != nil {
		h.log.Error("ignoring bad site settings", "key", e.key, "err", err)
		return
	}
	before := s.settings.IdleAfter()
	s.settings, s.hasSettings, s.settingsAt = settings, true, e.at
	if after := settings.IdleAfter(); after > 0 && after != before && h.isLoaded() {
		// The idle rule was turned on or changed: online agents' clocks
		// start now (the load starts them for a replica starting up).
		h.startIdleClocksLocked(s)
	}
}

// pendingChanges is what entries applied to a site changed since the site
// was last told: the agents touched, as they were before the first of
// those entries, the changes the rules reported, the groups whose
// working hours changed, and whether coverage keys or the settings
// changed (coverage.go).
type pendingChanges struct {
	agents   map[string]agentBefore
	changes  []presence.Change
	hours    map[string]bool
	coverage bool
	// allGroups asks the coverage check for the groups of every agent.
	allGroups bool
}

// agentBefore is an agent as its subscribers were last told of it.
type agentBefore struct {
	rec       agentRecord
	hasRec    bool
	effective presence.Status
	groups    []string
	live      []string // ids of live devices
}

func (p *pendingChanges) changed(ch presence.Change) { p.changes = append(p.changes, ch) }

func (p *pendingChanges) coverageChanged() { p.coverage = true }

func (p *pendingChanges) settingsChanged() { p.coverage, p.allGroups = true, true }

func (p *pendingChanges) hoursChanged(group string) {
	if p.hours == nil {
		p.hours = make(map[string]bool)
	}
	p.hours[group] = true
}

// reset empties p, keeping its storage for the next changes.
func (p *pendingChanges) reset() {
	clear(p.agents)
	clear(p.changes)
	p.changes = p.changes[:0]
	clear(p.hours)
	p.coverage, p.allGroups = false, false
}

func (p *pendingChanges) empty() bool {
	return len(p.agents) == 0 && len(p.changes) == 0 && len(p.hours) == 0 && !p.coverage
}

// noteAgentLocked records how agent looks before an entry changes it, the
// first time it is touched since the site was last told.
func (h *Hub) noteAgentLocked(s *site, agent string) {
	if _, ok := s.pending.agents[agent]; ok {
		return
	}
	if s.pending.agents == nil {
		s.pending.agents = make(map[string]agentBefore)
	}
	s.pending.agents[agent] = h.agentNowLocked(s, agent)
}

func (h *Hub) agentNowLocked(s *site, agent string) agentBefore {
	var b agentBefore
	if a, ok := s.agents[agent]; ok {
		b.rec, b.hasRec = a.rec, true
	}
	b.effective = presence.Offline
	if a, ok := s.presence.Agent(agent); ok {
		b.effective, b.groups = a.Effective(), a.Groups
		for _, d := range a.LiveDevices() {
			b.live = append(b.live, d.ID+"/"+string(d.State)) // a move to the background is news
		}
	}
	return b
}

// flushLocked turns the site's pending changes into frames in its outbox,
// in this order: each touched agent's status and device frames to its own
// devices, then widget frames where a widget moved, roster frames, and the
// site's open state to its agents where that moved; last it checks the
// widgets' coverage (coverage.go).
func (h *Hub) flushLocked(s *site) {
	p := &s.pending
	if p.empty() {
		return
	}
	defer p.reset()
	now := h.cfg.Now()
	agents := make([]string, 0, len(p.agents))
	for agent := range p.agents {
		agents = append(agents, agent)
	}
	slices.Sort(agents)
	type rosterChange struct {
		agent string
		after agentBefore
	}
	var roster []rosterChange
	for _, agent := range agents {
		before, after := p.agents[agent], h.agentNowLocked(s, agent)
		by, byID := after.rec.author()
		if after.hasRec && ((before.hasRec && (before.rec.Status != after.rec.Status || !before.rec.At.Equal(after.rec.At))) ||
			(!before.hasRec && by != "")) {
			rec := after.rec
			f := statusFrame{Type: "status", Status: rec.Status, By: by, ByDevice: rec.ByDevice, Ref: rec.Ref, At: Time(rec.At)}
			switch by {
			case ByAdmin:
				f.ByAgent = byID
			case ByIdle:
				f.IdleAfterMS = s.settings.IdleAfter().Milliseconds()
			}
			h.sendToAgentLocked(s, agent, encode(f))
			h.metrics.observePropagation(rec.At, now)
		}
		if !slices.Equal(before.live, after.live) {
			h.sendDevicesLocked(s, agent)
		}
		if before.effective != after.effective || !slices.Equal(before.groups, after.groups) {
			roster = append(roster, rosterChange{agent, after})
		}
	}
	h.refreshWidgetsLocked(s, now, func(group string) bool {
		for hoursGroup := range p.hours {
			if s.presence.GovernedBy(group, hoursGroup) {
				return true
			}
		}
		for _, ch := range p.changes {
			if ch.Touches(group) {
				return true
			}
		}
		return false
	})
	if s.roster.len() > 0 {
		for _, rc := range roster {
			h.enqueueLocked(s, encode(agentFrame{Type: "agent", ID: rc.agent, Status: rc.after.effective, Groups: nonNil(rc.after.groups)}), s.roster.snapshot())
		}
	}
	if len(p.hours) > 0 {
		h.sendSiteHoursLocked(s, now)
	}
	h.checkCoverageLocked(s, now)
}

// refreshWidgetsLocked recomputes the widgets of the site's groups for
// which touched reports true, and queues a frame to the subscribers of each
// one whose status, reason or next hours boundary moved.
func (h *Hub) refreshWidgetsLocked(s *site, now time.Time, touched func(group string) bool) {
	for group, t := range s.widgets {
		if !touched(group) {
			continue
		}
		w, next := s.presence.WidgetAt(group, now)
		if w == t.widget && next.Equal(t.next) {
			continue
		}
		t.widget, t.next = w, next
		t.status, t.frame = widgetFrame(s.id, group, w, next, now)
		h.enqueueLocked(s, t.frame, t.subs.snapshot())
	}
}

func widgetFrame(site, group string, w presence.Widget, next, now time.Time) (WidgetStatus, *Frame) {
	ws := WidgetStatus{Type: "widget_status", Site: site, Group: group, Status: w.Status, Reason: w.Reason, NextChange: optionalTime(next), At: Time(now)}
	return ws, encode(ws)
}

func (h *Hub) sendDevicesLocked(s *site, agent string) {
	if len(s.local[agent]) == 0 {
		return
	}
	var devices []presence.Device
	if a, ok := s.presence.Agent(agent); ok {
		devices = a.LiveDevices()
	}
	h.sendToAgentLocked(s, agent, encode(devicesFrame{Type: "devices", Devices: deviceInfos(devices)}))
}

func (h *Hub) sendToAgentLocked(s *site, agent string, f *Frame) {
	sessions := s.local[agent]
	if len(sessions) == 0 {
		return
	}
	to := make([]Subscriber, 0, len(sessions))
	for sess := range sessions {
		to = append(to, sess.sub)
	}
	h.enqueueLocked(s, f, to)
}

// applied tracks the highest bucket revision the view has applied, so that
// a caller can wait to read its own writes.
type applied struct {
	mu  sync.Mutex
	rev uint64        // guarded by mu
	ch  chan struct{} // closed and replaced when rev moves; guarded by mu
}

func (a *applied) mark(rev uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev <= a.rev {
		return
	}
	a.rev = rev
	close(a.ch)
	a.ch = make(chan struct{})
}

// wait waits until the view has applied bucket revision rev.
func (a *applied) wait(ctx context.Context, rev uint64) error {
	for {
		a.mu.Lock()
		cur, ch := a.rev, a.ch
		a.mu.Unlock()
		if cur >= rev {
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
// then a frame each time the status, reason or next hours boundary
// changes. The returned func unregisters sub.
func (h *Hub) SubscribeWidget(siteID, group string, sub Subscriber) (unsubscribe func(), err error) {
	if !h.Ready() {
		return nil, ErrNotReady
	}
	s := h.lockSite(siteID)
	defer h.unlockSite(s)
	t := s.widgets[group]
	if t == nil {
		now := h.cfg.Now()
		w, next := s.presence.WidgetAt(group, now)
		t = &widgetTopic{widget: w, next: next}
		t.status, t.frame = widgetFrame(siteID, group, w, next, now)
		s.widgets[group] = t
	}
	t.subs.add(sub)
	h.widgetSubs.Add(1)
	h.registerLocked(s, sub, func() {
		t.subs.remove(sub)
		h.widgetSubs.Add(-1)
		if t.subs.len() == 0 && s.widgets[group] == t {
			delete(s.widgets, group)
		}
	})
	h.enqueueLocked(s, t.frame, []Subscriber{sub})
	return func() { h.unregister(siteID, sub) }, nil
}

// WidgetStatus returns the current widget status of (site, group) from the
// view. At is when a local subscriber last saw it change, or now when no
// subscriber watches it.
func (h *Hub) WidgetStatus(siteID, group string) (WidgetStatus, error) {
	if !h.Ready() {
		return WidgetStatus{}, ErrNotReady
	}
	now := h.cfg.Now()
	s := h.lockExistingSite(siteID)
	if s == nil {
		ws, _ := widgetFrame(siteID, group, presence.NewSite().Widget(group), time.Time{}, now)
		return ws, nil
	}
	defer h.unlockSite(s)
	if t := s.widgets[group]; t != nil {
		return t.status, nil
	}
	w, next := s.presence.WidgetAt(group, now)
	ws, _ := widgetFrame(siteID, group, w, next, now)
	return ws, nil
}

// Settings returns the site's settings from the view.
func (h *Hub) Settings(siteID string) presence.Settings {
	s := h.lockExistingSite(siteID)
	if s == nil {
		return presence.Settings{}
	}
	defer h.unlockSite(s)
	return s.settings.Clone()
}

// Schedule returns the working hours of (site, group), group "" meaning the
// site's own, from the view.
func (h *Hub) Schedule(siteID, group string) (*presence.Schedule, bool) {
	s := h.lockExistingSite(siteID)
	if s == nil {
		return nil, false
	}
	defer h.unlockSite(s)
	return s.presence.Hours(group)
}

// equalSchedules reports whether two schedules say the same.
func equalSchedules(a, b *presence.Schedule) bool { return reflect.DeepEqual(a, b) }
