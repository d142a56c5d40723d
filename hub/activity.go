package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/presence"
)

// Activity and the idle rule (docs/protocol.md, site settings). An agent's
// activity is the key i.<site>.<agent>, written with a TTL of the site's
// idle.after whenever one of the agent's devices shows activity (a hello,
// an activity message, choosing online), at most once per after/4. The
// key's expiry is the idle deadline, and NATS keeps it: every replica's
// watch sees the expiry marker, and each one that does tries to set the
// agent's status to idle.status with a compare-and-set on the agent
// record, so exactly one change lands, whichever replicas are alive. No
// replica runs a timer for it.

// activityRecord is the stored value of an activity key.
type activityRecord struct {
	At     time.Time `json:"at"`
	Device string    `json:"device,omitempty"`
}

// storedActivity is what the view knows of an agent's activity.
type storedActivity struct {
	at      time.Time // the last activity seen; kept after the key expires
	present bool      // the key exists: the idle deadline has not passed
}

// Who sets a status besides devices and admins.
const (
	ByIdle     = "idle"
	ByActivity = "activity"
	ByHours    = "hours"
)

func (h *Hub) applyActivityLocked(s *site, k parsedKey, e entry) {
	if e.deleted {
		a, ok := s.activity[k.agent]
		if !ok {
			return
		}
		a.present = false
		s.activity[k.agent] = a
		// A marker read from the bucket is the expiry (or its replay
		// after a restart); a removal found only by absence in a
		// snapshot carries no time and is not acted on: the key's
		// marker, if still there, is.
		if !e.at.IsZero() && s.settings.IdleAfter() > 0 {
			site, agent, rev := s.id, k.agent, e.rev
			h.goBackground(func(ctx context.Context) { h.idleDeadline(ctx, site, agent, rev) })
		}
		return
	}
	var rec activityRecord
	if err := json.Unmarshal(e.value, &rec); err != nil {
		h.log.Error("ignoring bad activity record", "key", e.key, "err", err)
		return
	}
	s.activity[k.agent] = storedActivity{at: rec.At, present: true}
}

// idleDeadline runs when an agent's activity key expired, the expiry
// being bucket revision deadline: unless activity came back meanwhile, an
// agent still online gets the idle status. Every replica that saw the
// expiry runs it, each with a compare-and-set on the agent record as it
// read it, and only on a record older than the expiry: a record written
// since (the rule applied by another replica, activity bringing the agent
// back, a status chosen by hand) is newer than the deadline, and a replica
// that comes late must not apply the rule to it.
func (h *Hub) idleDeadline(ctx context.Context, siteID, agent string, deadline uint64) {
	settings := h.Settings(siteID)
	if settings.IdleAfter() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
	defer cancel()
	// The watch may run behind: ask the bucket whether the agent was
	// active again since.
	_, err := h.kv.Get(ctx, activityKey(siteID, agent))
	h.metrics.kvOp("get", ignoreNotFound(err))
	switch {
	case err == nil:
		return
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		h.log.Warn("failed to check an agent's activity at its idle deadline", "site", siteID, "agent", agent, "err", err)
		return
	}
	key := agentKey(siteID, agent)
	var e jetstream.KeyValueEntry
	err = h.retry(ctx, func(ctx context.Context) (err error) {
		e, err = h.kv.Get(ctx, key)
		h.metrics.kvOp("get", ignoreNotFound(err))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if e == nil || err != nil {
		if err != nil {
			h.log.Warn("failed to read an agent at its idle deadline", "site", siteID, "agent", agent, "err", err)
		}
		return
	}
	rec, err := decodeAgentRecord(e.Value())
	if err != nil || e.Revision() > deadline || rec.Status != presence.Online {
		return
	}
	rec.Status = settings.Idle.Status
	rec.By, rec.ByID, rec.ByDevice, rec.Ref = ByIdle, "", "", ""
	rec.At = h.cfg.Now()
	b, _ := json.Marshal(rec)
	err = h.retry(ctx, func(ctx context.Context) error {
		_, err := h.kv.Update(ctx, key, b, e.Revision())
		h.metrics.kvOp("update", err)
		return err
	})
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A conflict is another write since the read: newer than the
		// deadline, so the rule does not apply to it either.
		h.log.Warn("failed to apply the idle rule", "site", siteID, "agent", agent, "err", err)
	}
}

// writeTimeout bounds one background write of the idle rules.
func writeTimeout(h *Hub) time.Duration { return writeAttemptTimeout + max(h.cfg.WriteRetry, 0) }

// Activity records that the session's person interacted. It returns at
// once; the write, if one is due, runs in the background.
func (s *Session) Activity() { s.h.activity(s.site, s.agent, s.device) }

// activity notes activity of a device of agent: the activity key is
// rewritten when the last write is older than after/4, and an agent whose
// status the idle rule set is online again.
func (h *Hub) activity(siteID, agent, device string) {
	st := h.lockExistingSite(siteID)
	if st == nil {
		return
	}
	after := st.settings.IdleAfter()
	now := h.cfg.Now()
	write := false
	if after > 0 {
		last := st.activity[agent]
		wrote := st.activityWritten[agent]
		if !last.present || now.Sub(last.at) >= after/4 {
			if now.Sub(wrote) >= after/4 {
				st.activityWritten[agent] = now
				write = true
			}
		}
	}
	restore := false
	if a, ok := st.agents[agent]; ok && a.rec.By == ByIdle && a.rec.Status != presence.Online {
		restore = true
	}
	h.unlockSite(st)
	if !write && !restore {
		return
	}
	h.goBackground(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
		defer cancel()
		if write {
			if err := h.writeActivity(ctx, siteID, agent, device, now, after); err != nil {
				h.log.Warn("failed to record activity", "site", siteID, "agent", agent, "err", err)
			}
		}
		if restore {
			h.restoreFromIdle(ctx, siteID, agent, device)
		}
	})
}

