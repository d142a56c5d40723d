package hub

import (
	"context"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// Duties cost per event, not per site held. The owner of a partition reads
// every entry of the partition's bucket, but holds (keeps in its view) only
// the sites that something here follows and the sites a duty needs now:
//
//   - a lease that was written dropped, whose expiry is an event to derive
//     (grace_expired) for which the lease before it is needed;
//   - an uncovered key, whose expiry is the uncovered alert (or the marker
//     of one that expired while nobody held the site);
//   - working hours, whose boundaries (sign-off, the widget's status) are
//     timed from the view;
//   - an agent online without an activity key on a site with the idle rule
//     on, whose clock must be started again, and, once, every site with the
//     uncovered alert on, whose widgets' coverage is checked (the load's
//     catch-up: a widget left uncovered while nobody held the site gets
//     its alert).
//
// An activity key that expires on a site not held loads the site there and
// then (the idle rule reads the bucket, not the view). Every other entry of
// a site not held changes nothing here: the replicas that hold the site
// (its clients', or a request's) apply it and publish its events. A site
// held for a duty is let go once nothing needs it (sweepHolds).

// newWatcher returns the watch of partition.
func newWatcher(h *Hub, partition int) *watcher {
	return &watcher{h: h, part: partition, store: h.store.Partition(partition), applied: applied{ch: make(chan struct{})},
		held: make(map[string]bool), inView: make(map[string]bool), loadReq: make(chan string, loadReqBuffer)}
}

// loadReqBuffer bounds the follows waiting for the watch to load their
// site; more load it themselves.
const loadReqBuffer = 1024

// holds reports whether the watch applies entries of site: it is in the
// view for a follow or held for a duty. A hub whose Run has not started (a
// test that feeds the view by hand) holds what it is given. Called on the
// watch's goroutine.
func (w *watcher) holds(site string) bool {
	return w.inView[site] || w.h.follows.ctx == nil
}

// loadReqs returns the channel of load requests, or nil while the watch
// reads its snapshot (requests wait until it is applied).
func loadReqs(w *watcher, loading bool) <-chan string {
	if loading {
		return nil
	}
	return w.loadReq
}

// loadFollowed loads a site a follow asked for (follows.acquire), in order
// with the entries the watch reads: entries before the load are in it, and
// entries after are applied. A load that fails is asked again later.
func (w *watcher) loadFollowed(ctx context.Context, site string) {
	h := w.h
	if !w.inView[site] {
		entries, err := w.store.LoadSite(ctx, site)
		if err != nil {
			h.log.Warn("failed to load a followed site; retrying", "site", site, "err", err)
			go func() {
				if sleep(ctx, time.Second) {
					select {
					case w.loadReq <- site:
					case <-ctx.Done():
					}
				}
			}()
			return
		}
		h.follows.mark(site, h.follows.reconcileSite(ctx, site, entries))
		w.inView[site] = true
	}
	h.follows.markLoaded(site)
}

// dutyNeedsLocked reports whether a site the view holds still needs its
// partition's owner to hold it (see above), apart from the idle catch-up,
// which needs it once.
func dutyNeedsLocked(s *site) bool {
	for _, d := range s.devices {
		if !d.rec.Held() {
			return true
		}
	}
	for _, c := range s.coverage {
		if c.uncovered != nil {
			return true
		}
	}
	return len(s.presence.HoursGroups()) > 0
}

// dutyNeedsEntries reports whether a site whose keys are entries needs its
// partition's owner to hold it (see above).
func dutyNeedsEntries(entries []entry) bool {
	var idleOn bool
	online := make(map[string]bool)   // agents whose record says online
	live := make(map[string]bool)     // agents with a lease
	activity := make(map[string]bool) // agents with an activity key
	for _, e := range entries {
		k, _ := store.ParseKey(e.key)
		if k.Kind == store.KindUncovered && (!e.deleted || !e.at.IsZero()) {
			return true // an alert due, or one that came while nobody held the site
		}
		if e.deleted {
			continue
		}
		switch k.Kind {
		case store.KindLease:
			rec, err := store.DecodeDeviceRecord(e.value)
			if err == nil && !rec.Held() {
				return true
			}
			live[k.Agent] = true
		case store.KindHours:
			return true
		case store.KindSettings:
			settings, err := decodeSettings(e.value)
			if err == nil && settings.UncoveredAfter() > 0 {
				return true // the load's coverage check (catch-up) runs there
			}
			if err == nil {
				idleOn = settings.IdleAfter() > 0
			}
		case store.KindAgent:
			if rec, err := store.DecodeAgentRecord(e.value); err == nil && rec.Status == presence.Online {
				online[k.Agent] = true
			}
		case store.KindActivity:
			activity[k.Agent] = true
		}
	}
	if idleOn {
		for agent := range online {
			if live[agent] && !activity[agent] {
				return true
			}
		}
	}
	return false
}

// trigger reports whether entry e of a site the watch does not hold makes
// a duty of it: the lease written dropped, an uncovered key or working
// hours written, or an activity key that expired.
func trigger(k store.Key, e entry) bool {
	switch k.Kind {
	case store.KindLease:
		if e.deleted {
			return false
		}
		rec, err := store.DecodeDeviceRecord(e.value)
		return err == nil && !rec.Held()
	case store.KindHours:
		return !e.deleted
	case store.KindUncovered:
		return !e.deleted || !e.at.IsZero()
	case store.KindActivity:
		return e.deleted && !e.at.IsZero()
	}
	return false
}

// hold loads a site of the partition the watch did not hold, and holds
// it for its duties. The load reads after e was stored, so e itself is in
// it, or gone; an activity key's expiry is carried out from the bucket.
func (w *watcher) hold(ctx context.Context, k store.Key, e entry) {
	h := w.h
	entries, err := w.store.LoadSite(ctx, k.Site)
	if err != nil {
		h.log.Warn("failed to load a site for its duties", "site", k.Site, "err", err)
		return
	}
	w.held[k.Site], w.inView[k.Site] = true, true
	h.follows.reconcileSite(ctx, k.Site, entries)
	if k.Kind == store.KindActivity && e.deleted {
		if s := h.view.lockExistingSite(k.Site); s != nil {
			if s.settings.IdleAfter() > 0 {
				h.rules.worker.enqueue(ruleKey{ruleIdleDeadline, k.Site, k.Agent}, idleDeadlineJob{h, k.Site, k.Agent, e.rev})
			}
			h.view.unlockSite(s)
		}
	}
}

// letGoIfDone lets go of a site held for a duty once the duty is done (its
// dropped leases ran out, its alert came, ...), unless it is followed.
func (w *watcher) letGoIfDone(site string) {
	h := w.h
	if !w.held[site] || h.follows.get(site) != nil {
		return
	}
	s := h.view.lockExistingSite(site)
	if s == nil {
		delete(w.held, site)
		return
	}
	needed := dutyNeedsLocked(s)
	h.view.unlockSite(s)
	if !needed {
		delete(w.held, site)
		delete(w.inView, site)
		h.view.dropSite(site)
	}
}

// holdSweepEvery is how often the watch lets go of sites no duty needs.
const holdSweepEvery = 30 * time.Second

// sweepHolds lets go of the sites held for a duty that nothing needs any
// more, and drops from the view the sites of the partition neither held
// nor followed (a site unfollowed while the watch held its partition).
// Called on the watch's goroutine.
func (w *watcher) sweepHolds() {
	h := w.h
	for _, s := range h.view.sites.all() {
		if h.store.PartitionOf(s.id) != w.part || h.follows.get(s.id) != nil {
			continue
		}
		s.mu.Lock()
		needed := w.held[s.id] && dutyNeedsLocked(s)
		s.mu.Unlock()
		if !needed {
			delete(w.held, s.id)
			delete(w.inView, s.id)
			h.view.dropSite(s.id)
		}
	}
	for site := range w.inView {
		if h.view.sites.get(site, false) == nil && h.follows.get(site) == nil {
			delete(w.held, site) // gone, and nothing needs it
			delete(w.inView, site)
		}
	}
}
