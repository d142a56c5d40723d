package client

import (
	"slices"
	"time"

	"github.com/presencehub/presencehub/protocol"
)

// An agent's statuses, for SetStatus and the Status fields.
const (
	Online  = "online"
	Busy    = "busy"
	Offline = "offline"
)

// Kinds of device, for Device.Kind.
const (
	Desktop = "desktop"
	Mobile  = "mobile"
	Web     = "web"
)

// States of a device in Devices lists: Live, or Background for a mobile app
// in background mode (see Client.Background).
const (
	Live       = "live"
	Background = "background"
)

// Who changed a status, in Status.By. Show an unknown By as a change made
// elsewhere.
const (
	ByDevice   = protocol.ByDevice   // a device of the agent; ByDevice names it
	ByAdmin    = protocol.ByAdmin    // an admin of the site; ByAgent names them
	ByIdle     = protocol.ByIdle     // the site's idle rule; IdleAfter says after how long
	ByActivity = protocol.ByActivity // activity brought the agent back from idle
	ByHours    = protocol.ByHours    // signed off when the working hours closed
)

// Event is one of the values a Client sends on its Events channel: Welcome,
// Status, Devices, Roster, AgentStatus, Hours, State or ErrorEvent. Switch
// on its type.
type Event interface{ event() }

// Welcome is the hub's welcome: the start of a session, on Dial and on every
// reconnect (a token refresh included). It is an Event, and what
// Client.Welcome returns.
type Welcome struct {
	// Session is this socket's session id; Device the device id, which the
	// client keeps and sends on every reconnect so that the grace covers
	// the gap.
	Session string
	Device  string
	Agent   Agent
	// Status is the agent's stored status, which the device adopts:
	// connecting never changes it.
	Status string
	// Devices are the agent's devices with a live session, this one
	// included, oldest first.
	Devices []DeviceInfo
	// Grace is how long the agent keeps their status when their last
	// device drops without Bye.
	Grace time.Duration
	// Hours is the site's open state under its working hours.
	Hours Hours
}

// Agent is who the token says the device belongs to.
type Agent struct {
	Site   string
	ID     string
	Groups []string
}

// DeviceInfo is one live device of the agent.
type DeviceInfo struct {
	ID   string
	Kind string
	// Since is when the device's current run of sessions began (a
	// reconnect inside the grace keeps it).
	Since time.Time
	// State is Live, or Background for a mobile app in background mode.
	State string
}

// Hours is the site's open state under its working hours: NextChange is
// when it next opens (while closed) or closes (while open), the zero time
// without a schedule. It is an Event when the hub sends it on its own (at a
// boundary of the working hours, or when they are edited).
type Hours struct {
	Open       bool
	NextChange time.Time
}

// Status is the hub's status frame: the agent's status changed, on any of
// their devices or by a rule. It is an Event, and the answer of SetStatus.
type Status struct {
	Status string
	// By says who changed it: ByDevice, ByAdmin, ByIdle, ByActivity or
	// ByHours.
	By string
	// ByDevice is the device that chose it (By == ByDevice); ByAgent the
	// admin who set it (By == ByAdmin).
	ByDevice string
	ByAgent  string
	// IdleAfter is the idle rule's delay, when the idle rule set it.
	IdleAfter time.Duration
	// Ref is the ref of the set_status that caused it, if any.
	Ref string
	At  time.Time
}

// Devices lists the agent's live devices, after one joined or left or
// went in or out of background mode.
type Devices struct {
	Devices []DeviceInfo
}

// Roster is the site's roster: every agent of the site with their effective
// status, sorted by id. It answers SubscribeRoster, and comes again after
// every reconnect of a client that subscribed.
type Roster struct {
	Agents []AgentStatus
	Hours  Hours
}

// AgentStatus is one agent's effective status and groups: an entry of a
// Roster, and an Event each time they change, once subscribed.
type AgentStatus struct {
	ID     string
	Status string
	Groups []string
}

// ConnState is the state of a Client's connection.
type ConnState int

const (
	// Connecting: the socket dropped; the client reconnects with backoff.
	Connecting ConnState = iota
	// Open: connected and welcomed.
	Open
	// Closed: the client stopped for good (Close, Bye, or a close code it
	// does not come back from); the Events channel closes after it.
	Closed
)

func (s ConnState) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Open:
		return "open"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// State says the connection changed. Err says why it dropped (Connecting)
// or stopped (Closed): a *CloseError for the hub's close codes, nil after
// Close or a successful Bye.
type State struct {
	State ConnState
	Err   error
	// Delay is how long the client waits before its next attempt
	// (Connecting).
	Delay time.Duration
}

// ErrorEvent is an error that answers no call: an error frame the hub sent
// without a ref of a pending call (an *Error; one the hub sends just before
// closing the socket comes again as the Frame of the State's *CloseError),
// or a token refresh that failed.
type ErrorEvent struct {
	Err error
}

func (Welcome) event()     {}
func (Status) event()      {}
func (Devices) event()     {}
func (Roster) event()      {}
func (AgentStatus) event() {}
func (Hours) event()       {}
func (State) event()       {}
func (ErrorEvent) event()  {}

// Conversions from the wire types.

func fromTime(t protocol.Time) time.Time { return time.Time(t) }

func fromOptionalTime(t *protocol.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Time(*t)
}

func fromHours(h protocol.Hours) Hours {
	return Hours{Open: h.Open, NextChange: fromOptionalTime(h.NextChange)}
}

func fromDevices(ds []protocol.DeviceInfo) []DeviceInfo {
	out := make([]DeviceInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeviceInfo{ID: d.ID, Kind: string(d.Kind), Since: fromTime(d.Since), State: string(d.State)})
	}
	return out
}

func fromWelcome(w protocol.Welcome) Welcome {
	return Welcome{
		Session: w.Session,
		Device:  w.Device,
		Agent:   Agent{Site: w.Agent.Site, ID: w.Agent.ID, Groups: slices.Clone(w.Agent.Groups)},
		Status:  string(w.Status),
		Devices: fromDevices(w.Devices),
		Grace:   time.Duration(w.GraceMS) * time.Millisecond,
		Hours:   fromHours(w.Hours),
	}
}

func fromStatus(f protocol.StatusFrame) Status {
	return Status{
		Status: string(f.Status), By: f.By, ByDevice: f.ByDevice, ByAgent: f.ByAgent,
		IdleAfter: time.Duration(f.IdleAfterMS) * time.Millisecond, Ref: f.Ref, At: fromTime(f.At),
	}
}

func fromRoster(f protocol.RosterFrame) Roster {
	r := Roster{Agents: make([]AgentStatus, 0, len(f.Agents)), Hours: fromHours(f.Hours)}
	for _, a := range f.Agents {
		r.Agents = append(r.Agents, AgentStatus{ID: a.ID, Status: string(a.Status), Groups: a.Groups})
	}
	return r
}

// clone returns a copy of w that shares no slice with it.
func (w Welcome) clone() Welcome {
	w.Agent.Groups = slices.Clone(w.Agent.Groups)
	w.Devices = slices.Clone(w.Devices)
	return w
}
