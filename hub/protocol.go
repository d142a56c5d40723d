package hub

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/internal/strictjson"
	"github.com/presencehub/presencehub/presence"
)

// The wire protocol's messages, both directions, in the order of
// docs/protocol.md: what agent devices send (ClientMessage), what they get
// (welcome, status, devices, roster, agent, hours, error), and what widgets
// get (widget_status, also the body of the HTTP status endpoint). Every
// message is a JSON text message with a type field. A frame the hub sends
// is encoded once and the same bytes are handed to every subscriber that
// should receive it.

// ClientMessage is any message an agent device sends; which fields matter
// depends on Type: hello (Token, Device), set_status (Status, Ref),
// subscribe_roster, bye.
type ClientMessage struct {
	Type   string       `json:"type"`
	Token  string       `json:"token,omitempty"`
	Device *HelloDevice `json:"device,omitempty"`
	Status string       `json:"status,omitempty"`
	Ref    string       `json:"ref,omitempty"`
}

// HelloDevice is what a device says about itself in its hello.
type HelloDevice struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// MaxRefLen bounds the ref a client may attach; it is echoed to every
// device of the agent.
const MaxRefLen = 128

// DecodeClientMessage parses one text message from an agent device. Fields
// it does not know are ignored (a newer client may send more), but a known
// key spelled in another case, or given twice, is refused: the two would
// read differently to the client and to the hub.
func DecodeClientMessage(b []byte) (ClientMessage, error) {
	var m ClientMessage
	if err := strictjson.DecodeMessage(b, &m); err != nil {
		return m, fmt.Errorf("not a valid JSON message: %v", err)
	}
	if m.Type == "" {
		return m, fmt.Errorf("missing type")
	}
	if len(m.Ref) > MaxRefLen {
		return m, fmt.Errorf("ref longer than %d bytes", MaxRefLen)
	}
	return m, nil
}

// Error codes of error frames and of HTTP error bodies.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeRateLimited  = "rate_limited"
	CodeInternal     = "internal"
	// CodeUnavailable: NATS did not confirm a change, which may still
	// apply; a status frame with the change's ref says it did.
	CodeUnavailable = "unavailable"
	// CodeTooManyConnections answers a widget upgrade (HTTP 429) from a
	// client address that already holds its most widget sockets.
	CodeTooManyConnections = "too_many_connections"
)

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

// EncodeError returns the error frame for one device: code, a message for
// people, and the ref of the message it answers, if any.
func EncodeError(code, message, ref string) []byte {
	b, _ := json.Marshal(errorFrame{Type: "error", Code: code, Message: message, Ref: ref})
	return b
}

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

// statusFrame says the agent's status changed. By is who changed it
// (ByDevice, ByAdmin, ...); ByDevice names the device of a device's change,
// ByAgent the admin of an admin's.
type statusFrame struct {
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
		out = append(out, DeviceInfo{ID: d.ID, Kind: d.Kind, Since: Time(d.Since), State: d.State})
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
