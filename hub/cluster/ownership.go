package cluster

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/presencehub/presencehub/hub/store"
)

// Each partition's owner is the live replica that rendezvous
// (highest-random-weight) hashing picks: every replica computes the same
// from the same live set, and a replica joining or leaving moves only the
// partitions it gains or had. The owner holds the partition's key p.<n>
// (value: its id) with the TTL and refreshes it with a compare-and-set
// every TTL/3. At each tick and after each batch of watch entries a
// replica claims the partitions it should own that nobody holds, and
// releases those it holds that another live replica should own; a
// partition whose owner died is claimed by its new owner once its key
// expires.

// partitionKey is a partition this replica owns. Member.owned is guarded
// by Member.mu; the fields are Run's goroutine's alone.
type partitionKey struct {
	rev       uint64    // the key's last revision written
	refreshed time.Time // when it was last stored
}

// maxWritesInFlight bounds the partition keys written at once.
const maxWritesInFlight = 16

// writeKind is what a write does to a partition's key.
type writeKind int

const (
	claimWrite   writeKind = iota // create it, or take over a key of this replica's id at expect
	refreshWrite                  // refresh it at expect
	releaseWrite                  // remove it at expect: another replica should own it, or Run ends
	clearWrite                    // remove a key of this replica's id that it does not hold
)

// write is one write of a round, and its outcome.
type write struct {
	kind   writeKind
	p      int
	expect uint64
	rev    uint64
	err    error
}

// rebalance claims and releases partitions for the live set now.
func (m *Member) rebalance(ctx context.Context) {
	if !m.loop.loaded || !m.isAlive() {
		return
	}
	m.loop.moved = false
	live, owned := m.Live(), m.ownedKeys()
	m.standBy(live)
	var ws []write
	for p := range m.Partitions() {
		target := ownerOf(p, live)
		o, held := m.loop.owners[p]
		k, mine := owned[p]
		switch {
		case mine && target != m.cfg.ID:
			ws = append(ws, write{kind: releaseWrite, p: p, expect: k.rev})
		case mine:
		case target == m.cfg.ID && !held:
			ws = append(ws, write{kind: claimWrite, p: p})
		case o.id != m.cfg.ID:
			// Free for another to claim, or another's: it releases it
			// for the target, or the key expires.
		case target == m.cfg.ID:
			// A key of this replica's id that it does not hold (its
			// previous run's, or kept through a lost liveness): take it.
			ws = append(ws, write{kind: claimWrite, p: p, expect: o.rev})
		default:
			ws = append(ws, write{kind: clearWrite, p: p, expect: o.rev})
		}
	}
	m.writeRound(ctx, ws)
}

// standBy calls OnStandby for the partitions this replica comes to stand
// by for, or no longer does, with the live set now: the standby of a
// partition is the replica that would own it if its target owner went. It
// runs before the writes of a rebalance, so that a replica that releases a
// partition it stands by for next is told first.
func (m *Member) standBy(live []string) {
	for p := range m.Partitions() {
		target, standby := Roles(p, live)
		want := target != m.cfg.ID && target != "" && standby == m.cfg.ID
		switch {
		case want && !m.loop.standby[p]:
			m.loop.standby[p] = true
			m.cfg.OnStandby(p, true)
		case !want && target != m.cfg.ID && m.loop.standby[p]:
			m.unstandBy(p)
		}
	}
}

// unstandBy ends standing by for p.
func (m *Member) unstandBy(p int) {
	delete(m.loop.standby, p)
	m.cfg.OnStandby(p, false)
}

// unstandByAll ends standing by for every partition, in order.
func (m *Member) unstandByAll() {
	ps := slices.Sorted(maps.Keys(m.loop.standby))
	for _, p := range ps {
		m.unstandBy(p)
	}
}

// refresh refreshes the keys of the partitions owned.
func (m *Member) refresh(ctx context.Context) {
	m.writeRound(ctx, m.ownedWrites(refreshWrite))
}

// releaseAll releases every partition owned, as Run ends.
func (m *Member) releaseAll(ctx context.Context) {
	m.writeRound(ctx, m.ownedWrites(releaseWrite))
}

// ownedWrites returns a write of kind for each partition owned, in order.
func (m *Member) ownedWrites(kind writeKind) []write {
	owned := m.ownedKeys()
	var ws []write
	for _, p := range m.Owned() {
		ws = append(ws, write{kind: kind, p: p, expect: owned[p].rev})
	}
	return ws
}

