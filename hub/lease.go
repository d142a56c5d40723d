package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub/store"
)

// A session's lease: its writes, one at a time (the lease token), and the
// keeper that refreshes the leases of live sessions.

// waitLease waits until the view has applied the session's latest lease
// write. The keeper does not know the session yet, so while the view lags
// (a watch restarting after a reconnect or during an election) this
// refreshes the lease every RefreshEvery itself: a first lease must not
// expire while its session waits, or the session would find itself gone
// and be refused as replaced.
func (h *Hub) waitLease(ctx context.Context, sess *Session) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, h.cfg.RefreshEvery)
		err := h.waitApplied(wctx, sess.revision())
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if err := sess.refresh(ctx); err != nil {
			return err
		}
	}
}

// refresh re-writes the session's lease so that its TTL starts again. It
// does nothing while another lease write of the session is in flight: that
// write starts the TTL again itself, or ends the lease (a bye's purge, a
// close), and the keeper must not wait behind it, since one wait would hold
// up the refreshes of every other session until the next tick. If that
// write fails, the next tick refreshes the lease.
func (s *Session) refresh(ctx context.Context) error {
	if !s.tryTakeLease() {
		return nil
	}
	defer s.releaseLease()
	s.mu.Lock()
	rec, skip := s.record, s.ended || s.revoked.Load()
	s.mu.Unlock()
	if skip {
		return nil
	}
	return s.writeOwnLease(ctx, rec)
}

// takeLease waits for the session's lease token (see Session.leaseToken),
// or until ctx ends.
func (s *Session) takeLease(ctx context.Context) error {
	select {
	case s.leaseToken <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("failed to wait for the lease write in flight: %w", ctx.Err())
	}
}

// tryTakeLease takes the session's lease token if no lease write holds it.
func (s *Session) tryTakeLease() bool {
	select {
	case s.leaseToken <- struct{}{}:
		return true
	default:
		return false
	}
}

// releaseLease gives the lease token back.
func (s *Session) releaseLease() { <-s.leaseToken }

// revision returns the revision of the session's last lease write.
func (s *Session) revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// writeOwnLease writes rec as the session's lease, expecting the revision
// of its last write, and records the new revision. A mismatch does not by
// itself mean another session took the device over: the lease may have
// expired during a NATS outage, or a write may have landed whose ack was
// lost. So the key is read, and ErrReplaced is returned only if another
// session holds it, ErrRevoked if an admin revoked the device. Called with
// the lease token held, which keeps rev from changing meanwhile; s.mu is
// taken only to read and record it.
func (s *Session) writeOwnLease(ctx context.Context, rec store.DeviceRecord) error {
	key := store.LeaseKey(s.site, s.agent, s.device)
	expect := s.revision()
	rev, err := s.h.store.WriteLease(ctx, key, rec, expect)
	if errors.Is(err, ErrReplaced) {
		var current uint64
		if current, err = s.h.store.LeaseOwner(ctx, key, s.id); err == nil {
			rev, err = s.h.store.WriteLease(ctx, key, rec, current)
			if errors.Is(err, ErrReplaced) && current == expect {
				err = errInFlight
			}
		}
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.rev = rev
	s.mu.Unlock()
	return nil
}

// errInFlight is a lease write refused although the lease is still the
// session's at the revision it expected: a write of the key is in the
// stream leader's log and not yet committed (a leader that lost its quorum
// refuses every retry so). The lease was not replaced; the outcome is
// open, and the write is tried again.
var errInFlight = fmt.Errorf("a write of the lease in flight at the stream's leader did not settle (%w)", ErrOutcomeUnknown)

// refreshConcurrency bounds the lease writes in flight at once, so that a
// hub with many sessions refreshes them all well inside one interval.
const refreshConcurrency = 64

// keepLeases refreshes the lease of every live local session every
// RefreshEvery, so that a lease outlives its session by at most the grace.
func (h *Hub) keepLeases(ctx context.Context) error {
	t := time.NewTicker(h.cfg.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		sessions := h.localSessions()
		var g errgroup.Group
		g.SetLimit(refreshConcurrency)
		for _, s := range sessions {
			g.Go(func() error {
				// A refresh that NATS cannot take is retried at once
				// (see package store), not at the next tick, for as long as
				// the lease can live: that is what keeps it alive
				// through a stream leader election.
				rctx, cancel := context.WithTimeout(ctx, h.cfg.Grace)
				defer cancel()
				err := s.refresh(rctx)
				switch {
				case errors.Is(err, ErrReplaced) || errors.Is(err, ErrRevoked):
					// ErrRevoked: the device was revoked and this
					// replica's watch has not told it yet.
					reason := ErrReplaced
					if errors.Is(err, ErrRevoked) {
						s.revoked.Store(true)
						reason = ErrRevoked
					}
					if site := h.view.lockExistingSite(s.site); site != nil {
						h.fanout.dropLocked(site, s.sub, reason)
						h.view.unlockSite(site)
					}
				case err != nil && ctx.Err() == nil:
					h.log.Warn("failed to refresh lease", "site", s.site, "agent", s.agent, "device", s.device, "err", err)
				}
				return nil
			})
		}
		g.Wait()
	}
}

// localSessions returns the live device sessions on this hub.
func (h *Hub) localSessions() []*Session {
	var out []*Session
	for _, s := range h.view.sites.all() {
		s.mu.Lock()
		for _, sessions := range s.local {
			for sess := range sessions {
				out = append(out, sess)
			}
		}
		s.mu.Unlock()
	}
	return out
}
