package hub

import (
	"reflect"
	"strconv"
	"time"

	"github.com/presencehub/presencehub/hub/change"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Working hours: each schedule in the view has one timer, armed for its next
// boundary. Every replica arms its own from the same bucket state, so every
// replica's widgets flip at the same instant, with no polling and nothing
// but the schedule itself shared.
//
// A boundary is not a bucket entry, so its widget.status events cannot be
// named by a revision. Every replica names them by what it shares with the
// others instead: the site, the schedule's group and the boundary instant
// (boundaryEventID), and stamps them with that instant, not with when its
// timer happened to fire; so every replica builds the same events, and
// JetStream keeps one copy of each, as for entries (package events).

func (v *view) applyHoursLocked(s *site, group string, e entry) {
	h := v.h
	old, had := s.presence.Hours(group)
	if e.deleted {
		if !had {
			return
		}
		s.presence.SetHours(group, nil)
		delete(s.hoursAt, group)
	} else {
		sched, err := protocol.ParseSchedule(e.value)
		if err != nil {
			h.log.Error("ignoring bad schedule", "key", e.key, "err", err)
			return
		}
		if had && equalSchedules(old, sched) {
			return // a reconcile re-applying what the view holds
		}
		s.presence.SetHours(group, sched)
		put(&s.hoursAt, group, e.at)
	}
	h.view.armHoursLocked(s, group)
	s.pendingLocked().hoursChanged(group)
}

// armHoursLocked re-arms group's timer for its schedule's next boundary.
func (v *view) armHoursLocked(s *site, group string) {
	h := v.h
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
		ht := &hoursTimer{at: next}
		ht.t = time.AfterFunc(next.Sub(now), func() { h.rules.onBoundary(s.id, group, ht) })
		put(&s.timers, group, ht)
	}
}

// sendSiteHoursLocked queues the site's open state to its agents' devices
// if it moved since they were last told.
func (v *view) sendSiteHoursLocked(s *site, now time.Time) {
	h := v.h
	hours := siteHours(s.presence, now)
	if reflect.DeepEqual(hours, s.hoursSent) {
		return
	}
	s.hoursSent = hours
	frame := encode(protocol.HoursFrame{Type: "hours", Hours: hours})
	for agent := range s.local {
		h.view.sendToAgentLocked(s, agent, frame)
	}
}

// hoursTimer is a schedule's armed timer; its identity tells a firing timer
// whether it is still the current one.
type hoursTimer struct {
	t  *time.Timer // guarded by the site's mu
	at time.Time   // the boundary it is armed for
}

// onBoundary runs when a schedule's timer fires: the widgets the schedule
// governs are told, their events are published, and the timer is armed for
// the next boundary. Telling the widgets (flushLocked) also checks their
// coverage: a widget whose hours close is no longer uncovered, one whose
// hours open may be (coverage.go).
func (r *rules) onBoundary(siteID, group string, ht *hoursTimer) {
	h := r.h
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		return
	}
	if s.timers[group] != ht {
		h.view.unlockSite(s) // the schedule changed or went away since the timer was armed
		return
	}
	evs := h.rules.boundaryEventsLocked(s, group, ht.at)
	h.rules.signOffLocked(s, group, ht.at)
	h.view.armHoursLocked(s, group)
	s.pendingLocked().hoursChanged(group)
	h.view.unlockSite(s)
	h.publishEvents(h.store.PartitionOf(siteID), 0, evs)
}

// boundaryEventsLocked returns the widget.status events of the boundary at
// of the schedule of hoursGroup ("" for the site's): one for each widget
// the schedule governs whose status, reason or next change differs just
// before at and at at, in group order, stamped at. It returns none without
// events, and none when at is as old as resyncEventAge: the timer fired
// that late (a suspended process), so another replica's copy may have left
// the duplicate window, and a copy now would be a second event.
func (r *rules) boundaryEventsLocked(s *site, hoursGroup string, at time.Time) []events.Event {
	h := r.h
	if !h.derivesEvents(h.store.PartitionOf(s.id)) {
		return nil // not the owner's nor the standby's: the owner publishes them
	}
	if late := h.cfg.Now().Sub(at); late >= resyncEventAge {
		h.log.Warn("working-hours boundary passed too long ago to publish its events", "site", s.id, "group", hoursGroup, "boundary", at, "late", late)
		return nil
	}
	// The widgets the schedule governs, of those an entry of the schedule
	// can move (change.TouchedBy).
	var groups []string
	for _, g := range change.TouchedBy(store.HoursKey(s.id, hoursGroup), nil, nil, nil).Expand(s.presence) {
		if s.presence.GovernedBy(g, hoursGroup) {
			groups = append(groups, g)
		}
	}
	prefix := boundaryEventID(s.id, hoursGroup, at) + "."
	var out []events.Event
	for _, g := range groups {
		// Just before the boundary, the schedule's previous state holds and
		// its next change is the boundary: what the last event said, unless
		// the widget's agents changed since.
		was, wasNext := s.presence.WidgetAt(g, at.Add(-time.Nanosecond))
		w, next := s.presence.WidgetAt(g, at)
		if w == was && next.Equal(wasNext) {
			continue
		}
		out = append(out, events.New(s.id, prefix+events.TypeWidgetStatus+"."+g, events.TypeWidgetStatus, at,
			events.WidgetStatusData{Group: g, Status: w.Status, Reason: w.Reason, NextChange: protocol.OptionalTime(next)}))
	}
	return out
}

// boundaryEventID is what the ids of the events of a working-hours boundary
// start with: "hours.<site>.<group>.<unix seconds>", group "" for the
// site's schedule. Ids are never dotted (presence.ValidateID) and
// boundaries fall on whole minutes, so it names one boundary of one
// schedule; it cannot be taken for the revision that starts an entry's
// event id.
func boundaryEventID(site, group string, at time.Time) string {
	return "hours." + site + "." + group + "." + strconv.FormatInt(at.Unix(), 10)
}

// siteHours is the site's open state under its own working hours.
func siteHours(p *presence.Site, now time.Time) protocol.Hours {
	open, next := p.OpenAt(now)
	return protocol.Hours{Open: open, NextChange: protocol.OptionalTime(next)}
}

func (r *rules) stopTimers() {
	h := r.h
	for _, s := range h.view.sites.all() {
		s.mu.Lock()
		for group, ht := range s.timers {
			ht.t.Stop()
			delete(s.timers, group)
		}
		s.mu.Unlock()
	}
}
