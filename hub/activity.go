package hub

import (
	"context"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Activity and the idle rule (docs/protocol.md, site settings). An agent's
// activity is the key i.<site>.<agent>, written with a TTL of the site's
// idle.after whenever one of the agent's devices shows activity (a hello,
// an activity message, choosing online), at most once per after/4. The
// key's expiry is the idle deadline, and NATS keeps it: every replica's
// watch sees the expiry marker, and each one that does tries to set the
// agent's status to idle.status with a compare-and-set on the agent
// record, so exactly one change lands, whichever replicas are alive. No
// replica runs a timer for it. What the rule decides is package presence's
// (idle.go there); this file keeps its keys and carries out its decisions
// on the rule worker (worker.go).

// storedActivity is what the view knows of an agent's activity.
type storedActivity struct {
	at      time.Time // the last activity seen; kept after the key expires
	present bool      // the key exists: the idle deadline has not passed
}

func (r *rules) applyActivityLocked(s *site, k store.Key, e entry) {
	h := r.h
	if e.deleted {
		a, ok := s.activity[k.Agent]
		if !ok {
			return
		}
		a.present = false
		put(&s.activity, k.Agent, a)
		// A marker read from the bucket is the expiry (or its replay
		// after a restart); a removal found only by absence in a
		// snapshot carries no time and is not acted on: the key's
		// marker, if still there, is.
		if !e.at.IsZero() && s.settingsLocked().IdleAfter() > 0 {
			h.rules.worker.enqueue(ruleKey{ruleIdleDeadline, s.id, k.Agent}, idleDeadlineJob{h, s.id, k.Agent, e.rev})
		}
		return
	}
	rec, err := store.DecodeActivityRecord(e.value)
	if err != nil {
		h.log.Error("ignoring bad activity record", "key", e.key, "err", err)
		return
	}
	put(&s.activity, k.Agent, storedActivity{at: rec.At, present: true})
}

// clock is the agent's idle clock as the rules see it.
func (a storedActivity) clock() presence.IdleClock {
	return presence.IdleClock{Start: a.at, Running: a.present}
}

// idleDeadlineJob is the idle rule due at an agent's idle deadline, the
// expiry of their activity key at bucket revision deadline.
type idleDeadlineJob struct {
	h           *Hub
	site, agent string
	deadline    uint64
}

func (j idleDeadlineJob) run(ctx context.Context) {
	j.h.rules.idleDeadline(ctx, j.site, j.agent, j.deadline)
}

// merge keeps the later deadline: a record the rule would set idle at the
// earlier one (older than it) is older than the later one too, so the
// later alone does what both would.
func (j idleDeadlineJob) merge(pending ruleJob) ruleJob {
	j.deadline = max(j.deadline, pending.(idleDeadlineJob).deadline)
	return j
}

// idleDeadline carries out the idle rule (presence.Settings.IdleAtDeadline)
// when an agent's activity key expired at bucket revision deadline. Every
// replica that saw the expiry runs it, each with a compare-and-set on the
// agent record as it read it, and the rule leaves alone a record newer
// than the deadline, so a replica that comes late does not apply it over
// the one that came first, nor over a status chosen since.
func (r *rules) idleDeadline(ctx context.Context, siteID, agent string, deadline uint64) {
	h := r.h
	settings := h.Settings(siteID)
	if settings.IdleAfter() == 0 {
		return // spare the reads: the rule is off
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
	defer cancel()
	var check presence.IdleCheck
	// The watch may run behind: ask the bucket whether the agent was
	// active again since.
	active, err := h.store.For(siteID).Exists(ctx, store.ActivityKey(siteID, agent))
	if err != nil {
		h.log.Warn("failed to check an agent's activity at its idle deadline", "site", siteID, "agent", agent, "err", err)
		return
	}
	if check.Active = active; settings.IdleAfter() > 0 && active {
		return // spare the read: activity came, a new clock runs
	}
	// The record is read from the bucket, not the view, and written with
	// the store's compare-and-set: a record another write replaced since
	// the read is newer than the deadline, so the rule does not apply to
	// it either.
	_, err = h.store.For(siteID).UpdateAgent(ctx, siteID, agent, nil, func(rec *store.AgentRecord, rev uint64, exists bool) bool {
		check.Exists, check.Status, check.Rev = exists, rec.Status, rev
		status, ok := settings.IdleAtDeadline(check, deadline)
		if !ok {
			return false
		}
		rec.Status = status
		rec.By, rec.ByID, rec.ByDevice, rec.Ref = protocol.ByIdle, "", "", ""
		rec.At = h.cfg.Now()
		return true
	})
	if err != nil {
		h.log.Warn("failed to apply the idle rule", "site", siteID, "agent", agent, "err", err)
	}
}

// writeTimeout bounds one background write of the rules.
func writeTimeout(h *Hub) time.Duration { return store.WriteAttemptTimeout + h.store.WriteRetry() }

// Activity records that the session's person interacted. It returns at
// once; the write, if one is due, is left to the rule worker.
func (s *Session) Activity() { s.h.rules.activity(s.site, s.agent, s.device) }

// activity notes activity of a device of agent.
func (r *rules) activity(siteID, agent, device string) {
	h := r.h
	if st := h.view.lockExistingSite(siteID); st != nil {
		h.rules.activityLocked(st, agent, device)
		h.view.unlockSite(st)
	}
}

// activityLocked carries out what activity of a device of agent calls
// for: the activity key is rewritten when it is due
// (presence.Settings.ActivityWriteDue), and an agent whose status the idle
// rule set is online again (presence.ActivityRestores).
func (r *rules) activityLocked(st *site, agent, device string) {
	h := r.h
	siteID, now := st.id, h.cfg.Now()
	if st.settingsLocked().ActivityWriteDue(now, st.activity[agent].clock(), st.activityWritten[agent]) {
		// A write still waiting is replaced: this one is later.
		after := st.settingsLocked().IdleAfter()
		if h.rules.worker.enqueue(ruleKey{ruleActivityWrite, siteID, agent}, ruleFunc(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
			defer cancel()
			if err := h.rules.writeActivity(ctx, siteID, agent, device, now, after); err != nil {
				h.log.Warn("failed to record activity", "site", siteID, "agent", agent, "err", err)
			}
		})) {
			put(&st.activityWritten, agent, now)
		}
	}
	if a, ok := st.agents[agent]; ok && presence.ActivityRestores(a.rec.Status, a.rec.By == protocol.ByIdle) {
		h.rules.worker.enqueue(ruleKey{ruleRestoreFromIdle, siteID, agent}, ruleFunc(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
			defer cancel()
			h.rules.restoreFromIdle(ctx, siteID, agent, device)
		}))
	}
}

