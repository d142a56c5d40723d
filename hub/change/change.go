// Package change is the record of what applying one bucket entry changed
// on a site: the agent, the device lease and the widgets it moved, each as
// it was before and after. The hub makes one record per entry it applies
// (hub/apply.go) and reads two things off it: the frames for its local
// subscribers (hub/frames.go) and the events (package events, derive.go).
// Which widgets an entry can move is decided once, in Touched. It holds
// types and pure functions only, and runs no goroutines.
package change

import (
	"bytes"
	"slices"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// Record is what one bucket entry changed on a site.
type Record struct {
	Site string
	Key  store.Key
	// Rev is the entry's bucket revision; At when NATS stored it (zero for
	// a removal found only by absence, which has neither).
	Rev uint64
	At  time.Time
	// Partition is the partition of the site, whose bucket Rev is of:
	// revisions of two partitions do not compare.
	Partition int
	// Removed is set when the entry removed the key; Marker is then the
	// purge marker's body (store.ByeMarker, store.RevokedMarker, none for
	// a key its TTL removed).
	Removed bool
	Marker  []byte
	// Agent is the agent of an agent, lease or activity key, before and
	// after the entry.
	Agent Agent
	// Lease is the device lease of a lease key, before and after.
	Lease Lease
	// Widgets are the widgets the entry can move (Touched); their states
	// are filled in only where the reader needs them (events).
	Widgets []Widget
}

// Agent is an agent's change.
type Agent struct{ Before, After AgentState }

// AgentState is an agent as the view holds it.
type AgentState struct {
	// Record is the agent's stored record, if HasRecord.
	Record    store.AgentRecord
	HasRecord bool
	// Effective is the status that counts, Groups the agent's groups.
	Effective presence.Status
	Groups    []string
	// Live lists the live devices, as "id/state" (a move to the
	// background is news to the agent's devices).
	Live []string
}

// StatusChanged reports whether the agent's chosen status changed in a way
// its devices are told of: a new status or a new change of it. A record
// created when the agent first connected holds a default, not a chosen
// status, and is no change.
func (a Agent) StatusChanged() bool {
	b, c := a.Before, a.After
	if !c.HasRecord {
		return false
	}
	if b.HasRecord {
		return b.Record.Status != c.Record.Status || !b.Record.At.Equal(c.Record.At)
	}
	by, _ := c.Record.Author()
	return by != ""
}

// DevicesChanged reports whether the agent's live devices changed.
func (a Agent) DevicesChanged() bool { return !slices.Equal(a.Before.Live, a.After.Live) }

// RosterChanged reports whether the agent's effective status or groups
// changed: what a roster shows.
func (a Agent) RosterChanged() bool {
	return a.Before.Effective != a.After.Effective || !slices.Equal(a.Before.Groups, a.After.Groups)
}

// Lease is a device lease's change.
type Lease struct {
	Before, After store.DeviceRecord
	// Had and Has say whether the lease existed before and after.
	Had, Has bool
}

// Widget is the change of the widget of one group ("" for the site's).
type Widget struct {
	Group         string
	Before, After WidgetState
}

// Moved reports whether the widget's status, reason or next hours
// boundary changed.
func (w Widget) Moved() bool {
	return w.Before.Widget != w.After.Widget || !w.Before.Next.Equal(w.After.Next)
}

// WidgetState is a widget and when its working hours next open or close
// (zero if never).
type WidgetState struct {
	Widget presence.Widget
	Next   time.Time
}

// Marked reports whether the record is a removal whose marker is marker.
func (r Record) Marked(marker []byte) bool { return r.Removed && bytes.Equal(r.Marker, marker) }
