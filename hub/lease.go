package hub

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub/store"
)

// A session's lease: its writes, one at a time (the lease token). A live
// session's lease has no TTL and is not refreshed: the replica's liveness
// key stands for it (liveness.go), and the lease is written again only
// when that key was lost (reassertLeases).

// waitLease waits until the view has applied the session's latest lease
// write. While the view lags (a watch restarting after a reconnect or
// during an election) it writes the lease again every RefreshEvery, so
// that the view that comes back reads it in any case.
func (h *Hub) waitLease(ctx context.Context, sess *Session) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, h.cfg.RefreshEvery)
		err := h.waitApplied(wctx, sess.site, sess.revision())
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if err := sess.refresh(ctx); err != nil {
			return err
		}
	}
}

// refresh writes the session's index key and lease again (a lease that
// was taken over or ran out while this replica was cut off is the
// session's again). It does nothing while another lease write of the
// session is in flight: that write ends the lease (a bye's purge, a
// close) or writes it itself.
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
	irev, err := s.h.store.For(s.site).WriteIndex(ctx, s.indexKey(), s.id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.indexRev = irev
	s.mu.Unlock()
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
	st := s.h.store.For(s.site)
	rev, err := st.WriteLease(ctx, key, rec, expect)
	if errors.Is(err, ErrReplaced) {
		var current uint64
		if current, err = st.LeaseOwner(ctx, key, s.id); err == nil {
			rev, err = st.WriteLease(ctx, key, rec, current)
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

// reassertConcurrency bounds the lease writes in flight at once when this
// replica re-asserts its sessions' leases.
const reassertConcurrency = 64

// reassertLeases writes the index key and the lease of every live local
// session again, after this replica's liveness key was found gone (it was
// cut off from NATS for longer than the liveness TTL): meanwhile another
// replica may have started the grace of its devices (liveness.go), and a
// device whose grace ran out has no lease at all. A session whose device
// was taken over or revoked meanwhile is dropped.
func (m *membership) reassertLeases(ctx context.Context) {
	h := m.h
	var g errgroup.Group
	g.SetLimit(reassertConcurrency)
	for _, s := range h.localSessions() {
		g.Go(func() error {
			rctx, cancel := context.WithTimeout(ctx, h.cfg.Grace)
			defer cancel()
			err := s.refresh(rctx)
			switch {
			case errors.Is(err, ErrReplaced) || errors.Is(err, ErrRevoked):
				// ErrRevoked: the device was revoked and this replica's
				// view has not told it yet.
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
				h.log.Warn("failed to re-assert a lease", "site", s.site, "agent", s.agent, "device", s.device, "err", err)
			}
			return nil
		})
	}
	g.Wait()
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
