package hub

import (
	"context"
	"fmt"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Admin control: a site's admin sets an agent's status or revokes one of
// its devices. Both are writes to the bucket like any other, so every
// replica learns of them from its watch: the agent's devices, wherever they
// are connected, get the status frame from their own replica, and the
// replica that holds a revoked device's session closes it.

// SetAgentStatus sets the status of an agent of the site on behalf of the
// admin adminID, for every device of the agent on every replica, and
// returns the agent as this replica's view shows it once it applied the
// change. ok is false, and nothing is written, when the view has never seen
// the agent (neither a record nor a device lease).
//
// The record says who set it (by "admin", by_id adminID), which status
// frames, the agents API and agent.status events show.
func (h *Hub) SetAgentStatus(ctx context.Context, siteID, agent string, status presence.Status, adminID string) (state AgentState, ok bool, err error) {
	release, err := h.visit(ctx, siteID)
	if err != nil {
		return AgentState{}, false, err
	}
	defer release()
	if _, ok, err := h.Agent(siteID, agent); err != nil || !ok {
		return AgentState{}, false, err
	}
	h.counters.statusChanges.Add(1)
	h.metrics.statusChanges.Inc()
	rev, err := h.updateAgent(ctx, siteID, agent, func(rec *store.AgentRecord, exists bool) bool {
		if !exists {
			// Known from device leases only, or removed meanwhile: the
			// groups come with the agent's next connection.
			*rec = store.AgentRecord{}
		}
		rec.Status = status
		rec.By, rec.ByID, rec.ByDevice = protocol.ByAdmin, adminID, ""
		rec.Ref = ""
		rec.At = h.cfg.Now()
		return true
	})
	if err != nil {
		return AgentState{}, true, err
	}
	if err := h.waitApplied(ctx, siteID, rev); err != nil {
		return AgentState{}, true, fmt.Errorf("status stored but not yet applied: %w", err)
	}
	// ok is false only if the agent has been removed meanwhile (rare).
	return h.Agent(siteID, agent)
}

// RevokeDevice ends a device of an agent of the site at once: its lease is
// removed with no grace, and the replica holding its session, if any, kicks
// it with ErrRevoked. It returns once this replica's view has the device
// gone; found is false, and nothing is written, when the view has no lease
// of the device.
func (h *Hub) RevokeDevice(ctx context.Context, siteID, agent, device string) (found bool, err error) {
	release, err := h.visit(ctx, siteID)
	if err != nil {
		return false, err
	}
	defer release()
	key := store.LeaseKey(siteID, agent, device)
	if s := h.view.lockExistingSite(siteID); s != nil {
		_, found = s.devices[key.String()]
		h.view.unlockSite(s)
	}
	if !found {
		return false, nil
	}
	rev, err := h.store.For(siteID).Purge(ctx, key, 0, store.RevokedMarker)
	if err != nil {
		return true, fmt.Errorf("failed to revoke device: %w", err)
	}
	return true, h.waitApplied(ctx, siteID, rev)
}

// kickRevokedLocked closes the local sessions of a device whose lease an
// admin revoked.
func (h *Hub) kickRevokedLocked(s *site, k store.Key) {
	for sess := range s.local[k.Agent] {
		if sess.device == k.Device {
			h.log.Debug("device revoked", "site", k.Site, "agent", k.Agent, "device", k.Device)
			sess.revoked.Store(true)
			h.fanout.dropLocked(s, sess.sub, ErrRevoked)
		}
	}
}
