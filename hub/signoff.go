package hub

import (
	"context"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// Sign-off at closing time (docs/protocol.md, site settings): with
// sign_off_at_close, when working hours close, the agents they govern whose
// status is online or busy are set offline, by hours. Every replica arms a
// timer for each schedule's boundaries (hours.go); at a closing boundary
// each one tries the change with a compare-and-set on each agent's record,
// and only for a record last changed before the boundary, so the change
// lands once however many replicas try, and an agent who chose a status
// after the close keeps it.

// signOffLocked starts signing off the agents hoursGroup's schedule governs
// if it closed at boundary and the site signs off at close.
func (h *Hub) signOffLocked(s *site, hoursGroup string, boundary time.Time) {
	if !s.settings.SignOffAtClose {
		return
	}
	sched, ok := s.presence.Hours(hoursGroup)
	if !ok {
		return
	}
	if open, _ := sched.OpenAt(boundary); open {
		return // an opening
	}
	agents := s.presence.SignOffAt(hoursGroup, boundary)
	if len(agents) == 0 {
		return
	}
	siteID := s.id
	h.goBackground(func(ctx context.Context) {
		for _, agent := range agents {
			h.signOff(ctx, siteID, agent, hoursGroup, boundary)
		}
	})
}

func (h *Hub) signOff(ctx context.Context, siteID, agent, hoursGroup string, boundary time.Time) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
	defer cancel()
	err := h.updateAgent(ctx, agentKey(siteID, agent), func(rec *agentRecord, exists bool) bool {
		if !exists || (rec.Status != presence.Online && rec.Status != presence.Busy) || !rec.At.Before(boundary) {
			return false
		}
		rec.Status = presence.Offline
		rec.By, rec.ByID, rec.ByDevice, rec.Ref = ByHours, hoursGroup, "", ""
		rec.At = h.cfg.Now()
		return true
	})
	if err != nil && ctx.Err() == nil {
		h.log.Warn("failed to sign an agent off at closing time", "site", siteID, "agent", agent, "err", err)
	}
}