// restoreFromIdle sets online an agent whose status the idle rule set; a
// status chosen by hand (or by an admin, or at closing time) since is left
// alone.
func (r *rules) restoreFromIdle(ctx context.Context, siteID, agent, device string) {
	h := r.h
	_, err := h.updateAgent(ctx, siteID, agent, func(rec *store.AgentRecord, exists bool) bool {
		if !exists || !presence.ActivityRestores(rec.Status, rec.By == protocol.ByIdle) {
			return false
		}
		rec.Status = presence.Online
		rec.By, rec.ByID, rec.ByDevice, rec.Ref = protocol.ByActivity, device, "", ""
		rec.At = h.cfg.Now()
		return true
	})
	if err != nil {
		h.log.Warn("failed to restore an agent from idle", "site", siteID, "agent", agent, "err", err)
	}
}

// writeActivity stores an activity key that expires after after.
func (r *rules) writeActivity(ctx context.Context, siteID, agent, device string, at time.Time, after time.Duration) error {
	h := r.h
	return h.store.For(siteID).WriteActivity(ctx, siteID, agent, store.ActivityRecord{At: at, Device: device}, after)
}

// startIdleClocksLocked has the rule worker start the idle clock of every
// agent of the site that needs one (presence.Settings.IdleClockNeeded).
func (r *rules) startIdleClocksLocked(s *site) {
	h := r.h
	id := s.id
	h.rules.worker.enqueue(ruleKey{ruleIdleClocks, id, ""}, ruleFunc(func(ctx context.Context) { h.rules.startIdleClocks(ctx, id) }))
}

// startIdleClocks starts the idle clock of every agent of the site that
// needs one: after the idle rule is turned on, and after a load, for
// agents whose key expired while no replica watched. Create refuses a key
// that exists, so replicas doing this together write each key once.
func (r *rules) startIdleClocks(ctx context.Context, siteID string) {
	h := r.h
	st := h.view.lockExistingSite(siteID)
	if st == nil {
		return
	}
	after := st.settingsLocked().IdleAfter()
	var agents []string
	for id, a := range st.agents {
		if st.settingsLocked().IdleClockNeeded(a.rec.Status, st.activity[id].clock()) {
			agents = append(agents, id)
		}
	}
	h.view.unlockSite(st)
	now := h.cfg.Now()
	for _, agent := range agents {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
		_, err := h.store.For(siteID).Create(wctx, store.ActivityKey(siteID, agent), store.ActivityRecord{At: now}, after)
		cancel()
		if err != nil && ctx.Err() == nil {
			h.log.Warn("failed to start an agent's idle clock", "site", siteID, "agent", agent, "err", err)
		}
	}
}

// startAllIdleClocks runs startIdleClocks, on the rule worker, for every
// site with the idle rule on.
func (r *rules) startAllIdleClocks() {
	h := r.h
	for _, st := range h.view.sites.all() {
		st.mu.Lock()
		if st.settingsLocked().IdleAfter() > 0 {
			h.rules.startIdleClocksLocked(st)
		}
		st.mu.Unlock()
	}
}
