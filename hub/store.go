package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// The hub's writes, all through package store: compare-and-set on records
// starting from the view, and read-your-writes (a writer that must see its
// own write waits until the view has applied its revision: applied.wait).

// Errors of the store, as the hub's callers test for them.
var (
	// ErrReplaced is returned when a newer session of the same device took
	// over.
	ErrReplaced = store.ErrReplaced
	// ErrRevoked is the reason a device session is kicked when an admin
	// revoked the device; a session's lease writes also return it once
	// the lease is revoked, so that it is not written again. The device
	// may start a new session with a new hello.
	ErrRevoked = store.ErrRevoked
	// ErrOutcomeUnknown is wrapped by a write error when a write was sent
	// but not acknowledged before giving up: it may still be applied later.
	ErrOutcomeUnknown = store.ErrOutcomeUnknown
	// ErrUnavailable is wrapped by a write error when NATS could not take
	// the write for as long as it was retried (an election, a cut-off
	// replica, a store that cannot write, such as on a full disk).
	ErrUnavailable = store.ErrUnavailable
)

// DefaultWriteRetry is the default Config.WriteRetry.
const DefaultWriteRetry = store.DefaultWriteRetry

// updateAgent changes the agent record of (site, agent) with the store's
// compare-and-set loop, starting from the view's copy of it, and returns
// the revision stored (or of the record fn left alone, 0 if none), so that
// the caller can wait for the view to apply it.
func (h *Hub) updateAgent(ctx context.Context, siteID, agent string, fn func(rec *store.AgentRecord, exists bool) bool) (uint64, error) {
	var from store.Versioned[store.AgentRecord]
	if s := h.view.lockExistingSite(siteID); s != nil {
		if a, ok := s.agents[agent]; ok {
			from = store.Versioned[store.AgentRecord]{Rec: a.rec, Rev: a.rev, Exists: true}
		}
		h.view.unlockSite(s)
	}
	return h.store.For(siteID).UpdateAgent(ctx, siteID, agent, &from, func(rec *store.AgentRecord, _ uint64, exists bool) bool {
		return fn(rec, exists)
	})
}

// PutSchedule stores the working hours of (site, group) for every replica
// and returns once this replica applies them. The schedule must be valid.
func (h *Hub) PutSchedule(ctx context.Context, site, group string, sched *presence.Schedule) error {
	if err := sched.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(sched)
	if err != nil {
		return fmt.Errorf("failed to encode schedule: %w", err)
	}
	return h.put(ctx, store.HoursKey(site, group), b)
}

// DeleteSchedule removes the working hours of (site, group); it reports
// whether there were any.
func (h *Hub) DeleteSchedule(ctx context.Context, site, group string) (bool, error) {
	release, err := h.visit(ctx, site)
	if err != nil {
		return false, err
	}
	defer release()
	if _, ok := h.Schedule(site, group); !ok {
		return false, nil
	}
	rev, err := h.store.For(site).Purge(ctx, store.HoursKey(site, group), 0, nil)
	if err != nil {
		return false, fmt.Errorf("failed to remove working hours: %w", err)
	}
	return true, h.waitApplied(ctx, site, rev)
}

// PutSettings stores the site's settings for every replica and returns once
// this replica applies them.
func (h *Hub) PutSettings(ctx context.Context, site string, settings presence.Settings) error {
	if err := settings.Validate(); err != nil {
		return err
	}
	if settings.AllowedOrigins == nil {
		settings.AllowedOrigins = []string{}
	}
	b, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("failed to encode settings: %w", err)
	}
	return h.put(ctx, store.SettingsKey(site), b)
}

func (h *Hub) put(ctx context.Context, key store.Key, value []byte) error {
	release, err := h.visit(ctx, key.Site)
	if err != nil {
		return err
	}
	defer release()
	rev, err := h.store.For(key.Site).Put(ctx, key, value)
	if err != nil {
		return err
	}
	return h.waitApplied(ctx, key.Site, rev)
}

// waitApplied waits until the view has applied revision rev of site, so
// that a caller reads its own writes. The caller has an interest in site
// (visit).
func (h *Hub) waitApplied(ctx context.Context, site string, rev uint64) error {
	return h.follows.waitApplied(ctx, site, rev)
}

// visit takes an interest in site for a request about it, loading it if
// this replica does not follow it, and returns what ends the interest. The
// site stays followed for Config.FollowLinger after, so a run of requests
// loads it once.
func (h *Hub) visit(ctx context.Context, site string) (release func(), err error) {
	if !h.Ready() {
		return nil, ErrNotReady
	}
	ctx, cancel := context.WithTimeout(ctx, h.store.WriteRetry()+time.Second)
	defer cancel()
	release, err = h.follows.acquire(ctx, site)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to load site %s: %w", ErrNotReady, site, err)
	}
	return release, nil
}

// WriteRetry returns how long a write is retried through an election or a
// NATS reconnect (Config.WriteRetry); a caller that wants the write stored
// should allow at least this long.
func (h *Hub) WriteRetry() time.Duration { return h.store.WriteRetry() }
