package hub

import (
	"slices"
	"sync"
	"time"

	"github.com/presencehub/presencehub/hub/change"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The frames for local subscribers, derived from the change records of the
// entries applied to a site since it was last told (pendingChanges) when
// the site is unlocked: a run of entries applied together (a reconcile)
// tells subscribers only where things ended up.

// pendingChanges is what entries applied to a site changed since the site
// was last told, gathered from their change records: the agents touched,
// as they were before the first of those entries, the widgets the entries
// can move, the groups the touched agents were or are in (for the coverage
// check), the groups whose working hours changed or passed a boundary,
// and whether coverage keys or the settings changed (coverage.go).
//
// A site holds pending changes only between applying entries and telling
// them (flushLocked): they are taken from a pool when a change comes
// (site.pendingLocked) and given back, emptied, once told, so that a site
// nothing happens to holds none (a partition's watch holds every site of
// the partition), and a busy one reuses their maps.
type pendingChanges struct {
	agents map[string]change.AgentState
	// live are the agents whose record came in a live entry of the watch
	// (entry.live), not in a snapshot: only their status changes count in
	// presencehub_propagation_seconds. A snapshot's records were set
	// before the replica (re)started watching, maybe long before, and a
	// restart with no change since must not look like slow propagation.
	live        map[string]bool
	touched     change.Touched
	agentGroups []string
	hours       map[string]bool
	coverage    bool
	// allGroups asks the coverage check for the groups of every agent.
	allGroups bool
}

var pendingPool = sync.Pool{New: func() any { return new(pendingChanges) }}

// maxPooled bounds the agents and groups pending changes may have held to
// go back to the pool: larger ones (a reconcile of a large site) are left
// to the GC, so that the pool's maps stay cheap to clear and small to keep.
const maxPooled = 64

// pendingLocked returns the site's pending changes, taking them from the
// pool if it has none.
func (s *site) pendingLocked() *pendingChanges {
	if s.pending == nil {
		s.pending = pendingPool.Get().(*pendingChanges)
	}
	return s.pending
}

// releasePendingLocked empties the site's pending changes and gives them
// back to the pool.
func (s *site) releasePendingLocked() {
	p := s.pending
	if p == nil {
		return
	}
	s.pending = nil
	if len(p.agents) > maxPooled || len(p.live) > maxPooled || len(p.hours) > maxPooled ||
		cap(p.touched.Groups) > 4*maxPooled || cap(p.agentGroups) > 4*maxPooled {
		return
	}
	clear(p.agents)
	clear(p.live)
	clear(p.hours)
	clear(p.touched.Groups)
	clear(p.agentGroups)
	p.touched = change.Touched{Groups: p.touched.Groups[:0]}
	p.agentGroups = p.agentGroups[:0]
	p.coverage, p.allGroups = false, false
	pendingPool.Put(p)
}

// add gathers a change record and the widgets its entry can move; live
// says the entry came from the live watch.
func (p *pendingChanges) add(rec change.Record, t change.Touched, live bool) {
	if live && rec.Key.Kind == store.KindAgent {
		if p.live == nil {
			p.live = make(map[string]bool)
		}
		p.live[rec.Key.Agent] = true
	}
	if rec.Key.Agent != "" && (rec.Key.Kind == store.KindAgent || rec.Key.Kind == store.KindLease) {
		if _, ok := p.agents[rec.Key.Agent]; !ok {
			if p.agents == nil {
				p.agents = make(map[string]change.AgentState)
			}
			p.agents[rec.Key.Agent] = rec.Agent.Before
		}
		p.agentGroups = append(p.agentGroups, rec.Agent.Before.Groups...)
		p.agentGroups = append(p.agentGroups, rec.Agent.After.Groups...)
	}
	// An agent's or a lease's entry moves a widget only through the
	// agent's effective status or groups: a lease refreshed, the agent
	// unchanged, recomputes none (it is the most common entry of all).
	agentEntry := rec.Key.Kind == store.KindAgent || rec.Key.Kind == store.KindLease
	if (t.All || len(t.Groups) > 0) && (!agentEntry || rec.Agent.RosterChanged()) {
		p.touched.Add(t)
	}
}

func (p *pendingChanges) coverageChanged() { p.coverage = true }

func (p *pendingChanges) settingsChanged() { p.coverage, p.allGroups = true, true }

func (p *pendingChanges) hoursChanged(group string) {
	if p.hours == nil {
		p.hours = make(map[string]bool)
	}
	p.hours[group] = true
}

// empty reports whether p holds no change; nil holds none.
func (p *pendingChanges) empty() bool {
	return p == nil || len(p.agents) == 0 && !p.touched.All && len(p.touched.Groups) == 0 && len(p.hours) == 0 && !p.coverage
}

// flushLocked turns the site's pending changes into frames in its outbox,
// in this order: each touched agent's status and device frames to its own
// devices, then widget frames where a widget moved, roster frames, and the
// site's open state to its agents where that moved; last it checks the
// widgets' coverage (coverage.go).
func (v *view) flushLocked(s *site) {
	h := v.h
	p := s.pending
	if p == nil {
		return
	}
	defer s.releasePendingLocked()
	if p.empty() {
		return
	}
	now := h.cfg.Now()
	agents := make([]string, 0, len(p.agents))
	for agent := range p.agents {
		agents = append(agents, agent)
	}
	slices.Sort(agents)
	type rosterChange struct {
		agent string
		after change.AgentState
	}
	var roster []rosterChange
	for _, agent := range agents {
		ch := change.Agent{Before: p.agents[agent], After: h.view.agentNowLocked(s, agent)}
		if ch.StatusChanged() {
			rec := ch.After.Record
			by, byID := rec.Author()
			f := protocol.StatusFrame{Type: "status", Status: rec.Status, By: by, ByDevice: rec.ByDevice, Ref: rec.Ref, At: protocol.Time(rec.At)}
			switch by {
			case protocol.ByAdmin:
				f.ByAgent = byID
			case protocol.ByIdle:
				f.IdleAfterMS = s.settingsLocked().IdleAfter().Milliseconds()
			}
			h.view.sendToAgentLocked(s, agent, encode(f))
			if p.live[agent] {
				h.metrics.observePropagation(rec.At, now)
			}
		}
		if ch.DevicesChanged() {
			h.view.sendDevicesLocked(s, agent)
		}
		if ch.RosterChanged() {
			roster = append(roster, rosterChange{agent, ch.After})
		}
	}
	h.view.refreshWidgetsLocked(s, now, func(group string) bool {
		for hoursGroup := range p.hours {
			if s.presence.GovernedBy(group, hoursGroup) {
				return true
			}
		}
		return p.touched.Has(group)
	})
	if s.roster.len() > 0 {
		for _, rc := range roster {
			h.fanout.enqueueLocked(s, encode(protocol.AgentFrame{Type: "agent", ID: rc.agent, Status: rc.after.Effective, Groups: protocol.NonNil(rc.after.Groups)}), s.roster.snapshot())
		}
	}
	if len(p.hours) > 0 {
		h.view.sendSiteHoursLocked(s, now)
	}
	h.rules.checkCoverageLocked(s, now)
}

// refreshWidgetsLocked recomputes the widgets of the site's groups for
// which touched reports true, and queues a frame to the subscribers of each
// one whose status, reason or next hours boundary moved.
func (v *view) refreshWidgetsLocked(s *site, now time.Time, touched func(group string) bool) {
	h := v.h
	for group, t := range s.widgets {
		if !touched(group) {
			continue
		}
		w, next := s.presence.WidgetAt(group, now)
		if w == t.widget && next.Equal(t.next) {
			continue
		}
		t.widget, t.next = w, next
		t.status, t.frame = widgetFrame(s.id, group, w, next, now)
		h.fanout.enqueueLocked(s, t.frame, t.subs.snapshot())
	}
}

func widgetFrame(site, group string, w presence.Widget, next, now time.Time) (protocol.WidgetStatus, *Frame) {
	ws := protocol.WidgetStatus{Type: "widget_status", Site: site, Group: group, Status: w.Status, Reason: w.Reason, NextChange: protocol.OptionalTime(next), At: protocol.Time(now)}
	return ws, encode(ws)
}

func (v *view) sendDevicesLocked(s *site, agent string) {
	h := v.h
	if len(s.local[agent]) == 0 {
		return
	}
	var devices []presence.Device
	if a, ok := s.presence.Agent(agent); ok {
		devices = a.LiveDevices()
	}
	h.view.sendToAgentLocked(s, agent, encode(protocol.DevicesFrame{Type: "devices", Devices: protocol.DeviceInfos(devices)}))
}

func (v *view) sendToAgentLocked(s *site, agent string, f *Frame) {
	h := v.h
	sessions := s.local[agent]
	if len(sessions) == 0 {
		return
	}
	to := make([]Subscriber, 0, len(sessions))
	for sess := range sessions {
		to = append(to, sess.sub)
	}
	h.fanout.enqueueLocked(s, f, to)
}
