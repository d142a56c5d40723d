package hub

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The view: every site's state as the bucket says, each site behind a lock
// of its own, found through a registry sharded so that no lock spans every
// site. Applying a bucket entry locks its site only; what the entry changed
// is collected in the site's pending changes and turned into frames when
// the site is unlocked (see unlockSite), so a run of entries applied
// together (a reconcile) tells subscribers only where things ended up.

// view is the part of a Hub that holds every site's state as the bucket
// says, applies bucket entries to it (apply.go) and turns what they changed
// into frames (frames.go). Its methods run on the caller's goroutine, the
// watcher's for entries.
type view struct {
	h *Hub
	// sites is the view, one lock per site.
	sites *siteRegistry
}

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
	hoursSent protocol.Hours
	// activity is the agents' activity keys; activityWritten when this
	// replica last wrote each, so that a burst of activity writes once.
	activity        map[string]storedActivity
	activityWritten map[string]time.Time
	// settings are the site's settings and when NATS stored them; nil
	// while it has none, which most sites do (settingsLocked).
	settings *siteSettings
	// hoursAt is when NATS stored each schedule, by group.
	hoursAt map[string]time.Time
	// coverage is the widgets' coverage keys, by group (coverage.go).
	coverage map[string]*coverageState
	// registered holds, for every subscriber of the site, what unregisters
	// it.
	registered map[Subscriber][]func()
	// revs is the last revision applied of each key (revs.go).
	revs keyRevs
	// pending is what was applied but not yet told (nil when nothing
	// is); out is what was told but not yet sent.
	pending *pendingChanges
	out     outbox
}

// siteSettings are a site's settings as stored.
type siteSettings struct {
	rules presence.Settings
	at    time.Time // when NATS stored them
}

// settingsLocked returns the site's settings, the zero ones when it has
// none.
func (s *site) settingsLocked() presence.Settings {
	if s.settings == nil {
		return presence.Settings{}
	}
	return s.settings.rules
}

type storedAgent struct {
	rec store.AgentRecord
	rev uint64
}

type storedDevice struct {
	rec store.DeviceRecord
	// written is when the bucket stored the lease; a lease in grace is not
	// refreshed, so it runs out at written + grace (the agents API says so).
	written time.Time
}

// widgetTopic is one (site, group) widget with local subscribers: its last
// status and the frame that says it.
type widgetTopic struct {
	widget presence.Widget
	next   time.Time // next hours boundary; zero if none
	status protocol.WidgetStatus
	frame  *Frame
	subs   subscriberSet
}

// newSite returns an empty site. Its maps are made when first written
// (put): most sites of a partition's watch have agents and devices and
// nothing else, and an empty map costs its header.
func newSite(id string) *site {
	return &site{id: id, presence: presence.NewSite(), hoursSent: protocol.Hours{Open: true}}
}

// put sets m[k] to v, making the map first if it is nil.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}

// emptyLocked reports whether the site holds nothing any more, so that the
// view can forget it.
func (s *site) emptyLocked() bool {
	return s.presence.Empty() && len(s.agents) == 0 && len(s.devices) == 0 && len(s.activity) == 0 &&
		len(s.widgets) == 0 && s.roster.len() == 0 && len(s.local) == 0 &&
		len(s.timers) == 0 && s.settings == nil && len(s.registered) == 0 && len(s.coverage) == 0 &&
		s.pending.empty() && !s.out.busy()
}

// lockSite returns the site with id locked, creating it if the view has
// none. Release it with unlockSite.
func (v *view) lockSite(id string) *site {
	h := v.h
	for {
		s := h.view.sites.get(id, true)
		s.mu.Lock()
		if !s.removed {
			return s
		}
		s.mu.Unlock()
	}
}

