package hub

import (
	"reflect"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// Working hours: each schedule in the view has one timer, armed for its next
// boundary. Every replica arms its own from the same bucket state, so every
// replica's widgets flip at the same instant, with no polling and nothing
// but the schedule itself shared.

func (h *Hub) applyHoursLocked(s *site, group string, e entry) {
	old, had := s.presence.Hours(group)
	if e.deleted {
		if !had {
			return
		}
		s.presence.SetHours(group, nil)
	} else {
		sched, err := presence.ParseSchedule(e.value)
		if err != nil {
			h.log.Error("ignoring bad schedule", "key", e.key, "err", err)
			return
		}
		if had && equalSchedules(old, sched) {
			return // a reconcile re-applying what the view holds
		}
		s.presence.SetHours(group, sched)
	}
	h.armHoursLocked(s, group)
	s.pending.hoursChanged(group)
}

// armHoursLocked re-arms group's timer for its schedule's next boundary.
func (h *Hub) armHoursLocked(s *site, group string) {
	if ht := s.timers[group]; ht != nil {
		ht.t.Stop()
		delete(s.timers, group)
	}
	sched, ok := s.presence.Hours(group)
	if !ok {
		return
	}
	now := h.cfg.Now()
	if _, next := sched.OpenAt(now); !next.IsZero() {
		ht := &hoursTimer{}
		ht.t = time.AfterFunc(next.Sub(now), func() { h.onBoundary(s.id, group, ht) })
		s.timers[group] = ht
	}
}

// sendSiteHoursLocked queues the site's open state to its agents' devices
// if it moved since they were last told.
func (h *Hub) sendSiteHoursLocked(s *site, now time.Time) {
	hours := siteHours(s.presence, now)
	if reflect.DeepEqual(hours, s.hoursSent) {
		return
	}
	s.hoursSent = hours
	frame := encode(hoursFrame{Type: "hours", Hours: hours})
	for agent := range s.local {
		h.sendToAgentLocked(s, agent, frame)
	}
}

// hoursTimer is a schedule's armed timer; its identity tells a firing timer
// whether it is still the current one.
type hoursTimer struct {
	t *time.Timer // guarded by the site's mu
}

// onBoundary runs when a schedule's timer fires: the widgets the schedule
// governs are told, and the timer is armed for the next boundary.
func (h *Hub) onBoundary(siteID, group string, ht *hoursTimer) {
	s := h.lockExistingSite(siteID)
	if s == nil {
		return
	}
	defer h.unlockSite(s)
	if s.timers[group] != ht {
		return // the schedule changed or went away since the timer was armed
	}
	h.armHoursLocked(s, group)
	s.pending.hoursChanged(group)
}

// siteHours is the site's open state under its own working hours.
func siteHours(p *presence.Site, now time.Time) Hours {
	open, next := p.OpenAt(now)
	return Hours{Open: open, NextChange: optionalTime(next)}
}

func (h *Hub) stopTimers() {
	for _, s := range h.sites.all() {
		s.mu.Lock()
		for group, ht := range s.timers {
			ht.t.Stop()
			delete(s.timers, group)
		}
		s.mu.Unlock()
	}
}
