package hub

import (
	"context"
	"sync"
)

// The duties: what must happen when no replica has a client of a site (the
// events of a grace that ran out after its replica died, the idle rule,
// sign-off at closing time, the uncovered alert) is done by the replica
// that owns partition 0 (package cluster: compare-and-set and a TTL in
// NATS, so that a dead owner's partition moves to a survivor within the
// liveness TTL). That replica watches the whole bucket, as every replica
// used to, and holds every site; the others follow only the sites they
// serve. The rules' writes are compare-and-sets, so a duty done twice
// while ownership moves is done once.
//
// Not built yet: duties shared by partition across replicas (it takes
// keys laid out by partition, one bucket each), and duties that cost per
// event rather than per device held.

// dutyPartition is the partition whose owner does the duties.
const dutyPartition = 0

// duty is the part of a Hub that runs the whole-bucket watch while the
// replica owns the duties. Its methods are called by the cluster member's
// goroutine (acquire, release) and by Run; the watch runs on a goroutine
// of its own.
type duty struct {
	h *Hub
	// ctx is Run's; set before the member runs.
	ctx context.Context

	mu      sync.Mutex
	cancel  context.CancelFunc // guarded by mu; nil while not watching
	done    chan struct{}      // guarded by mu; closed when the watch ends
	loaded  bool               // guarded by mu; the watch has loaded the bucket
	started bool               // guarded by mu
}

// acquire starts the whole-bucket watch when this replica gets the duty
// partition.
func (d *duty) acquire(partition int) {
	if partition != dutyPartition {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	d.cancel, d.done, d.loaded = cancel, make(chan struct{}), false
	done := d.done
	d.h.log.Info("this replica owns the duties: watching the whole bucket")
	go func() {
		defer close(done)
		_ = d.h.watcher.run(ctx)
	}()
}

// release stops the whole-bucket watch when the replica loses the duty
// partition, and drops from the view every site it has no interest in.
func (d *duty) release(partition int) {
	if partition != dutyPartition {
		return
	}
	d.stop()
	h := d.h
	for _, s := range h.view.sites.all() {
		if h.follows.get(s.id) == nil {
			h.view.dropSite(s.id)
		}
	}
}

// stop ends the whole-bucket watch and waits for it.
func (d *duty) stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.cancel, d.done, d.loaded = nil, nil, false
	d.mu.Unlock()
	if cancel == nil {
		return
	}
	d.h.log.Info("this replica no longer owns the duties")
	cancel()
	<-done
	d.h.watcher.stopping.Wait()
	d.h.follows.setWatched(false)
}

// setLoaded records that the whole-bucket watch has loaded the bucket.
func (d *duty) setLoaded() {
	d.mu.Lock()
	watching := d.cancel != nil
	d.loaded = watching
	d.mu.Unlock()
	if watching {
		d.h.follows.setWatched(true)
	}
}

// watching reports whether the whole-bucket watch runs and has loaded: the
// view then holds every site.
func (d *duty) watching() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loaded
}

// owns reports whether this replica owns the duties.
func (d *duty) owns() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel != nil
}
