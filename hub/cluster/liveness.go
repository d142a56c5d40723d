package cluster

import (
	"context"
	"errors"

	"github.com/presencehub/presencehub/hub/store"
)

// A replica is live while its key r.<id> is stored. It refreshes the key
// with a compare-and-set on the revision it last wrote, every TTL/3: the
// key expires TTL after the last refresh that was stored, so a replica
// that stops refreshing (it crashed, or cannot reach NATS) is gone for
// every other between 2/3 TTL and TTL after its last refresh (plus the
// moment NATS takes to expire it and the watch to deliver the marker).

// heartbeat refreshes the liveness key, or creates it when it is not
// stored (first, or after it was lost).
func (m *Member) heartbeat(ctx context.Context) {
	m.loop.recreate = false
	octx, cancel := m.opContext(ctx)
	defer cancel()
	if m.isAlive() {
		rev, err := m.cfg.Members.Heartbeat(octx, m.cfg.ID, m.value, m.cfg.TTL, m.loop.rev)
		switch {
		case err == nil:
			m.loop.rev, m.loop.beat = rev, m.cfg.Now()
			return
		case ctx.Err() != nil:
			return // Run is ending
		case errors.Is(err, store.ErrReplaced):
			m.lose("it expired or another writer replaced it")
		case m.cfg.Now().Sub(m.loop.beat) >= m.cfg.TTL:
			// It expired by now, whether or not NATS has said so.
			m.lose("it was not refreshed within its TTL: " + err.Error())
		default:
			m.log.Warn("cannot refresh liveness key", "err", err)
			return
		}
	}
	rev, err := m.cfg.Members.Heartbeat(octx, m.cfg.ID, m.value, m.cfg.TTL, 0)
	switch {
	case err == nil:
		m.loop.rev, m.loop.beat, m.loop.held = rev, m.cfg.Now(), false
		m.setAlive(true)
		m.markReady()
		if m.loop.lost {
			m.loop.lost = false
			m.log.Info("liveness key stored again")
			m.cfg.OnLivenessRestored()
		}
	case errors.Is(err, store.ErrReplaced):
		if !m.loop.held {
			m.loop.held = true
			m.log.Warn("liveness key held by another writer (another replica with this id, or this one's previous run): waiting for it to expire",
				"key", store.LivenessPrefix+m.cfg.ID)
		}
	case ctx.Err() == nil:
		m.log.Warn("cannot store liveness key", "err", err)
	}
}

// lose records that the liveness key is lost: OnLivenessLost, then the
// release of every partition owned.
func (m *Member) lose(why string) {
	m.setAlive(false)
	m.loop.lost = true
	m.log.Warn("liveness key lost: other replicas may take this one for gone", "reason", why)
	m.cfg.OnLivenessLost()
	m.unstandByAll()
	for _, p := range m.Owned() {
		m.drop(p, "liveness lost")
	}
}

// leave ends the membership when Run's context ends: it releases the
// partitions owned and removes the liveness key, so that other replicas
// take over at once, within leaveTimeout.
func (m *Member) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	defer cancel()
	m.unstandByAll()
	m.releaseAll(ctx)
	if !m.isAlive() {
		return
	}
	m.setAlive(false)
	if err := m.cfg.Members.ReleaseKey(ctx, store.LivenessPrefix+m.cfg.ID, m.loop.rev); err != nil {
		m.log.Warn("cannot remove liveness key: other replicas take over when it expires", "err", err)
	}
}
