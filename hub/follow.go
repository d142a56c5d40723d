package hub

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/hub/store"
)

// Following sites by interest: a replica holds and follows a site's state
// only while something here needs it: a local client of the site (a device
// session, a widget, an admin socket) or a request about it (the status
// endpoint, the agents API, an admin write), which loads it on demand. A
// site's first interest subscribes to the site's republished keys (core
// NATS, no JetStream consumer) and reads the site's keys once; the site is
// unfollowed Config.FollowLinger after its last interest ends.
//
// A replica watches the whole bucket of each partition it owns (duty.go);
// once that watch has loaded, the follows of the partition's sites drop
// their subscriptions and only count interest and wait on revisions: the
// view holds every site of it. When the replica stops owning it, each of
// them subscribes and loads its site again.

// follows is the part of a Hub that follows sites by interest. Its loop
// runs on one goroutine (Run's follower): it applies the republished
// messages and the sites' loads in order; loads run on goroutines of their
// own, at most loadConcurrency at once.
type follows struct {
	h *Hub
	// mu guards sites and the fields of each follow marked so; it is held
	// only to look up, count and add, never across a NATS call.
	mu    sync.Mutex
	sites map[string]*follow // guarded by mu
	nsubs int                // guarded by mu: follows with subscriptions
	// msgs receives every site subscription's messages; loads the
	// finished loads.
	msgs  chan *nats.Msg
	loads chan loadResult
	sem   chan struct{}
	// ctx is Run's, for loads; set before the loop starts.
	ctx context.Context
	// watched holds the partitions whose whole-bucket watch holds every
	// site now; guarded by mu. A change of it is told to the loop through
	// rewatch.
	watched map[int]bool
	rewatch chan struct{}
}

// loadConcurrency bounds the site loads in flight at once.
const loadConcurrency = 16

// msgBuffer is how many republished messages wait for the loop before
// NATS drops them (a drop makes the sites reload).
const msgBuffer = 1 << 16

// follow is one followed site.
type follow struct {
	site string
	refs int         // guarded by follows.mu
	idle *time.Timer // guarded by follows.mu; the unfollow once refs is 0
	// subs are the site's subscriptions; guarded by follows.mu.
	subs []*nats.Subscription
	// dropped is what the subscriptions had dropped at the last check;
	// used by the loop only.
	dropped int
	// loaded is closed once the site's first load is applied.
	loaded   chan struct{}
	loadOnce sync.Once
	// applied is the highest revision of the site this view applied.
	applied applied

	// Used by the loop only: while loading, messages wait in buffered.
	loading  bool
	buffered []*store.Entry
}

type loadResult struct {
	f       *follow
	entries []*store.Entry
}

func newFollows(h *Hub) follows {
	return follows{h: h, sites: make(map[string]*follow), msgs: make(chan *nats.Msg, msgBuffer),
		loads: make(chan loadResult), sem: make(chan struct{}, loadConcurrency),
		watched: make(map[int]bool), rewatch: make(chan struct{}, 1)}
}

// acquire registers an interest in site and waits until the view holds it;
// the returned func ends the interest.
//
// A hub whose Run has not started (a test that feeds the view by hand)
// follows nothing: the view holds what it was given.
func (f *follows) acquire(ctx context.Context, site string) (release func(), err error) {
	if f.ctx == nil {
		return func() {}, nil
	}
	f.mu.Lock()
	fl := f.sites[site]
	created := fl == nil
	watched := f.watched[f.h.store.PartitionOf(site)]
	if created {
		fl = &follow{site: site, loaded: make(chan struct{}), applied: applied{ch: make(chan struct{})}, loading: !watched}
		f.sites[site] = fl
	}
	fl.refs++
	if fl.idle != nil {
		fl.idle.Stop()
		fl.idle = nil
	}
	f.mu.Unlock()
	switch {
	case created && watched && f.h.duty.requestLoad(site):
		// The partition's watch loads the site, in order with what it
		// reads (markLoaded); no subscription is needed.
	case created && watched:
		f.mu.Lock()
		fl.loading = true
		f.mu.Unlock()
		f.start(fl)
	case created:
		f.start(fl)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.release(fl) }) }
	select {
	case <-fl.loaded:
		return release, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// release ends one interest in fl's site.
func (f *follows) release(fl *follow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl.refs--
	if fl.refs > 0 || f.sites[fl.site] != fl {
		return
	}
	fl.idle = time.AfterFunc(f.h.cfg.FollowLinger, func() { f.unfollow(fl) })
}

// start subscribes to fl's site and loads it.
func (f *follows) start(fl *follow) {
	subs, err := f.h.store.For(fl.site).SubscribeSite(fl.site, f.msgs)
	if err != nil {
		f.h.log.Warn("failed to follow a site; retrying", "site", fl.site, "err", err)
	}
	if !f.attach(fl, subs) {
		// Unfollowed while it subscribed: a very short linger.
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		return
	}
	f.load(fl)
}

// load reads fl's site on a goroutine of its own and hands the entries to
// the loop, retrying while NATS cannot answer.
func (f *follows) load(fl *follow) {
	ctx := f.ctx
	go func() {
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			select {
			case f.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			entries, err := f.h.store.For(fl.site).LoadSite(ctx, fl.site)
			<-f.sem
			if err == nil {
				select {
				case f.loads <- loadResult{f: fl, entries: entries}:
				case <-ctx.Done():
				}
				return
			}
			if ctx.Err() != nil || f.gone(fl) {
				return
			}
			f.h.log.Warn("failed to load a site; retrying", "site", fl.site, "err", err)
			if !sleep(ctx, wait) {
				return
			}
		}
	}()
}

// gone reports whether fl was unfollowed.
func (f *follows) gone(fl *follow) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sites[fl.site] != fl
}

