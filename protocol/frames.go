package protocol

import "github.com/presencehub/presencehub/presence"

// The frames the hub sends, in the order of docs/protocol.md. Every message
// is a JSON text message with a type field.

// Who set a status: the "by" of status frames, agent.status events and the
// agents API.
const (
	ByDevice   = "device"
	ByAdmin    = "admin"
	ByIdle     = "idle"
	ByActivity = "activity"
	ByHours    = "hours"
)

// WidgetStatus is the widget_status frame, also the body of the HTTP status
// endpoint.
type WidgetStatus struct {
	Type   string          `json:"type"`
	Site   string          `json:"site"`
	Group  string          `json:"group,omitempty"`
	Status presence.Status `json:"status"`
	Reason presence.Reason `json:"reason"`
	// NextChange is when the working hours next open (while closed) or
	// close (while open); nil when no schedule applies or it never changes.
	NextChange *Time `json:"next_change"`
	At         Time  `json:"at"`
}

// Hours is a site's open or closed state under its working hours.
type Hours struct {
	Open       bool  `json:"open"`
	NextChange *Time `json:"next_change"`
}

// HoursFrame tells an agent's devices that the site opened or closed.
type HoursFrame struct {
	Type string `json:"type"`
	Hours
}

// AgentInfo names an agent in a welcome frame.
type AgentInfo struct {
	Site   string   `json:"site"`
	ID     string   `json:"id"`
	Groups []string `json:"groups"`
}

// DeviceInfo describes one live device of an agent.
type DeviceInfo struct {
	ID    string               `json:"id"`
	Kind  presence.DeviceKind  `json:"kind"`
	Since Time                 `json:"since"`
	State presence.DeviceState `json:"state"` // live or background
}

// Welcome is the first frame an agent device receives.
type Welcome struct {
	Type    string          `json:"type"`
	Session string          `json:"session"`
	Device  string          `json:"device"`
	Agent   AgentInfo       `json:"agent"`
	Status  presence.Status `json:"status"`
	Devices []DeviceInfo    `json:"devices"`
	GraceMS int64           `json:"grace_ms"`
	Hours   Hours           `json:"hours"`
}

// StatusFrame says the agent's status changed. By is who changed it
// (ByDevice, ByAdmin, ...); ByDevice names the device of a device's change,
// ByAgent the admin of an admin's.
type StatusFrame struct {
	Type     string          `json:"type"`
	Status   presence.Status `json:"status"`
	By       string          `json:"by,omitempty"`
	ByDevice string          `json:"by_device,omitempty"`
	ByAgent  string          `json:"by_agent,omitempty"`
	// IdleAfterMS is the idle rule's delay, when the idle rule set the
	// status, so that a device can say why ("after 15 min without
	// activity").
	IdleAfterMS int64  `json:"idle_after_ms,omitempty"`
	Ref         string `json:"ref,omitempty"`
	At          Time   `json:"at"`
}

// DevicesFrame lists the agent's live devices.
type DevicesFrame struct {
	Type    string       `json:"type"`
	Devices []DeviceInfo `json:"devices"`
}

// RosterAgent is one agent in a roster frame.
type RosterAgent struct {
	ID     string          `json:"id"`
	Status presence.Status `json:"status"`
	Groups []string        `json:"groups"`
}

// RosterFrame is the site's roster, sent on subscribe_roster.
type RosterFrame struct {
	Type   string        `json:"type"`
	Agents []RosterAgent `json:"agents"`
	Hours  Hours         `json:"hours"`
}

// AgentFrame tells a roster subscriber that an agent's effective status or
// groups changed.
type AgentFrame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Status presence.Status `json:"status"`
	Groups []string        `json:"groups"`
}

// DeviceInfos describes devices for welcome and devices frames.
func DeviceInfos(devices []presence.Device) []DeviceInfo {
	out := make([]DeviceInfo, 0, len(devices))
	for _, d := range devices {
		out = append(out, DeviceInfo{ID: d.ID, Kind: d.Kind, Since: Time(d.Since), State: d.State})
	}
	return out
}

// NonNil returns s, or an empty slice for nil, so that it encodes as [].
func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