// writeRound does ws, at most maxWritesInFlight at once and within a tick,
// then takes their outcomes in order.
func (m *Member) writeRound(ctx context.Context, ws []write) {
	if len(ws) == 0 {
		return
	}
	wctx, cancel := m.opContext(ctx)
	defer cancel()
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxWritesInFlight)
	for i := range ws {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			w, key := &ws[i], store.PartitionKey(ws[i].p)
			if w.kind == claimWrite || w.kind == refreshWrite {
				w.rev, w.err = m.cfg.Members.ClaimKey(wctx, key, []byte(m.cfg.ID), m.cfg.TTL, w.expect)
			} else {
				w.err = m.cfg.Members.ReleaseKey(wctx, key, w.expect)
			}
		})
	}
	wg.Wait()
	var failed [clearWrite + 1][]int
	var firstErr [clearWrite + 1]error
	for _, w := range ws {
		if err := m.settle(w); err != nil {
			failed[w.kind] = append(failed[w.kind], w.p)
			firstErr[w.kind] = cmp.Or(firstErr[w.kind], err)
		}
	}
	if ctx.Err() != nil {
		return // Run is ending: its context's end is no failure
	}
	for kind, ps := range failed {
		if len(ps) > 0 {
			m.log.Warn(failedWrites[kind], "partitions", ps, "err", firstErr[kind])
		}
	}
}

// failedWrites are the logs of a round's failed writes, by kind.
var failedWrites = [...]string{
	claimWrite:   "cannot claim partitions",
	refreshWrite: "cannot refresh partitions",
	releaseWrite: "cannot release partitions: their next owners take them when their keys expire",
	clearWrite:   "cannot release partitions: their next owners take them when their keys expire",
}

// settle takes the outcome of one write, and returns its error when it
// failed for another reason than a lost compare-and-set.
func (m *Member) settle(w write) error {
	err := w.err
	if errors.Is(err, store.ErrReplaced) {
		err = nil
	}
	switch w.kind {
	case claimWrite:
		if w.err == nil {
			m.acquire(w.p, w.rev)
		}
	case refreshWrite:
		k := m.ownedKeys()[w.p]
		switch {
		case k == nil:
		case w.err == nil:
			k.rev, k.refreshed = w.rev, m.cfg.Now()
			m.loop.owners[w.p] = owner{id: m.cfg.ID, rev: w.rev}
		case err == nil:
			m.drop(w.p, "its key expired or another replica took it")
		case m.cfg.Now().Sub(k.refreshed) >= m.cfg.TTL:
			m.drop(w.p, "its key was not refreshed within its TTL")
		}
	case releaseWrite, clearWrite:
		if w.err == nil {
			delete(m.loop.owners, w.p)
		}
		if w.kind == releaseWrite {
			m.drop(w.p, "released")
		}
	}
	return err
}

// ownedKeys returns a copy of the owned partitions' map.
func (m *Member) ownedKeys() map[int]*partitionKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int]*partitionKey, len(m.owned))
	for p, k := range m.owned {
		out[p] = k
	}
	return out
}

// acquire records partition p owned at rev, and calls OnAcquire.
func (m *Member) acquire(p int, rev uint64) {
	m.mu.Lock()
	m.owned[p] = &partitionKey{rev: rev, refreshed: m.cfg.Now()}
	m.mu.Unlock()
	m.loop.owners[p] = owner{id: m.cfg.ID, rev: rev}
	delete(m.loop.standby, p) // owning it ends standing by for it
	m.log.Debug("partition acquired", "partition", p)
	m.cfg.OnAcquire(p)
}

// drop records partition p no longer owned, and calls OnRelease if it was.
func (m *Member) drop(p int, why string) {
	m.mu.Lock()
	_, ok := m.owned[p]
	delete(m.owned, p)
	m.mu.Unlock()
	if ok {
		m.log.Debug("partition released", "partition", p, "reason", why)
		m.cfg.OnRelease(p)
	}
}

// ownerOf returns the replica of live that should own partition p: the one
// of the highest weight, the smallest id on a tie; "" when live is empty.
func ownerOf(p int, live []string) string {
	var best string
	var bestW uint64
	for _, id := range live {
		if w := weight(p, id); best == "" || w > bestW || (w == bestW && id < best) {
			best, bestW = id, w
		}
	}
	return best
}

// Roles returns the replica of live that should own partition p and the
// partition's standby, the one that would own it if the owner went ("" for
// none). Tools that check a deployment (presence-load replicas) use it to
// tell which sites each replica holds.
func Roles(p int, live []string) (owner, standby string) {
	owner = ownerOf(p, live)
	return owner, ownerOf(p, slices.DeleteFunc(slices.Clone(live), func(id string) bool { return id == owner }))
}

// weight is replica id's rendezvous weight for partition p: FNV-1a 64 of
// the id and p, finished with splitmix64's mixer so that ids that differ
// in their last character spread over the whole range.
func weight(p int, id string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(id) {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	for _, b := range [4]byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p)} {
		h ^= uint64(b)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}
