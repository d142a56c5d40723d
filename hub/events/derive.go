package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/presencehub/presencehub/hub/change"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Every replica derives the same events from the same change record (the
// entries its watch applies live are the same on every replica, applied to
// the same state), with ids made of the entry's revision, the event's type
// and what it is about: byte-identical copies with the same ids, of which
// JetStream keeps the first within its duplicate window.

// Derive returns the events of one change, in a fixed order: device, agent
// status, availability, widgets by group. grace is how long a dropped
// device's lease lasts.
func Derive(rec change.Record, grace time.Duration) []Event {
	c := deriving{site: rec.Site, rev: rec.Rev, partition: rec.Partition}
	at := rec.At
	k := rec.Key
	availabilityCause := ""
	switch k.Kind {
	case store.KindAgent:
		availabilityCause = CauseStatusSet
		// As the status frame: a record created when the agent first
		// connected holds a default, not a chosen status.
		b, a := rec.Agent.Before, rec.Agent.After
		if by, byID := a.Record.Author(); a.HasRecord && by != "" && (!b.HasRecord || b.Record.Status != a.Record.Status) {
			prev := presence.Offline
			if b.HasRecord {
				prev = b.Record.Status
			}
			at = a.Record.At
			c.add(TypeAgentStatus, k.Agent, at, AgentStatusData{
				Agent: k.Agent, Status: a.Record.Status, Previous: prev, By: By{Kind: by, ID: byID},
			})
		}
	case store.KindLease:
		availabilityCause = c.lease(rec, grace)
	}
	if k.Agent != "" && availabilityCause != "" && rec.Agent.Before.Effective != rec.Agent.After.Effective {
		c.add(TypeAgentAvailability, k.Agent, at, AgentAvailabilityData{
			Agent: k.Agent, Status: rec.Agent.After.Effective, Previous: rec.Agent.Before.Effective, Cause: availabilityCause,
		})
	}
	for _, w := range rec.Widgets {
		if !w.Moved() {
			continue
		}
		c.add(TypeWidgetStatus, w.Group, at, WidgetStatusData{Group: w.Group, Status: w.After.Widget.Status,
			Reason: w.After.Widget.Reason, NextChange: protocol.OptionalTime(w.After.Next)})
	}
	return c.out
}

// lease adds the device event of a lease's change and returns the cause of
// the availability change it may make ("" for none).
func (c *deriving) lease(rec change.Record, grace time.Duration) (availabilityCause string) {
	k, at := rec.Key, rec.At
	l := rec.Lease
	b, a := l.Before, l.After
	data := func(kind presence.DeviceKind) DeviceData {
		return DeviceData{Agent: k.Agent, Device: k.Device, Kind: kind}
	}
	switch {
	case rec.Removed && l.Had:
		d := data(b.Kind)
		d.Cause = CauseGraceExpired
		switch {
		case rec.Marked(store.ByeMarker):
			d.Cause = CauseBye
		case rec.Marked(store.RevokedMarker):
			d.Cause = CauseRevoked
		}
		c.add(TypeDeviceEnded, k.Device, at, d)
		return d.Cause
	case rec.Removed:
		return ""
	case l.Had && (b.State == presence.Lingering || !b.Until.IsZero()) && a.State == presence.Live:
		// The device came back inside its grace, or while its background
		// lease lasted (as a new session of the same device id).
		c.add(TypeDeviceResumed, k.Device, at, data(a.Kind))
		return CauseConnected
	case !l.Had || b.Session != a.Session:
		if l.Had {
			d := data(b.Kind)
			d.Cause = CauseReplaced
			c.add(TypeDeviceEnded, k.Device, at, d)
		}
		c.add(TypeDeviceConnected, k.Device, at, data(a.Kind))
		return CauseConnected
	case b.State == presence.Live && a.State == presence.Lingering:
		d := data(a.Kind)
		until := protocol.Time(at.Add(grace))
		d.GraceUntil = &until
		c.add(TypeDeviceDropped, k.Device, at, d)
	case b.Until.IsZero() && !a.Until.IsZero():
		// A device in background mode dropped: its lease lasts the
		// background max, which the writer put in the record.
		d := data(a.Kind)
		until := protocol.Time(a.Until)
		d.GraceUntil = &until
		c.add(TypeDeviceDropped, k.Device, at, d)
	}
	return ""
}

// deriving is what the events of one change share.
type deriving struct {
	site      string
	rev       uint64
	partition int
	out       []Event
}

// add appends an event whose id is "<rev>.<type>.<about>", about being the
// agent, device or group ("" for the site) the event is about: unique per
// entry, since one entry causes at most one event of each type about each.
// A site of partition p > 0 has its keys in a bucket of its own, whose
// revisions start again: its ids start with "p<p>-".
func (c *deriving) add(typ, about string, at time.Time, data any) {
	id := strconv.FormatUint(c.rev, 10) + "." + typ + "." + about
	if c.partition > 0 {
		id = "p" + strconv.Itoa(c.partition) + "-" + id
	}
	c.out = append(c.out, New(c.site, id, typ, at, data))
	c.out[len(c.out)-1].Rev = c.rev
}

// New returns an event of site with id and type typ at time at, its data
// encoded.
func New(site, id, typ string, at time.Time, data any) Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("failed to encode event data: %v", err)) // the data types always encode
	}
	return Event{ID: id, Type: typ, Site: site, Timestamp: protocol.Time(at), Data: b}
}
