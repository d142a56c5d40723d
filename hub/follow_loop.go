package hub

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
)

// The follow loop: republished messages of the followed sites and their
// loads, applied in order on one goroutine. Core NATS may drop a message
// (a reconnect, a stream leader that changed before republishing, a
// subscriber too slow): every followed site is loaded again when the
// connection comes back or the bucket's stream elects a leader, and a site
// whose subscription dropped messages is loaded again at the next check.

// dropCheckEvery is how often the loop looks for subscriptions that
// dropped messages.
const dropCheckEvery = 2 * time.Second

// run is the follow loop; it marks the hub ready once it runs.
func (f *follows) run(ctx context.Context) error {
	h := f.h
	reconnected := h.nc.StatusChanged(nats.CONNECTED)
	defer h.nc.RemoveStatusListener(reconnected)
	elected := make(chan *nats.Msg, 16)
	for _, s := range h.store.All() {
		if sub, err := h.nc.ChanSubscribe(s.LeaderElectedSubject(), elected); err == nil {
			defer sub.Unsubscribe()
		}
	}
	check := time.NewTicker(dropCheckEvery)
	defer check.Stop()
	h.markLoaded()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-f.msgs:
			f.receive(m)
		case r := <-f.loads:
			f.finishLoad(ctx, r)
		case <-reconnected:
			f.reloadAll("NATS connection re-established")
		case <-elected:
			f.reloadAll("the bucket's stream elected a leader")
		case <-check.C:
			f.checkDropped()
		case <-f.rewatch:
			f.onRewatch()
		}
	}
}

// receive applies one republished message, or keeps it while its site
// loads.
func (f *follows) receive(m *nats.Msg) {
	h := f.h
	e, ok := h.store.Republished(m)
	if !ok {
		return
	}
	k, ok := store.ParseKey(e.Key)
	if !ok {
		return
	}
	fl := f.get(k.Site)
	if fl == nil {
		return // unfollowed meanwhile
	}
	if fl.loading {
		fl.buffered = append(fl.buffered, e)
		return
	}
	f.applyLive(k, e)
}

// applyLive applies a live entry of a followed site and publishes its
// events.
func (f *follows) applyLive(k store.Key, e *store.Entry) {
	h := f.h
	defer f.mark(k.Site, e.Rev)
	if k.Kind == store.KindIndex {
		return
	}
	ent := bucketEntry(e)
	ent.live = true
	h.applyLive(k, ent)
}

// finishLoad applies a site's load: the view of the site is reconciled
// with it, then the messages that came meanwhile are applied.
func (f *follows) finishLoad(ctx context.Context, r loadResult) {
	fl := r.f
	if f.get(fl.site) != fl {
		return // unfollowed meanwhile
	}
	last := f.reconcileSite(ctx, fl.site, r.entries)
	buffered := fl.buffered
	fl.buffered, fl.loading = nil, false
	slices.SortStableFunc(buffered, func(a, b *store.Entry) int { return cmp.Compare(a.Rev, b.Rev) })
	for _, e := range buffered {
		if k, ok := store.ParseKey(e.Key); ok {
			f.applyLive(k, e)
		}
	}
	fl.applied.mark(last)
	fl.loadOnce.Do(func() { close(fl.loaded) })
}

// onRewatch follows the whole-bucket watch of a partition starting or
// stopping: while it runs, it applies the entries of the partition's
// followed sites (it loaded them, or loads them), so their follows need no
// subscription; once it stopped, each subscribes and loads its site again.
func (f *follows) onRewatch() {
	for _, fl := range f.all() {
		if !f.isWatched(fl.site) {
			f.mu.Lock()
			unsubscribed := fl.subs == nil
			f.mu.Unlock()
			if unsubscribed {
				f.reload(fl) // its partition's watch stopped
			}
			continue
		}
		// The watch loads the site, unless it has (the follow may be
		// newer than its read of the bucket); if it cannot take the
		// request, the follow goes on on its own. The follow's own load,
		// if one is under way, changes nothing when it comes.
		if !f.h.duty.requestLoad(fl.site) {
			continue
		}
		fl.loading, fl.buffered = false, nil
		for _, sub := range f.setSubs(fl, nil) {
			_ = sub.Unsubscribe()
		}
	}
}

