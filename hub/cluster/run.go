package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/jsretry"
)

// loopState is what Run's goroutine alone reads and writes.
type loopState struct {
	rev  uint64    // the liveness key's last revision written, 0 before the first
	beat time.Time // when it was last stored
	lost bool      // OnLivenessLost was called and OnLivenessRestored is due
	held bool      // the last create met a key held by another writer (logged once)
	// recreate is set when the watch showed the liveness key lost: the
	// entries' handler creates it again at once instead of at the next tick.
	recreate bool
	// moved is set when the watch showed a replica join or go, or a
	// partition change hands: the entries' handler rebalances then, not
	// after each mere refresh (every tick rebalances anyway).
	moved  bool
	loaded bool // a watch's snapshot has been loaded
	// owners are the partitions' keys as the watch last saw them.
	owners map[int]owner
	// standby are the partitions OnStandby(true) was called for and not
	// yet OnStandby(false).
	standby map[int]bool
	// announced is, by partition, the replica that last announced it had
	// loaded it as its owner (Announce).
	announced map[int]string
	watch     *watchState // the current watch, nil between watches
	// known are the replicas with a record (store.Members.Register), and
	// reported those of them OnReplicaGone was called for since they
	// were last live.
	known, reported map[string]bool
}

// owner is a partition key's holder and revision.
type owner struct {
	id  string
	rev uint64
}

// leaveTimeout bounds the releases of a graceful stop.
const leaveTimeout = 5 * time.Second

// Run keeps the member until ctx ends: it reads the layout, writes the
// liveness key every TTL/3, follows the members bucket's watch, and claims,
// refreshes and releases partitions. When ctx ends it releases its
// partitions and removes its liveness key, within a few seconds, so that
// other replicas take over at once, and returns nil. It returns an error
// when the layout cannot be used. Run may be called once.
func (m *Member) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("cluster: Run called twice")
	}
	n, err := m.readLayout(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	m.parts.Store(int32(n))
	if err := m.register(ctx); err != nil {
		return nil // ctx ended
	}

	nc := m.cfg.Members.Conn()
	reconnected := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(reconnected)
	var stopping sync.WaitGroup // watches being stopped
	defer stopping.Wait()
	defer m.stopWatch(&stopping)
	tick := time.NewTicker(m.cfg.TTL / 3)
	defer tick.Stop()

	m.heartbeat(ctx)
	watchDue := true
	for {
		if m.loop.watch == nil && watchDue {
			m.startWatch(ctx)
			watchDue = false
		}
		var updates <-chan *store.Entry
		if w := m.loop.watch; w != nil {
			updates = w.w.Updates()
		}
		select {
		case <-ctx.Done():
			m.leave(ctx)
			return nil
		case _, ok := <-reconnected:
			if !ok {
				reconnected = nil // closed: no more reconnects to hear of
				continue
			}
			// Entries may have been missed (markers that expired while
			// away): a new watch's snapshot says what is there.
			m.stopWatch(&stopping)
			watchDue = true
		case e, ok := <-updates:
			if !ok {
				m.stopWatch(&stopping)
				if ctx.Err() == nil {
					m.log.Warn("members watch ended; starting it again at the next tick")
				}
				continue
			}
			m.onEntries(ctx, updates, e)
		case <-tick.C:
			watchDue = true
			m.heartbeat(ctx)
			m.refresh(ctx)
			m.rebalance(ctx)
		}
	}
}

// readLayout reads the layout's partition count, trying again while NATS
// cannot answer; it logs a warning when the stored count is not the one
// configured.
func (m *Member) readLayout(ctx context.Context) (int, error) {
	for wait := jsretry.FirstWait; ; wait = min(2*wait, jsretry.MaxWait) {
		n, err := m.cfg.Members.Layout(ctx, m.cfg.Partitions)
		if err == nil {
			if n != m.cfg.Partitions {
				m.log.Warn("the cluster's partition count is the one stored when it was created, not the one configured",
					"stored", n, "configured", m.cfg.Partitions)
			}
			return n, nil
		}
		if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			return 0, fmt.Errorf("cluster: %w", err)
		}
		m.log.Warn("cannot read the cluster's layout yet", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// register writes this replica's record (store.Members.Register) before
// anything else, trying again while NATS cannot take it, until ctx ends:
// a replica that holds device leases must be one that the others find if
// it goes.
func (m *Member) register(ctx context.Context) error {
	for wait := jsretry.FirstWait; ; wait = min(2*wait, jsretry.MaxWait) {
		err := m.cfg.Members.Register(ctx, m.cfg.ID, m.value)
		if err == nil {
			return nil
		}
		m.log.Warn("cannot register this replica yet", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// opContext bounds one round of writes: a tick's worth, so that a round
// against an unreachable NATS gives way to the next tick.
func (m *Member) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.TTL/3)
}

// onEntries applies e and every entry the watch has ready after it, then
// acts on what they changed.
func (m *Member) onEntries(ctx context.Context, updates <-chan *store.Entry, e *store.Entry) {
	m.onEntry(e)
drain:
	for {
		select {
		case e, ok := <-updates:
			if !ok {
				break drain // Run's loop sees it closed and stops the watch
			}
			m.onEntry(e)
		default:
			break drain
		}
	}
	if m.loop.recreate {
		m.heartbeat(ctx) // lost just now: create it again at once
	}
	if m.loop.moved {
		m.rebalance(ctx)
	}
	m.checkOwnersLoaded()
}
