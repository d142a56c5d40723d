package hub

import (
	"context"
	"strings"
	"time"
)

// A partition's watch holds every site of the partition that has a key:
// the replica that runs it, the partition's owner or its standby, derives
// the events of every change (event_duty.go), and an event needs the state
// before the change, the site's other agents and devices included, which
// nothing but a view kept in step can give (the bucket keeps one revision
// per key). The duties (the idle rule, sign-off, the alert, the events of a
// grace that ran out) read the same view. So a replica's cost is the sites
// of its own clients plus the partitions it owns or stands by for: about
// 2/replicas of the world with enough partitions (docs/scaling.md).

// newWatcher returns the watch of partition.
func newWatcher(h *Hub, partition int) *watcher {
	return &watcher{h: h, part: partition, store: h.store.Partition(partition), applied: applied{ch: make(chan struct{})},
		inView: make(map[string]bool), loadReq: make(chan string, loadReqBuffer)}
}

// markInView records that site is in the view. The map keeps a copy of
// the id: site is usually part of a bucket key, which a map key would keep
// whole, and assigning to a key present replaces the key.
func (w *watcher) markInView(site string) {
	if !w.inView[site] {
		w.inView[strings.Clone(site)] = true
	}
}

// loadReqBuffer bounds the follows waiting for the watch to load their
// site; more load it themselves.
const loadReqBuffer = 1024

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
		w.markInView(site)
	}
	h.follows.markLoaded(site)
}