// restoreFromIdle sets online an agent whose status the idle rule set; a
// status chosen by hand (or by an admin, or at closing time) is left alone.
func (h *Hub) restoreFromIdle(ctx context.Context, siteID, agent, device string) {
	err := h.updateAgent(ctx, agentKey(siteID, agent), func(rec *agentRecord, exists bool) bool {
		if !exists || rec.By != ByIdle || rec.Status == presence.Online {
			return false
		}
		rec.Status = presence.Online
		rec.By, rec.ByID, rec.ByDevice, rec.Ref = ByActivity, device, "", ""
		rec.At = h.cfg.Now()
		return true
	})
	if err != nil {
		h.log.Warn("failed to restore an agent from idle", "site", siteID, "agent", agent, "err", err)
	}
}

// writeActivity stores an activity key that expires after after.
func (h *Hub) writeActivity(ctx context.Context, siteID, agent, device string, at time.Time, after time.Duration) error {
	b, _ := json.Marshal(activityRecord{At: at, Device: device})
	msg := &nats.Msg{Subject: h.kvSubject + activityKey(siteID, agent), Data: b}
	err := h.retry(ctx, func(ctx context.Context) error {
		_, err := h.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(after))
		h.metrics.kvOp("activity", err)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to write activity: %w", err)
	}
	return nil
}

// startIdleClocks starts the idle deadline of every online agent of the
// site that has none: after the idle rule is turned on (the clock starts
// then, not at the agent's last status change), and after a load, for
// agents whose key expired while no replica watched. Create refuses a key
// that exists, so replicas doing this together write each key once.
func (h *Hub) startIdleClocks(ctx context.Context, siteID string) {
	st := h.lockExistingSite(siteID)
	if st == nil {
		return
	}
	after := st.settings.IdleAfter()
	var agents []string
	if after > 0 {
		for id, a := range st.agents {
			if a.rec.Status == presence.Online && !st.activity[id].present {
				agents = append(agents, id)
			}
		}
	}
	h.unlockSite(st)
	now := h.cfg.Now()
	for _, agent := range agents {
		b, _ := json.Marshal(activityRecord{At: now})
		wctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
		_, err := h.kv.Create(wctx, activityKey(siteID, agent), b, jetstream.KeyTTL(after))
		cancel()
		h.metrics.kvOp("create", ignoreExists(err))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			h.log.Warn("failed to start an agent's idle clock", "site", siteID, "agent", agent, "err", err)
		}
	}
}

// startAllIdleClocks runs startIdleClocks, in the background, for every
// site with the idle rule on.
func (h *Hub) startAllIdleClocks() {
	for _, st := range h.sites.all() {
		st.mu.Lock()
		on := st.settings.IdleAfter() > 0
		st.mu.Unlock()
		if on {
			id := st.id
			h.goBackground(func(ctx context.Context) { h.startIdleClocks(ctx, id) })
		}
	}
}

func ignoreExists(err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return err
}
