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
//
// Which agents a close concerns, and which closes a catch-up does, is
// package presence's (signoff.go there); this file carries out its
// decisions on the rule worker (worker.go).

// signOffLocked has the rule worker sign off the agents that a boundary of
// hoursGroup's schedule concerns (presence.Site.ClosingSignOffs).
func (r *rules) signOffLocked(s *site, hoursGroup string, boundary time.Time) {
	h := r.h
	for _, agent := range s.presence.ClosingSignOffs(s.settingsLocked(), hoursGroup, boundary) {
		h.rules.enqueueSignOff(s.id, agent, hoursGroup, boundary)
	}
}

func (r *rules) enqueueSignOff(siteID, agent, hoursGroup string, closedAt time.Time) {
	h := r.h
	h.rules.worker.enqueue(ruleKey{ruleSignOff, siteID, agent}, signOffJob{h, siteID, agent, hoursGroup, closedAt})
}

// signOffJob signs an agent off at the close of hoursGroup's hours.
type signOffJob struct {
	h                       *Hub
	site, agent, hoursGroup string
	closedAt                time.Time
}

func (j signOffJob) run(ctx context.Context) {
	j.h.rules.signOff(ctx, j.site, j.agent, j.hoursGroup, j.closedAt)
}

// merge keeps the later close: a record the earlier close would sign off
// (older than it) is older than the later one too, so the later alone does
// what both would, naming the later close's hours as the author.
func (j signOffJob) merge(pending ruleJob) ruleJob {
	if p := pending.(signOffJob); p.closedAt.After(j.closedAt) {
		return p
	}
	return j
}

// signOff sets an agent offline by the close of hoursGroup's hours, if the
// record it finds says so (presence.SignOffApplies).
func (r *rules) signOff(ctx context.Context, siteID, agent, hoursGroup string, closedAt time.Time) {
	h := r.h
	ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
	defer cancel()
	_, err := h.updateAgent(ctx, siteID, agent, func(rec *store.AgentRecord, exists bool) bool {
		if !exists || !presence.SignOffApplies(rec.Status, rec.At, closedAt) {
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

// missedSignOff is a close of a site's hours whose sign-off nobody carried
// out.
type missedSignOff struct {
	site string
	presence.MissedSignOff
}

// catchUpSignOffs signs off, after the view (re)loaded, the agents that
// missedSignOffs lists. The compare-and-set of signOff makes it once across
// replicas, with or without the boundary's own sign-off.
func (r *rules) catchUpSignOffs() {
	h := r.h
	for _, m := range h.rules.missedSignOffs(h.cfg.Now()) {
		for _, agent := range m.Agents {
			h.rules.enqueueSignOff(m.site, agent, m.HoursGroup, m.Close)
		}
	}
}

// missedSignOffs lists the closes of every site whose sign-off nobody
// carried out (presence.Site.MissedSignOffs), from what the view holds.
func (r *rules) missedSignOffs(now time.Time) []missedSignOff {
	h := r.h
	var out []missedSignOff
	for _, s := range h.view.sites.all() {
		s.mu.Lock()
		if !s.removed {
			var settingsAt time.Time
			if s.settings != nil {
				settingsAt = s.settings.at
			}
			stored := presence.StoredAt{
				Settings: settingsAt,
				Hours:    s.hoursAt,
				Status:   func(agent string) time.Time { return s.agents[agent].rec.At },
			}
			for _, m := range s.presence.MissedSignOffs(s.settingsLocked(), stored, now) {
				out = append(out, missedSignOff{s.id, m})
			}
		}
		s.mu.Unlock()
	}
	return out
}
