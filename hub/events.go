package hub

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The event stream (docs/events.md): every replica derives events from the
// bucket entries its watch applies live, and publishes them to a JetStream
// stream with a message id made of the entry's revision, the event's type
// and what it is about. Every replica applies the same entries to the same
// state, so every replica builds byte-identical events with the same ids,
// and JetStream keeps the first copy of each within its duplicate window:
// a change is in the stream once as long as any one replica watched it. A
// resync publishes only what it need not guess (Hub.resyncEvents).

// eventCtx is what the events of one entry share.
type eventCtx struct {
	site string
	rev  uint64
	out  []events.Event
}

// add appends an event whose id is "<rev>.<type>.<about>", about being the
// agent, device or group ("" for the site) the event is about: unique per
// entry, since one entry causes at most one event of each type about each.
func (c *eventCtx) add(typ, about string, at time.Time, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("failed to encode event data: %v", err)) // the data types always encode
	}
	c.out = append(c.out, events.Event{
		ID:        strconv.FormatUint(c.rev, 10) + "." + typ + "." + about,
		Type:      typ,
		Site:      c.site,
		Timestamp: protocol.Time(at),
		Data:      b,
		Rev:       c.rev,
	})
}

// eventState is what an entry's events are derived from, taken before and
// after it is applied.
type eventState struct {
	agent     agentBefore
	device    storedDevice
	hasDevice bool
	widgets   map[string]presence.Widget
	nexts     map[string]time.Time
}

// eventGroupsLocked lists the widgets entry e of key k can move, before it
// is applied: the site, the agent's groups before and after it, and, when
// the agent is in no group (it counts for every group) or the entry is
// working hours, every group.
func (h *Hub) eventGroupsLocked(s *site, k store.Key, e entry) []string {
	groups := []string{""}
	all := false
	switch k.Kind {
	case store.KindHours:
		all = true
		groups = append(groups, k.Group)
	case store.KindAgent, store.KindLease:
		st, ok := s.agents[k.Agent]
		all = !ok || len(st.rec.Groups) == 0
		groups = append(groups, st.rec.Groups...)
		if a, ok := s.presence.Agent(k.Agent); ok {
			all = all || len(a.Groups) == 0
			groups = append(groups, a.Groups...)
		}
		if k.Kind == store.KindAgent && !e.deleted {
			if rec, err := store.DecodeAgentRecord(e.value); err == nil {
				all = all || len(rec.Groups) == 0
				groups = append(groups, rec.Groups...)
			}
		}
	}
	if all {
		groups = append(groups, s.presence.Groups()...)
		groups = append(groups, memberGroupsLocked(s)...)
	}
	slices.Sort(groups)
	return slices.Compact(groups)
}

// memberGroupsLocked lists the groups any agent of the site is in, online
// or not. An agent in no group counts for every group, so its changes
// (and the site's hours) move the widget of a group none of whose members
// is online too, which presence.Site.Groups does not list: without these,
// a group's widget that an agent in no group kept online would have no
// event when that agent leaves, and its history (hub/history) would show
// it online for ever.
func memberGroupsLocked(s *site) []string { return s.presence.MemberGroups() }

func (h *Hub) eventStateLocked(s *site, k store.Key, key string, groups []string, at time.Time) eventState {
	st := eventState{widgets: make(map[string]presence.Widget, len(groups)), nexts: make(map[string]time.Time, len(groups))}
	if k.Agent != "" {
		st.agent = h.agentNowLocked(s, k.Agent)
	}
	if k.Kind == store.KindLease {
		st.device, st.hasDevice = s.devices[key]
	}
	for _, g := range groups {
		st.widgets[g], st.nexts[g] = s.presence.WidgetAt(g, at)
	}
	return st
}

