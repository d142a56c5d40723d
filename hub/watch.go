package hub

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
)

// watcher is the watch loop of one partition's bucket, run while this
// replica owns the partition (duty.go): it keeps the view of every site of
// the partition in step with the bucket. Its fields are used only by its
// goroutine, but stopping and applied.
type watcher struct {
	h *Hub
	// part is the partition, store its bucket's.
	part  int
	store *store.Store
	// applied is the highest revision of the bucket the view applied.
	applied applied
	// inView are the sites of the partition in the view: every site with a
	// key once the watch loaded, and the followed sites it loaded
	// (loadFollowed); used by the watch's goroutine only.
	inView map[string]bool
	// loadReq takes the sites that follows ask the watch to load.
	loadReq chan string
	// missedLogged is when noteSkipped last logged, and missedUnlogged what
	// it counted since.
	missedLogged   time.Time
	missedUnlogged uint64
	// lastMissedResync is when the watch last re-read the bucket because
	// it missed revisions.
	lastMissedResync time.Time
	// stopping counts the old watches being stopped in the background.
	stopping sync.WaitGroup
	// loadedOnce is set once a watch loaded the bucket.
	loadedOnce bool
}

// The watch loop: one watch of the whole bucket, started again after every
// NATS reconnect, feeds the view. It runs on one goroutine (Run's watcher)
// and never sends to a subscriber itself: applying an entry locks its site
// only, and the site's delivery goroutine sends what it changed.

