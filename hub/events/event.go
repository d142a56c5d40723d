package events

import (
	"encoding/json"
	"time"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Event types, as in docs/events.md.
const (
	TypeAgentStatus       = "agent.status"
	TypeAgentAvailability = "agent.availability"
	TypeDeviceConnected   = "device.connected"
	TypeDeviceDropped     = "device.dropped"
	TypeDeviceResumed     = "device.resumed"
	TypeDeviceEnded       = "device.ended"
	TypeWidgetStatus      = "widget.status"
	// The uncovered alert's (coverage.go); not derived from one entry.
	TypeCoverageLost     = "coverage.lost"
	TypeCoverageRestored = "coverage.restored"
)

// Causes of agent.availability and device.ended.
const (
	CauseStatusSet    = "status_set"
	CauseConnected    = "connected"
	CauseBye          = "bye"
	CauseGraceExpired = "grace_expired"
	CauseReplaced     = "replaced"
	CauseRevoked      = "revoked"
)

// Defaults of the event stream.
const (
	DefaultStream    = "PRESENCE_EVENTS"
	DefaultRetention = 90 * 24 * time.Hour
	// DuplicateWindow is how long JetStream remembers an event id. It
	// bounds how far behind another replica's watch may run and still have
	// its copy of an event dropped; a watch that far behind already misses
	// revisions and re-reads the bucket (watch.go), which publishes nothing.
	// Longer would cost the server memory for every id of the window.
	DuplicateWindow = 2 * time.Minute
	// SubjectPrefix starts every event's subject:
	// presence.events.<site>.<type, its dots as tokens>.
	SubjectPrefix = "presence.events."
)

// Event is the envelope of every event: the payload shape of the Standard
// Webhooks specification plus the site.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Site      string          `json:"site"`
	Timestamp protocol.Time   `json:"timestamp"`
	Data      json.RawMessage `json:"data"`

	// Rev is the bucket revision that caused it, for ordering.
	Rev uint64 `json:"-"`
}

// Subject is the NATS subject the event is published on.
func (e Event) Subject() string { return SubjectPrefix + e.Site + "." + e.Type }

// By says who set a status.
type By struct {
	Kind string `json:"kind"` // device, admin, idle, activity, hours
	ID   string `json:"id"`
}

// AgentStatusData is the data of agent.status.
type AgentStatusData struct {
	Agent    string          `json:"agent"`
	Status   presence.Status `json:"status"`
	Previous presence.Status `json:"previous"`
	By       By              `json:"by"`
}

// AgentAvailabilityData is the data of agent.availability.
type AgentAvailabilityData struct {
	Agent    string          `json:"agent"`
	Status   presence.Status `json:"status"`
	Previous presence.Status `json:"previous"`
	Cause    string          `json:"cause"`
}

// DeviceData is the data of the device.* events.
type DeviceData struct {
	Agent  string              `json:"agent"`
	Device string              `json:"device"`
	Kind   presence.DeviceKind `json:"kind"`
	// GraceUntil is when the lease of a dropped device expires
	// (device.dropped only).
	GraceUntil *protocol.Time `json:"grace_until,omitempty"`
	// Cause says why a session ended (device.ended only).
	Cause string `json:"cause,omitempty"`
}

// WidgetStatusData is the data of widget.status.
type WidgetStatusData struct {
	Group      string          `json:"group"`
	Status     presence.Status `json:"status"`
	Reason     presence.Reason `json:"reason"`
	NextChange *protocol.Time  `json:"next_change"`
}

// MaxRetryAge bounds how old an event may be for a replica to publish it
// late (a resync, a retry): young enough that every other copy of it still
// lands inside the stream's duplicate window.
const MaxRetryAge = DuplicateWindow / 2

// CoverageLostData is the data of coverage.lost.
type CoverageLostData struct {
	Group  string          `json:"group"`
	Since  protocol.Time   `json:"since"`
	Reason presence.Reason `json:"reason"`
}

// CoverageRestoredData is the data of coverage.restored.
type CoverageRestoredData struct {
	Group string `json:"group"`
	// LostFor is how long the widget was not online, in seconds: from
	// the since of its coverage.lost to its coverage.restored.
	LostFor float64 `json:"lost_for"`
}
