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
// go). The owner reads the partition's whole bucket but holds only the
// sites a duty needs now (duty_hold.go); the other replicas follow only the
// sites they serve. The rules' writes are compare-and-sets, so a duty done
// twice while ownership moves is done once.

// duty is the part of a Hub that runs the whole-bucket watch of each
// partition the replica owns. acquire and release are called by the
// cluster member's goroutine; each watch runs on a goroutine of its own.
type duty struct {
	h *Hub
	// ctx is Run's; set before the member runs.
	ctx context.Context

	mu       sync.Mutex
	watchers map[int]*partitionWatch // guarded by mu
}

// partitionWatch is the whole-bucket watch of one owned partition.
type partitionWatch struct {
	w      *watcher
	cancel context.CancelFunc
	done   chan struct{} // closed when the watch ends
	loaded bool          // guarded by duty.mu: it has loaded the bucket
}

// acquire starts the whole-bucket watch of partition.
func (d *duty) acquire(partition int) {
	h := d.h
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watchers == nil {
		d.watchers = make(map[int]*partitionWatch)
	}
	if d.watchers[partition] != nil {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	w := newWatcher(h, partition)
	pw := &partitionWatch{w: w, cancel: cancel, done: make(chan struct{})}
	d.watchers[partition] = pw
	h.log.Info("this replica owns a partition: watching its whole bucket", "partition", partition, "bucket", w.store.Bucket())
	go func() {
		defer close(pw.done)
		_ = w.run(ctx)
	}()
}

// release stops the whole-bucket watch of partition, and drops from the
// view every site of it this replica has no interest in.
func (d *duty) release(partition int) {
	h := d.h
	d.stopPartition(partition)
	for _, s := range h.view.sites.all() {
		if h.store.PartitionOf(s.id) == partition && h.follows.get(s.id) == nil {
			h.view.dropSite(s.id)
		}
	}
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
func (d *duty) owned() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, pw := range d.watchers {
		if pw.loaded {
			n++
		}
	}
	return n
}