// reloadAll loads every followed site again.
func (f *follows) reloadAll(why string) {
	var sites []*follow
	for _, fl := range f.all() {
		// A whole-bucket watch reads its bucket again itself.
		if !f.isWatched(fl.site) {
			sites = append(sites, fl)
		}
	}
	if len(sites) > 0 {
		f.h.log.Info("reloading followed sites", "sites", len(sites), "reason", why)
	}
	for _, fl := range sites {
		f.reload(fl)
	}
}

// reload loads fl's site again, keeping messages meanwhile; a site whose
// subscription failed subscribes again first.
func (f *follows) reload(fl *follow) {
	if fl.loading {
		return // a load is under way; it reads after the messages lost
	}
	f.mu.Lock()
	resubscribe := fl.subs == nil
	f.mu.Unlock()
	if resubscribe {
		if subs, err := f.h.store.For(fl.site).SubscribeSite(fl.site, f.msgs); err == nil && !f.attach(fl, subs) {
			for _, sub := range subs {
				_ = sub.Unsubscribe()
			}
			return // unfollowed meanwhile
		}
	}
	fl.loading = true
	f.load(fl)
}

// checkDropped reloads the sites whose subscriptions dropped messages
// since the last check.
func (f *follows) checkDropped() {
	for _, fl := range f.all() {
		if f.isWatched(fl.site) {
			continue
		}
		f.mu.Lock()
		subs := fl.subs
		f.mu.Unlock()
		dropped := 0
		for _, sub := range subs {
			if n, err := sub.Dropped(); err == nil {
				dropped += n
			}
		}
		if subs == nil || dropped != fl.dropped {
			fl.dropped = dropped
			f.h.metrics.watchMissed.Inc()
			f.reload(fl)
		}
	}
}

// reconcileSite makes the view of one site equal to a load of it, as
// reconcile does for the whole bucket, and returns the highest revision
// of the load. Entries newer than what the view applied of the site
// publish their events where that is unambiguous (resyncEvents).
func (f *follows) reconcileSite(ctx context.Context, siteID string, entries []*store.Entry) uint64 {
	h := f.h
	fl := h.follows.get(siteID)
	var since uint64
	if fl != nil {
		since = fl.applied.current()
	}
	loaded := since > 0
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.Key] = true
	}
	var es []entry
	for _, key := range h.view.siteKeys(siteID) {
		if have[key] {
			continue
		}
		k, _ := store.ParseKey(key)
		if has, err := h.hasMessage(ctx, k); err != nil || has {
			continue // a key rewritten meanwhile comes next; when unsure, the next load decides
		}
		es = append(es, entry{key: key, deleted: true})
	}
	slices.SortFunc(entries, func(a, b *store.Entry) int { return cmp.Compare(a.Rev, b.Rev) })
	var last uint64
	for _, e := range entries {
		if k, ok := store.ParseKey(e.Key); ok && k.Kind != store.KindIndex {
			es = append(es, bucketEntry(e))
		}
		last = max(last, e.Rev)
	}
	var evs []events.Event
	part := h.store.PartitionOf(siteID)
	withEvents := h.derivesEvents(part)
	s := h.view.lockSite(siteID)
	for _, e := range es {
		k, _ := store.ParseKey(e.key)
		news := withEvents && h.resyncEvents(e, since, loaded)
		rec, ok := h.view.applyEntryLocked(s, k, e, news)
		if ok && news {
			evs = append(evs, events.Derive(rec, h.cfg.Grace)...)
		}
	}
	h.view.unlockSite(s)
	h.publishEvents(part, last, evs)
	return last
}
