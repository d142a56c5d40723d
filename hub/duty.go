package hub

import (
	"context"
	"sync"
)

// The duties: what must happen when no replica has a client of a site (the
// events of a grace that ran out after its replica died, the idle rule,
// sign-off at closing time, the uncovered alert) is done, for each
// partition of sites, by the replica that owns it (package cluster:
// compare-and-set and a TTL in NATS, so that a dead owner's partitions move
// to the survivors within the liveness TTL, rebalanced as replicas come and
// go), together with the events of every change of the partition. The
// owner watches the partition's whole bucket and holds every site of it
// (watch_sites.go), and so does the partition's standby, which keeps the
// events the owner publishes until ownership moves (event_duty.go); the
// other replicas follow only the sites they serve. The rules' writes are
// compare-and-sets, so a rule carried out by the owner and the standby, or
// twice while ownership moves, takes effect once.

// duty is the part of a Hub that runs the whole-bucket watch of each
// partition the replica owns or stands by for (event_duty.go). acquire,
// release, standBy and announced are called by the cluster member's
// goroutine; each watch runs on a goroutine of its own.
type duty struct {
	h *Hub
	// ctx is Run's; set before the member runs.
	ctx context.Context

	mu       sync.Mutex
	watchers map[int]*partitionWatch // guarded by mu
	// standby are the partitions this replica stands by for. Guarded by
	// mu.
	standby map[int]bool
}

// partitionWatch is the whole-bucket watch of one partition owned or
// stood by for.
type partitionWatch struct {
	w      *watcher
	cancel context.CancelFunc
	done   chan struct{} // closed when the watch ends
	loaded bool          // guarded by duty.mu: it has loaded the bucket
	// ev publishes the partition's events as its owner, or keeps them as
	// its standby.
	ev eventDuty
}

// acquire starts the whole-bucket watch of partition, or makes the
// standby's watch the owner's.
func (d *duty) acquire(partition int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.standby, partition) // owning it ends standing by for it
	if pw := d.watchers[partition]; pw != nil {
		d.h.log.Info("this replica owns a partition it stood by for", "partition", partition)
		pw.ev.promote(d.h)
		if pw.loaded && pw.w != nil {
			d.h.announceLoaded(partition, pw.w.applied.current())
		}
		return
	}
	d.startLocked(partition, true)
}

// startLocked starts the whole-bucket watch of partition, as its owner or
// its standby.
func (d *duty) startLocked(partition int, owner bool) {
	h := d.h
	if d.watchers == nil {
		d.watchers = make(map[int]*partitionWatch)
	}
	ctx, cancel := context.WithCancel(d.ctx)
	w := newWatcher(h, partition)
	pw := &partitionWatch{w: w, cancel: cancel, done: make(chan struct{})}
	pw.ev.owner = owner
	d.watchers[partition] = pw
	role := "owns"
	if !owner {
		role = "stands by for"
	}
	h.log.Info("this replica "+role+" a partition: watching its whole bucket", "partition", partition, "bucket", w.store.Bucket())
	go func() {
		defer close(pw.done)
		_ = w.run(ctx)
	}()
}

// release stops the whole-bucket watch of partition, unless this replica
// stands by for it now, and then drops from the view every site of it this
// replica has no interest in.
func (d *duty) release(partition int) {
	h := d.h
	d.mu.Lock()
	pw := d.watchers[partition]
	if pw != nil && d.standby[partition] {
		pw.ev.demote()
		d.mu.Unlock()
		h.log.Info("this replica no longer owns a partition: it stands by for it", "partition", partition)
		return
	}
	d.mu.Unlock()
	d.stopPartition(partition)
	for _, s := range h.view.sites.all() {
		if h.store.PartitionOf(s.id) == partition && h.follows.get(s.id) == nil {
			h.view.dropSite(s.id)
		}
	}
}

// standBy starts or stops standing by for partition.
func (d *duty) standBy(partition int, standby bool) {
	d.mu.Lock()
	if d.standby == nil {
		d.standby = make(map[int]bool)
	}
	if standby {
		d.standby[partition] = true
		if d.watchers[partition] == nil {
			d.startLocked(partition, false)
		}
		d.mu.Unlock()
		return
	}
	delete(d.standby, partition)
	pw := d.watchers[partition]
	owner := pw != nil && pw.ev.isOwner()
	d.mu.Unlock()
	if pw != nil && !owner {
		d.release(partition)
	}
}

