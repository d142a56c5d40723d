package cluster

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/presencehub/presencehub/hub/store"
)

// The watch of the members bucket keeps the live set (Member.others) and
// the partitions' owners (loopState.owners). Each watch starts with a
// snapshot, which replaces both: entries missed while NATS was away (the
// marker of a key that expired meanwhile may be gone too) cannot leave a
// dead replica live.

// watchState is one watch of the members bucket.
type watchState struct {
	w        *store.Watcher
	cancel   context.CancelFunc
	loading  bool           // the snapshot is still coming
	snapshot []*store.Entry // what came of it
}

// startWatch starts a watch; on failure it logs, and Run's loop tries
// again at the next tick.
func (m *Member) startWatch(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	w, err := m.cfg.Members.WatchMembers(ctx)
	if err != nil {
		cancel()
		if ctx.Err() == nil {
			m.log.Warn("cannot watch the members bucket", "err", err)
		}
		return
	}
	m.loop.watch = &watchState{w: w, cancel: cancel, loading: true}
}

// stopWatch ends the current watch, if any, stopping it on a goroutine of
// its own that stopping counts.
func (m *Member) stopWatch(stopping *sync.WaitGroup) {
	ws := m.loop.watch
	if ws == nil {
		return
	}
	m.loop.watch = nil
	ws.cancel()
	stopping.Go(ws.w.Stop)
}

// onEntry takes one entry of the current watch: part of its snapshot, the
// snapshot's end (nil), or a change.
func (m *Member) onEntry(e *store.Entry) {
	ws := m.loop.watch
	switch {
	case ws == nil:
	case ws.loading && e != nil:
		ws.snapshot = append(ws.snapshot, e)
	case ws.loading:
		ws.loading = false
		m.reconcile(ws.snapshot)
		ws.snapshot = nil
	case e != nil:
		m.apply(e)
	}
}

// reconcile replaces the live set and the owners with a watch's snapshot;
// a replica live before and not in it is gone.
func (m *Member) reconcile(snapshot []*store.Entry) {
	m.mu.Lock()
	before := m.others
	m.others = make(map[string]struct{})
	m.mu.Unlock()
	m.loop.owners = make(map[int]owner)
	m.loop.known = make(map[string]bool)
	if m.loop.reported == nil {
		m.loop.reported = make(map[string]bool)
	}
	for _, e := range snapshot {
		m.apply(e)
	}
	var gone []string
	for id := range before {
		if !m.Alive(id) {
			gone = append(gone, id)
		}
	}
	// Replicas with a record that are not live: gone while this member
	// did not watch (all replicas restarted, say), or whose leases were
	// not all handed over yet.
	for id := range m.loop.known {
		if id != m.cfg.ID && !m.Alive(id) && !m.loop.reported[id] && !slices.Contains(gone, id) {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		m.reportGone(id)
	}
	m.loop.loaded, m.loop.moved = true, true
	m.markReady()
}

// apply takes one entry of the bucket.
func (m *Member) apply(e *store.Entry) {
	if id, ok := strings.CutPrefix(e.Key, store.LivenessPrefix); ok {
		m.applyLiveness(id, e)
		return
	}
	if id, ok := strings.CutPrefix(e.Key, store.MemberPrefix); ok {
		if e.Deleted {
			delete(m.loop.known, id)
			delete(m.loop.reported, id)
		} else if m.loop.known != nil {
			m.loop.known[id] = true
		}
		return
	}
	if s, ok := strings.CutPrefix(e.Key, store.PartitionPrefix); ok {
		if p, err := strconv.Atoi(s); err == nil && p >= 0 && p < m.Partitions() {
			m.applyPartition(p, e)
		}
	}
	if s, ok := strings.CutPrefix(e.Key, store.AnnouncePrefix); ok && !e.Deleted {
		p, err := strconv.Atoi(s)
		id, rev, ok := store.ParseAnnounce(e.Value)
		if err == nil && ok && p >= 0 && p < m.Partitions() {
			m.loop.announced[p] = id
			if m.loop.loaded {
				m.cfg.OnAnnounce(p, id, rev) // news, not a snapshot's
			}
		}
	}
	// Claims and the layout change nothing here.
}

// applyLiveness takes an entry of replica id's liveness key.
func (m *Member) applyLiveness(id string, e *store.Entry) {
	if id == m.cfg.ID {
		switch {
		case !m.isAlive() || e.Rev <= m.loop.rev:
		case !e.Deleted && bytes.Equal(e.Value, m.value):
			m.loop.rev = e.Rev // a write of ours whose answer was lost
		default:
			m.lose("the watch saw it removed or written by another")
			m.loop.recreate = true
		}
		return
	}
	m.mu.Lock()
	_, was := m.others[id]
	if e.Deleted {
		delete(m.others, id)
	} else {
		m.others[id] = struct{}{}
	}
	m.mu.Unlock()
	if was == e.Deleted {
		m.loop.moved = true // joined or gone; a refresh moves nothing
	}
	if !e.Deleted {
		delete(m.loop.reported, id)
	}
	if was && e.Deleted {
		m.reportGone(id)
	}
}

// reportGone calls OnReplicaGone for id.
func (m *Member) reportGone(id string) {
	if m.loop.reported != nil {
		m.loop.reported[id] = true
	}
	m.cfg.OnReplicaGone(id)
}

// applyPartition takes an entry of partition p's key.
func (m *Member) applyPartition(p int, e *store.Entry) {
	if o, held := m.loop.owners[p]; e.Deleted || !held || o.id != string(e.Value) {
		m.loop.moved = true // released, expired, claimed; a refresh moves nothing
	}
	if e.Deleted {
		delete(m.loop.owners, p)
	} else {
		m.loop.owners[p] = owner{id: string(e.Value), rev: e.Rev}
	}
	m.mu.Lock()
	k, mine := m.owned[p]
	m.mu.Unlock()
	switch {
	case !mine || e.Rev <= k.rev:
	case !e.Deleted && string(e.Value) == m.cfg.ID:
		k.rev = e.Rev // a write of ours whose answer was lost
	default:
		m.drop(p, "its key expired or was taken")
	}
}