// lockExistingSite returns the site with id locked, or nil when the view
// has none. Release it with unlockSite.
func (v *view) lockExistingSite(id string) *site {
	h := v.h
	for {
		s := h.view.sites.get(id, false)
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
func (v *view) unlockSite(s *site) {
	h := v.h
	h.view.flushLocked(s)
	start := s.out.startLocked()
	if !start && s.emptyLocked() {
		h.view.sites.removeLocked(s)
	}
	s.mu.Unlock()
	if start {
		go h.fanout.deliver(s)
	}
}

// viewKeys lists the bucket keys the view holds.
func (v *view) viewKeys() []string {
	var keys []string
	for _, s := range v.sites.all() {
		s.mu.Lock()
		keys = s.appendKeysLocked(keys)
		s.mu.Unlock()
	}
	return keys
}

// siteKeys lists the bucket keys the view holds of one site.
func (v *view) siteKeys(id string) []string {
	s := v.lockExistingSite(id)
	if s == nil {
		return nil
	}
	defer v.unlockSite(s)
	return s.appendKeysLocked(nil)
}

// appendKeysLocked appends the bucket keys the view holds of s.
func (s *site) appendKeysLocked(keys []string) []string {
	for agent := range s.agents {
		keys = append(keys, store.AgentKey(s.id, agent).String())
	}
	for key := range s.devices {
		keys = append(keys, key)
	}
	for _, group := range s.presence.HoursGroups() {
		keys = append(keys, store.HoursKey(s.id, group).String())
	}
	if s.settings != nil {
		keys = append(keys, store.SettingsKey(s.id).String())
	}
	for agent, a := range s.activity {
		if a.present {
			keys = append(keys, store.ActivityKey(s.id, agent).String())
		}
	}
	for group, c := range s.coverage {
		if c.uncovered != nil {
			keys = append(keys, store.CoverageKey(store.KindUncovered, s.id, group).String())
		}
		if c.lost != nil {
			keys = append(keys, store.CoverageKey(store.KindCoverageLost, s.id, group).String())
		}
	}
	return keys
}

// dropSite forgets a site this replica no longer follows, silently: it has
// no local subscriber (its interests ended), and what it held is not news.
func (v *view) dropSite(id string) {
	s := v.lockExistingSite(id)
	if s == nil {
		return
	}
	if len(s.registered) > 0 {
		v.unlockSite(s) // an interest came back meanwhile
		return
	}
	for group, ht := range s.timers {
		ht.t.Stop()
		delete(s.timers, group)
	}
	v.sites.removeLocked(s)
	s.mu.Unlock()
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

// current returns the highest revision marked.
func (a *applied) current() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rev
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
	release, err := h.visit(context.Background(), siteID)
	if err != nil {
		return nil, err
	}
	s := h.view.lockSite(siteID)
	defer h.view.unlockSite(s)
	t := s.widgets[group]
	if t == nil {
		now := h.cfg.Now()
		w, next := s.presence.WidgetAt(group, now)
		t = &widgetTopic{widget: w, next: next}
		t.status, t.frame = widgetFrame(siteID, group, w, next, now)
		put(&s.widgets, group, t)
	}
	t.subs.add(sub)
	h.widgetSubs.Add(1)
	h.fanout.registerLocked(s, sub, func() {
		t.subs.remove(sub)
		h.widgetSubs.Add(-1)
		if t.subs.len() == 0 && s.widgets[group] == t {
			delete(s.widgets, group)
		}
		release()
	})
	h.fanout.enqueueLocked(s, t.frame, []Subscriber{sub})
	return func() { h.fanout.unregister(siteID, sub) }, nil
}

// protocol.WidgetStatus returns the current widget status of (site, group) from the
// view. At is when a local subscriber last saw it change, or now when no
// subscriber watches it.
func (h *Hub) WidgetStatus(siteID, group string) (protocol.WidgetStatus, error) {
	release, err := h.visit(context.Background(), siteID)
	if err != nil {
		return protocol.WidgetStatus{}, err
	}
	defer release()
	now := h.cfg.Now()
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		ws, _ := widgetFrame(siteID, group, presence.NewSite().Widget(group), time.Time{}, now)
		return ws, nil
	}
	defer h.view.unlockSite(s)
	if t := s.widgets[group]; t != nil {
		return t.status, nil
	}
	w, next := s.presence.WidgetAt(group, now)
	ws, _ := widgetFrame(siteID, group, w, next, now)
	return ws, nil
}

// Settings returns the site's settings from the view.
func (h *Hub) Settings(siteID string) presence.Settings {
	if release, err := h.visit(context.Background(), siteID); err == nil {
		defer release()
	}
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		return presence.Settings{}
	}
	defer h.view.unlockSite(s)
	return s.settingsLocked().Clone()
}

// Schedule returns the working hours of (site, group), group "" meaning the
// site's own, from the view.
func (h *Hub) Schedule(siteID, group string) (*presence.Schedule, bool) {
	if release, err := h.visit(context.Background(), siteID); err == nil {
		defer release()
	}
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		return nil, false
	}
	defer h.view.unlockSite(s)
	return s.presence.Hours(group)
}

// equalSchedules reports whether two schedules say the same.
func equalSchedules(a, b *presence.Schedule) bool { return reflect.DeepEqual(a, b) }

// isLoaded reports whether the view has loaded once.
func (v *view) isLoaded() bool {
	h := v.h
	select {
	case <-h.loaded:
		return true
	default:
		return false
	}
}
