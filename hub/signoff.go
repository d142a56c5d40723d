package hub

import (
	"context"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Sign-off at closing time (docs/protocol.md, site settings): with
// sign_off_at_close, when working hours close, the agents they govern whose
// status is online or busy are set offline, by hours. Every replica arms a
// timer for each schedule's boundaries (hours.go); at a closing boundary
// each one tries the change with a compare-and-set on each agent's record,
// and only for a record last changed before the boundary, so the change
// lands once however many replicas try, and an agent who chose a status
// after the close keeps it.
//
// A close that came while no replica could act on it (every replica down,
// or NATS unreachable past the write timeout) is caught up when a view
// (re)loads: see catchUpSignOffs.

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
	_, err := h.updateAgent(ctx, siteID, agent, func(rec *store.AgentRecord, exists bool) bool {
		if !exists || (rec.Status != presence.Online && rec.Status != presence.Busy) || !rec.At.Before(boundary) {
			return false
		}
		rec.Status = presence.Offline
		rec.By, rec.ByID, rec.ByDevice, rec.Ref = protocol.ByHours, hoursGroup, "", ""
		rec.At = h.cfg.Now()
		return true
	})
	if err != nil && ctx.Err() == nil {
		h.log.Warn("failed to sign an agent off at closing time", "site", siteID, "agent", agent, "err", err)
	}
}

// signOffCatchUp is how far back a (re)loading view looks for a close
// whose sign-off nobody carried out: a week and a day, so a close of every
// weekly schedule is in reach.
const signOffCatchUp = 8 * 24 * time.Hour

// missedSignOff is a close of hoursGroup's schedule whose sign-off of
// agents nobody carried out.
type missedSignOff struct {
	site, hoursGroup string
	close            time.Time
	agents           []string
}

// catchUpSignOffs signs off, after the view (re)loaded, the agents that
// missedSignOffs lists. The compare-and-set of signOff makes it once across
// replicas, with or without the boundary's own sign-off.
func (h *Hub) catchUpSignOffs() {
	for _, m := range h.missedSignOffs(h.cfg.Now()) {
		h.goBackground(func(ctx context.Context) {
			for _, agent := range m.agents {
				h.signOff(ctx, m.site, agent, m.hoursGroup, m.close)
			}
		})
	}
}

// missedSignOffs lists, for each schedule of a site that signs off at
// close, the agents its last close before now should have signed off and
// did not: online or busy by a record older than that close. Only a close
// after the settings and the schedule were stored counts, so a replica that
// restarts does what the running replicas did, never more
// (sign_off_at_close turned on after a close leaves that close alone).
func (h *Hub) missedSignOffs(now time.Time) []missedSignOff {
	var out []missedSignOff
	for _, s := range h.sites.all() {
		s.mu.Lock()
		if !s.removed && s.settings.SignOffAtClose {
			for _, group := range s.presence.HoursGroups() {
				sched, _ := s.presence.Hours(group)
				last := sched.LastClose(now, signOffCatchUp)
				if last.IsZero() || !s.settingsAt.Before(last) || !s.hoursAt[group].Before(last) {
					continue
				}
				var agents []string
				for _, agent := range s.presence.SignOffAt(group, last) {
					if s.agents[agent].rec.At.Before(last) {
						agents = append(agents, agent)
					}
				}
				if len(agents) > 0 {
					out = append(out, missedSignOff{s.id, group, last, agents})
				}
			}
		}
		s.mu.Unlock()
	}
	return out
}