// deriveEvents compares an entry's before and after states and returns the
// events it caused, in a fixed order: device, agent status, availability,
// widgets by group.
func deriveEvents(siteID string, k store.Key, e entry, at time.Time, grace time.Duration, groups []string, before, after eventState) []events.Event {
	c := eventCtx{site: siteID, rev: e.rev}
	availabilityCause := ""
	switch k.Kind {
	case store.KindAgent:
		availabilityCause = events.CauseStatusSet
		// As the status frame (view.go): a record created when the
		// agent first connected holds a default, not a chosen status.
		b, a := before.agent, after.agent
		if by, byID := a.rec.Author(); a.hasRec && by != "" && (!b.hasRec || b.rec.Status != a.rec.Status) {
			prev := presence.Offline
			if b.hasRec {
				prev = b.rec.Status
			}
			at = a.rec.At
			c.add(events.TypeAgentStatus, k.Agent, at, events.AgentStatusData{
				Agent: k.Agent, Status: a.rec.Status, Previous: prev, By: events.By{Kind: by, ID: byID},
			})
		}
	case store.KindLease:
		b, a := before.device, after.device
		data := func(kind presence.DeviceKind) events.DeviceData {
			return events.DeviceData{Agent: k.Agent, Device: k.Device, Kind: kind}
		}
		switch {
		case e.deleted && before.hasDevice:
			d := data(b.rec.Kind)
			d.Cause = events.CauseGraceExpired
			switch string(e.value) {
			case string(store.ByeMarker):
				d.Cause = events.CauseBye
			case string(store.RevokedMarker):
				d.Cause = events.CauseRevoked
			}
			availabilityCause = d.Cause
			c.add(events.TypeDeviceEnded, k.Device, at, d)
		case e.deleted:
		case before.hasDevice && (b.rec.State == presence.Lingering || !b.rec.Until.IsZero()) && a.rec.State == presence.Live:
			// The device came back inside its grace, or while its
			// background lease lasted (as a new session of the same
			// device id).
			availabilityCause = events.CauseConnected
			c.add(events.TypeDeviceResumed, k.Device, at, data(a.rec.Kind))
		case !before.hasDevice || b.rec.Session != a.rec.Session:
			availabilityCause = events.CauseConnected
			if before.hasDevice {
				d := data(b.rec.Kind)
				d.Cause = events.CauseReplaced
				c.add(events.TypeDeviceEnded, k.Device, at, d)
			}
			c.add(events.TypeDeviceConnected, k.Device, at, data(a.rec.Kind))
		case b.rec.State == presence.Live && a.rec.State == presence.Lingering:
			d := data(a.rec.Kind)
			until := protocol.Time(at.Add(grace))
			d.GraceUntil = &until
			c.add(events.TypeDeviceDropped, k.Device, at, d)
		case b.rec.Until.IsZero() && !a.rec.Until.IsZero():
			// A device in background mode dropped: its lease lasts the
			// background max, which the writer put in the record.
			d := data(a.rec.Kind)
			until := protocol.Time(a.rec.Until)
			d.GraceUntil = &until
			c.add(events.TypeDeviceDropped, k.Device, at, d)
		}
	}
	if k.Agent != "" && availabilityCause != "" && before.agent.effective != after.agent.effective {
		c.add(events.TypeAgentAvailability, k.Agent, at, events.AgentAvailabilityData{
			Agent: k.Agent, Status: after.agent.effective, Previous: before.agent.effective, Cause: availabilityCause,
		})
	}
	for _, g := range groups {
		w, next := after.widgets[g], after.nexts[g]
		if w == before.widgets[g] && next.Equal(before.nexts[g]) {
			continue
		}
		c.add(events.TypeWidgetStatus, g, at, events.WidgetStatusData{Group: g, Status: w.Status, Reason: w.Reason, NextChange: protocol.OptionalTime(next)})
	}
	return c.out
}

// appliedRev returns the highest bucket revision the view has applied.
func (h *Hub) appliedRev() uint64 {
	h.applied.mu.Lock()
	defer h.applied.mu.Unlock()
	return h.applied.rev
}

// isLoaded reports whether the view has loaded once.
func (h *Hub) isLoaded() bool {
	select {
	case <-h.loaded:
		return true
	default:
		return false
	}
}
