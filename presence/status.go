package presence

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Status is an agent's chosen status or a widget's displayed status.
type Status string

// The three statuses.
const (
	Offline Status = "offline"
	Busy    Status = "busy"
	Online  Status = "online"
)

// ParseStatus returns the Status named s, or an error naming the bad value.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case Online, Busy, Offline:
		return st, nil
	}
	return "", fmt.Errorf("invalid status %q: want online, busy or offline", s)
}

// Reason says why a widget shows its status.
type Reason string

// The reasons a widget can give.
const (
	ReasonAgentsOnline Reason = "agents_online"
	ReasonAllBusy      Reason = "all_busy"
	ReasonNoAgents     Reason = "no_agents"
	ReasonOutsideHours Reason = "outside_hours"
)

// DeviceKind says what an agent's device is.
type DeviceKind string

// The device kinds.
const (
	Desktop DeviceKind = "desktop"
	Mobile  DeviceKind = "mobile"
	Web     DeviceKind = "web"
)

// ParseDeviceKind returns the DeviceKind named s, or an error naming the bad value.
func ParseDeviceKind(s string) (DeviceKind, error) {
	switch k := DeviceKind(s); k {
	case Desktop, Mobile, Web:
		return k, nil
	}
	return "", fmt.Errorf("invalid device kind %q: want desktop, mobile or web", s)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateID reports whether id is a valid site, agent or group id: 1 to 64
// characters of A-Za-z0-9_-. what names the id in the error ("site", ...).
func ValidateID(what, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid %s id %q: want 1 to 64 characters of A-Za-z0-9_-", what, truncate(id, 70))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
