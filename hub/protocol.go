package hub

import (
	"encoding/json"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// The frames the hub sends are JSON text messages with a type field; see
// docs/protocol.md. Each is encoded once and the same bytes are handed to
// every subscriber that should receive it.

// TimeFormat is RFC 3339 with milliseconds, the format of every time on the
// wire.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Time is a time.Time that encodes in TimeFormat, in UTC.
type Time time.Time

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeFormat) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var tt time.Time
	if err := tt.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = Time(tt)
	return nil
}

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

type hoursFrame struct {
	Type string `json:"type"`
	Hours
}

func optionalTime(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	tt := Time(t)
	return &tt
}

// AgentInfo names an agent in a welcome frame.
type AgentInfo struct {
	Site   string   `json:"site"`
	ID     string   `json:"id"`
	Groups []string `json:"groups"`
}

// DeviceInfo describes one live device of an agent.
type DeviceInfo struct {
	ID    string              `json:"id"`
	Kind  presence.DeviceKind `json:"kind"`
	Since Time                `json:"since"`
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

type statusFrame struct {
	Type     string          `json:"type"`
	Status   presence.Status `json:"status"`
	ByDevice string          `json:"by_device"`
	Ref      string          `json:"ref,omitempty"`
	At       Time            `json:"at"`
}

type devicesFrame struct {
	Type    string       `json:"type"`
	Devices []DeviceInfo `json:"devices"`
}

// RosterAgent is one agent in a roster frame.
type RosterAgent struct {
	ID     string          `json:"id"`
	Status presence.Status `json:"status"`
	Groups []string        `json:"groups"`
}

type rosterFrame struct {
	Type   string        `json:"type"`
	Agents []RosterAgent `json:"agents"`
	Hours  Hours         `json:"hours"`
}

type agentFrame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Status presence.Status `json:"status"`
	Groups []string        `json:"groups"`
}

func deviceInfos(devices []presence.Device) []DeviceInfo {
	out := make([]DeviceInfo, 0, len(devices))
	for _, d := range devices {
		out = append(out, DeviceInfo{ID: d.ID, Kind: d.Kind, Since: Time(d.Since)})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// encode marshals a frame; the frame types here cannot fail to encode.
func encode(v any) *Frame {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hub: failed to encode frame: " + err.Error())
	}
	return NewFrame(b)
}