// watch keeps the view in step with the bucket. Each watch starts with a
// snapshot of the bucket that is reconciled with the view, so a view that
// missed updates (a NATS outage longer than the marker TTL loses the markers
// of leases that expired meanwhile) is corrected. A new watch starts whenever
// the NATS connection comes back or the watch ends.
func (w *watcher) run(ctx context.Context) error {
	h := w.h
	reconnected := h.nc.StatusChanged(nats.CONNECTED)
	defer h.nc.RemoveStatusListener(reconnected)
	for {
		err := w.once(ctx, reconnected)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.log.Warn("restarting bucket watch", "reason", err)
		if errors.Is(err, errReconnected) || errors.Is(err, errMissed) {
			continue // NATS answers: the new watch starts at once
		}
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

// errMissed ends a watch that skipped revisions: one of them may have been
// the marker of a removed or expired lease, which nothing else would tell
// the view, so it re-reads a snapshot.
var errMissed = errors.New("bucket watch missed revisions; re-reading the bucket")

// missedResyncEvery spaces out the snapshots taken because a watch missed
// revisions, so a replica that keeps running behind does not spend all its
// time re-reading the bucket.
const missedResyncEvery = 2 * time.Second

func (w *watcher) once(ctx context.Context, reconnected <-chan nats.Status) error {
	h := w.h
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := time.Now()
	kw, err := w.store.WatchEveryMessage(ctx, h.cfg.WatchPendingBytes)
	if err != nil {
		return err
	}
	// Stopping a watch deletes its consumer, which waits out a JetStream
	// timeout when the server that held it has gone away; the next watch
	// must not wait for that.
	defer w.stopping.Go(func() { kw.Stop() })
	snapshot := make(map[string]*store.Entry)
	loading := true
	var lastLive uint64         // revision of the last entry read after loading
	var resync <-chan time.Time // fires when a snapshot for missed revisions is due
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-reconnected:
			return errReconnected
		case site := <-loadReqs(w, loading):
			w.loadFollowed(ctx, site)
		case <-resync:
			w.lastMissedResync = time.Now()
			return errMissed
		case e, ok := <-kw.Updates():
			switch {
			case !ok:
				return errors.New("bucket watch ended")
			case loading && e != nil:
				snapshot[e.Key] = e
			case loading:
				loading = false
				removed, unsure := w.reconcile(ctx, snapshot)
				if unsure && resync == nil {
					resync = time.After(missedResyncEvery)
				}
				entries := len(snapshot)
				snapshot = nil
				h.duty.setLoaded(w)
				first := !w.loadedOnce
				w.loadedOnce = true
				if first {
					h.log.Info("whole-bucket watch loaded", "entries", entries)
				}
				// An activity key that expired while this replica did
				// not watch left no marker it saw: restart those clocks.
				h.rules.startAllIdleClocks()
				// Likewise a close that came while no replica watched.
				h.rules.catchUpSignOffs()
				if !first {
					// How long the view lagged behind the bucket after
					// the watch restarted (docs/operations.md quotes it).
					h.log.Info("view re-read the bucket", "took", time.Since(started).Round(time.Millisecond),
						"entries", entries, "removed", removed)
				}
			case e != nil:
				if g := h.watchGate.Load(); g != nil {
					<-*g
				}
				missed := w.noteSkipped(lastLive, e.Rev)
				lastLive = e.Rev
				w.apply(ctx, e)
				if missed && resync == nil {
					resync = time.After(time.Until(w.lastMissedResync.Add(missedResyncEvery)))
				}
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
// It reports whether revisions were missed.
func (w *watcher) noteSkipped(last, rev uint64) bool {
	h := w.h
	if last == 0 || rev <= last+1 {
		return false
	}
	missed := rev - last - 1
	h.metrics.watchMissed.Add(float64(missed))
	w.missedUnlogged += missed
	if now := time.Now(); now.Sub(w.missedLogged) >= missedLogEvery {
		h.log.Warn("bucket watch missed revisions: it runs behind", "missed", w.missedUnlogged, "since", w.missedLogged, "next", rev)
		w.missedLogged, w.missedUnlogged = now, 0
	}
	return true
}

const missedLogEvery = 10 * time.Second

// reconcile makes the view equal to a snapshot of the bucket: keys the view
// holds that the snapshot lacks are removed, then every snapshot entry is
// applied, in revision order. Each site is reconciled under its lock in one
// go, so its subscribers are told only where it ended up: a state the
// bucket passed through while this replica was away is never shown.
// Applying what the view already holds changes nothing, so only real
// differences produce frames.
// It returns how many keys of the view the snapshot lacked. With events on,
// entries the view never saw publish their events where that is
// unambiguous (resyncEvents).
//
// A key missing from the snapshot is removed only if the stream's leader
// holds no message for it now: a key rewritten while the snapshot was read
// is missing from it (the bucket keeps one message per key, and the old one
// was gone before the watch reached it), and its new message comes next on
// the watch, so removing it would flap a live lease offline and back. When
// the leader cannot tell (an election), the key is kept and unsure is
// true: the caller reads another snapshot soon.
func (w *watcher) reconcile(ctx context.Context, snapshot map[string]*store.Entry) (removed int, unsure bool) {
	h := w.h
	bySite := make(map[string][]entry)
	for _, key := range h.view.viewKeys() {
		if _, ok := snapshot[key]; !ok {
			k, _ := store.ParseKey(key)
			if h.store.PartitionOf(k.Site) != w.part {
				continue // another partition's: not in this bucket
			}
			has, err := h.hasMessage(ctx, k)
			if err != nil {
				h.log.Debug("failed to check a key missing from the snapshot; keeping it", "key", key, "err", err)
				unsure = true
				continue
			}
			if has {
				continue
			}
			removed++
			bySite[k.Site] = append(bySite[k.Site], entry{key: key, deleted: true})
		}
	}
	entries := make([]*store.Entry, 0, len(snapshot))
	for _, e := range snapshot {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *store.Entry) int { return cmp.Compare(a.Rev, b.Rev) })
	var last uint64
	siteRevs := make(map[string]uint64)
	for _, e := range entries {
		k, ok := store.ParseKey(e.Key)
		if !ok {
			h.log.Warn("ignoring unknown key in bucket", "key", e.Key)
			continue
		}
		last = max(last, e.Rev)
		if !h.store.Holds(w.store, e.Key) {
			continue // another partition's site: a migration's left-over
		}
		siteRevs[k.Site] = max(siteRevs[k.Site], e.Rev)
		if k.Kind == store.KindIndex {
			continue
		}
		bySite[k.Site] = append(bySite[k.Site], bucketEntry(e))
	}
	since, loaded := w.applied.current(), w.loadedOnce
	var evs []events.Event
	withEvents := h.derivesEvents(w.part) && !w.standbyCovers()
	var lastEvent uint64
	for id, es := range bySite {
		w.markInView(id)
		defer h.follows.markLoaded(id)
		s := h.view.lockSite(id)
		for _, e := range es {
			k, _ := store.ParseKey(e.key)
			news := withEvents && h.resyncEvents(e, since, loaded)
			if rec, ok := h.view.applyEntryLocked(s, k, e, news); ok && news {
				evs = append(evs, events.Derive(rec, h.cfg.Grace)...)
				lastEvent = max(lastEvent, e.rev)
			}
		}
		h.view.unlockSite(s)
	}
	// The followed sites of the partition are in the view now, those with
	// no key too: the snapshot is every key of the partition.
	for _, fl := range h.follows.all() {
		if h.store.PartitionOf(fl.site) == w.part && !w.inView[fl.site] {
			w.markInView(fl.site)
			h.follows.markLoaded(fl.site)
		}
	}
	for site, rev := range siteRevs {
		if w.inView[site] {
			h.follows.mark(site, rev)
		}
	}
	if len(evs) > 0 {
		// In revision order across sites, as a live watch publishes.
		slices.SortStableFunc(evs, func(a, b events.Event) int { return cmp.Compare(a.Rev, b.Rev) })
		h.publishEvents(w.part, lastEvent, evs)
	}
	w.applied.mark(last)
	return removed, unsure
}

// standbyCovers reports whether the events of what this watch missed are
// the standby's to publish: this replica owns the partition and another
// replica lives, which stands by for it and read every change this watch
// missed, in order; once this watch has re-read the bucket it announces
// the revision it loaded, and the standby publishes what it kept up to it
// (event_duty.go). The events a resync derives can say only the change
// from the last state this watch saw, so they are published only where no
// standby has the real ones: a replica alone.
func (w *watcher) standbyCovers() bool {
	h := w.h
	ev := h.duty.eventDuty(w.part)
	return ev != nil && ev.isOwner() && h.member != nil && len(h.member.Live()) > 1
}

// hasMessage reports whether the stream's leader holds a message for key
// now.
func (h *Hub) hasMessage(ctx context.Context, key store.Key) (bool, error) {
	m, err := h.store.For(key.Site).LastMessage(ctx, key)
	return m != nil, err
}

// apply folds one bucket entry into the view.
func (w *watcher) apply(ctx context.Context, e *store.Entry) {
	h := w.h
	defer w.applied.mark(e.Rev)
	k, ok := store.ParseKey(e.Key)
	if !ok {
		h.log.Warn("ignoring unknown key in bucket", "key", e.Key)
		return
	}
	if !h.store.Holds(w.store, e.Key) {
		return // another partition's site: a migration's left-over
	}
	ent := bucketEntry(e)
	ent.live = true
	// A site of the partition the view lacks had no key when the watch
	// loaded: this is its first.
	w.markInView(k.Site)
	defer h.follows.mark(k.Site, e.Rev)
	if k.Kind == store.KindIndex {
		return
	}
	h.applyLive(k, ent)
}

// applyLive folds one live bucket entry into the view and, where this
// replica has the partition's event duty (event_duty.go), publishes or
// keeps the events it caused, after the site is unlocked, in the watch's
// order, asynchronously.
func (h *Hub) applyLive(k store.Key, e entry) {
	part := h.store.PartitionOf(k.Site)
	withEvents := h.derivesEvents(part)
	s := h.view.lockSite(k.Site)
	rec, ok := h.view.applyEntryLocked(s, k, e, withEvents)
	h.view.unlockSite(s)
	if ok && withEvents {
		h.publishEvents(part, e.rev, events.Derive(rec, h.cfg.Grace))
	}
}

// resyncEventAge bounds how old an entry first seen in a resync may be for
// the resync to publish its events: young enough that another replica's
// copy, published live, is still inside the stream's duplicate window.
const resyncEventAge = events.MaxRetryAge

// resyncEvents reports whether a reconcile publishes events for entry e: the
// view has loaded before (a first load reports nothing: it is not news), e
// is newer than anything the view applied (a change it never saw, not one
// it may have reported), it has a revision and time (a removal found only
// by absence has neither, so no deterministic id), and it is young (see
// resyncEventAge). Entries of one site are applied in revision order, as a
// live watch would, so what an event says is the change from the last state
// this replica saw; revisions of the same key replaced before the snapshot
// was read are not guessed at.
func (h *Hub) resyncEvents(e entry, since uint64, loaded bool) bool {
	return h.events != nil && loaded && e.rev > since && !e.at.IsZero() && h.cfg.Now().Sub(e.at) < resyncEventAge
}

func bucketEntry(e *store.Entry) entry {
	return entry{key: e.Key, rev: e.Rev, value: e.Value, deleted: e.Deleted, at: e.Created}
}