// announced takes another replica's announcement that, as partition's
// owner, it loaded the partition up to rev.
func (d *duty) announced(partition int, id string, rev uint64) {
	if id == d.h.memberID {
		return
	}
	if ev := d.eventDuty(partition); ev != nil {
		ev.announced(d.h, rev)
	}
}

// eventDuty returns partition's share of the event duty while this replica
// watches it, nil otherwise.
func (d *duty) eventDuty(partition int) *eventDuty {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pw := d.watchers[partition]; pw != nil {
		return &pw.ev
	}
	return nil
}

// stopPartition ends partition's watch and waits for it.
func (d *duty) stopPartition(partition int) {
	d.mu.Lock()
	pw := d.watchers[partition]
	delete(d.watchers, partition)
	d.mu.Unlock()
	if pw == nil {
		return
	}
	d.h.log.Info("this replica no longer owns a partition", "partition", partition)
	pw.cancel()
	<-pw.done
	pw.w.stopping.Wait()
	d.h.follows.setWatched(partition, false)
}

// stop ends every watch; Run calls it when it ends.
func (d *duty) stop() {
	d.mu.Lock()
	var parts []int
	for p := range d.watchers {
		parts = append(parts, p)
	}
	d.mu.Unlock()
	for _, p := range parts {
		d.stopPartition(p)
	}
}

// setLoaded records that w's watch has loaded its bucket: the view holds
// every site of its partition.
func (d *duty) setLoaded(w *watcher) {
	d.mu.Lock()
	pw := d.watchers[w.part]
	watching := pw != nil && pw.w == w
	if watching {
		pw.loaded = true
	}
	d.mu.Unlock()
	if watching {
		d.h.follows.setWatched(w.part, true)
		if pw.ev.isOwner() {
			d.h.announceLoaded(w.part, w.applied.current())
		}
	}
}

// watching reports whether the whole-bucket watch of partition runs and
// has loaded: the view then holds every site of it.
func (d *duty) watching(partition int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	pw := d.watchers[partition]
	return pw != nil && pw.loaded
}

// requestLoad asks the watch of site's partition to load the site for a
// follow; it reports false when no loaded watch of the partition runs or
// its queue of requests is full (the follow then loads the site itself).
func (d *duty) requestLoad(site string) bool {
	d.mu.Lock()
	pw := d.watchers[d.h.store.PartitionOf(site)]
	d.mu.Unlock()
	if pw == nil || !pw.loaded {
		return false
	}
	select {
	case pw.w.loadReq <- site:
		return true
	default:
		return false
	}
}

// watcher returns the watch of partition while this replica owns it.
func (d *duty) watcher(partition int) *watcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pw := d.watchers[partition]; pw != nil {
		return pw.w
	}
	return nil
}

// owned returns how many partitions this replica owns whose whole bucket
// its view holds (their watch loaded).
func (d *duty) owned() int { return d.count(true) }

// stoodBy returns how many partitions this replica stands by for and has
// loaded.
func (d *duty) stoodBy() int { return d.count(false) }

// count returns how many loaded watches this replica runs as owner, or as
// standby.
func (d *duty) count(owner bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, pw := range d.watchers {
		if pw.loaded && pw.ev.isOwner() == owner {
			n++
		}
	}
	return n
}

// OwnedSites returns the sites of the partitions this replica owns and
// whose whole bucket its view holds (their watch loaded), in no order:
// every site of them with a key. The history's daily summaries of these
// sites are this replica's to write (history.Index.SummarizeSites).
func (h *Hub) OwnedSites() []string {
	owned := make(map[int]bool)
	h.duty.mu.Lock()
	for p, pw := range h.duty.watchers {
		if pw.loaded && pw.ev.isOwner() {
			owned[p] = true
		}
	}
	h.duty.mu.Unlock()
	if len(owned) == 0 {
		return nil
	}
	var out []string
	for _, s := range h.view.sites.all() {
		if owned[h.store.PartitionOf(s.id)] {
			out = append(out, s.id)
		}
	}
	return out
}