// unfollow stops following fl's site if nothing took an interest in it
// since its last one ended, and drops it from the view unless the whole
// bucket is watched.
func (f *follows) unfollow(fl *follow) {
	f.mu.Lock()
	if fl.refs > 0 || f.sites[fl.site] != fl {
		f.mu.Unlock()
		return
	}
	delete(f.sites, fl.site)
	f.mu.Unlock()
	subs := f.setSubs(fl, nil)
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	if !f.h.duty.watching(f.h.store.PartitionOf(fl.site)) {
		f.h.view.dropSite(fl.site)
	}
}

// markLoaded closes the loaded channel of site's follow, which the
// partition's watch has loaded into the view.
func (f *follows) markLoaded(site string) {
	if fl := f.get(site); fl != nil {
		fl.loadOnce.Do(func() { close(fl.loaded) })
	}
}

// setWatched tells the loop whether the whole-bucket watch of partition
// holds every site of it now.
func (f *follows) setWatched(partition int, watched bool) {
	f.mu.Lock()
	was := f.watched[partition]
	if watched {
		f.watched[partition] = true
	} else {
		delete(f.watched, partition)
	}
	f.mu.Unlock()
	if was == watched {
		return
	}
	select {
	case f.rewatch <- struct{}{}:
	default: // one is pending; the loop reads the flag then
	}
}

// isWatched reports whether the whole-bucket watch of site's partition
// holds it now.
func (f *follows) isWatched(site string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watched[f.h.store.PartitionOf(site)]
}

// get returns the follow of site, or nil.
func (f *follows) get(site string) *follow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sites[site]
}

// all returns every follow now.
func (f *follows) all() []*follow {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*follow, 0, len(f.sites))
	for _, fl := range f.sites {
		out = append(out, fl)
	}
	return out
}

// attach sets the subscriptions of fl, unless it was unfollowed.
func (f *follows) attach(fl *follow, subs []*nats.Subscription) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sites[fl.site] != fl {
		return false
	}
	f.setSubsLocked(fl, subs)
	return true
}

// setSubs sets fl's subscriptions and returns those it had.
func (f *follows) setSubs(fl *follow, subs []*nats.Subscription) []*nats.Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.setSubsLocked(fl, subs)
}

// setSubsLocked is setSubs with f.mu held.
func (f *follows) setSubsLocked(fl *follow, subs []*nats.Subscription) []*nats.Subscription {
	old := fl.subs
	fl.subs = subs
	switch {
	case old == nil && subs != nil:
		f.nsubs++
	case old != nil && subs == nil:
		f.nsubs--
	}
	return old
}

// subscribed returns how many followed sites have subscriptions now.
func (f *follows) subscribed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nsubs
}

// count returns how many sites are followed.
func (f *follows) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sites)
}

// mark records that the view applied revision rev of site.
func (f *follows) mark(site string, rev uint64) {
	if fl := f.get(site); fl != nil {
		fl.applied.mark(rev)
	}
}

// waitApplied waits until the view has applied revision rev of site. A
// site the replica does not follow it holds only while it watches the
// whole bucket (the duties), or not at all: then there is nothing to wait
// for.
func (f *follows) waitApplied(ctx context.Context, site string, rev uint64) error {
	if fl := f.get(site); fl != nil {
		return fl.applied.wait(ctx, rev)
	}
	if w := f.h.duty.watcher(f.h.store.PartitionOf(site)); w != nil {
		return w.applied.wait(ctx, rev)
	}
	return nil
}
