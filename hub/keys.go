package hub

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// Key layout of the bucket. Ids are 1-64 characters of A-Za-z0-9_- (device
// ids are UUIDs), so they are always valid single subject tokens.
//
//	a.<site>.<agent>           agent record, no TTL
//	d.<site>.<agent>.<device>  device lease, TTL = grace, refreshed while live
//	h.<site>                   the site's working hours (presence.Schedule)
//	h.<site>.<group>           a group's working hours
//	s.<site>                   site settings
//	i.<site>.<agent>           the agent's last activity, TTL = the idle rule's after
//	u.<site>[.<group>]         a widget uncovered since, TTL = the site's uncovered_alert
//	c.<site>[.<group>]         a widget's coverage lost (coverage.lost published), no TTL
const (
	agentPrefix     = "a"
	devicePrefix    = "d"
	hoursPrefix     = "h"
	settingsPrefix  = "s"
	activityPrefix  = "i"
	uncoveredPrefix = "u"
	lostPrefix      = "c"
)

func activityKey(site, agent string) string { return activityPrefix + "." + site + "." + agent }

func hoursKey(site, group string) string {
	if group == "" {
		return hoursPrefix + "." + site
	}
	return hoursPrefix + "." + site + "." + group
}

func settingsKey(site string) string { return settingsPrefix + "." + site }

func agentKey(site, agent string) string { return agentPrefix + "." + site + "." + agent }

func deviceKey(site, agent, device string) string {
	return devicePrefix + "." + site + "." + agent + "." + device
}

// parsedKey is a bucket key split into its parts.
type parsedKey struct {
	kind                string // one of the prefixes
	site, agent, device string
	group               string // of an hours or coverage key; "" for the site's
}

func parseKey(key string) (parsedKey, bool) {
	parts := strings.Split(key, ".")
	switch {
	case len(parts) == 3 && parts[0] == agentPrefix:
		return parsedKey{kind: agentPrefix, site: parts[1], agent: parts[2]}, true
	case len(parts) == 4 && parts[0] == devicePrefix:
		return parsedKey{kind: devicePrefix, site: parts[1], agent: parts[2], device: parts[3]}, true
	case len(parts) == 2 && parts[0] == hoursPrefix:
		return parsedKey{kind: hoursPrefix, site: parts[1]}, true
	case len(parts) == 3 && parts[0] == hoursPrefix:
		return parsedKey{kind: hoursPrefix, site: parts[1], group: parts[2]}, true
	case len(parts) == 3 && parts[0] == activityPrefix:
		return parsedKey{kind: activityPrefix, site: parts[1], agent: parts[2]}, true
	case (len(parts) == 2 || len(parts) == 3) && (parts[0] == uncoveredPrefix || parts[0] == lostPrefix):
		k := parsedKey{kind: parts[0], site: parts[1]}
		if len(parts) == 3 {
			k.group = parts[2]
		}
		return k, true
	case len(parts) == 2 && parts[0] == settingsPrefix:
		return parsedKey{kind: settingsPrefix, site: parts[1]}, true
	}
	return parsedKey{}, false
}

// agentRecord is the stored value of an agent key: the chosen status and the
// last status change, which every device of the agent is told about.
//
// By and ByID say who set the status (see author); a device's change also
// keeps its id in ByDevice, which is all that records written before By
// existed carry.
type agentRecord struct {
	Status   presence.Status `json:"status"`
	Groups   []string        `json:"groups,omitempty"`
	By       string          `json:"by,omitempty"`
	ByID     string          `json:"by_id,omitempty"`
	ByDevice string          `json:"by_device,omitempty"`
	Ref      string          `json:"ref,omitempty"`
	At       time.Time       `json:"at"`
}

// Kinds of who set a status: the "by" of status frames, agent.status events
// and the agents API.
const (
	ByDevice = "device"
	ByAdmin  = "admin"
)

// author returns who set the record's status: kind (ByDevice, ByAdmin, ...)
// and id; kind is "" for a record that holds a default, not a chosen
// status (created when the agent first connected).
func (r agentRecord) author() (kind, id string) {
	switch {
	case r.By != "":
		return r.By, r.ByID
	case r.ByDevice != "":
		return ByDevice, r.ByDevice // a record stored before By existed
	}
	return "", ""
}

// deviceRecord is the stored value of a device lease.
type deviceRecord struct {
	Kind    presence.DeviceKind  `json:"kind"`
	Since   time.Time            `json:"since"`
	Session string               `json:"session"`
	Hub     string               `json:"hub"`
	State   presence.DeviceState `json:"state"`
	// Until is set when a device in background mode dropped: when its
	// lease, written then with the background max, runs out.
	Until time.Time `json:"until,omitzero"`
	// ttl is the lease's TTL when it is not the grace (background mode).
	ttl time.Duration
}

func decodeAgentRecord(b []byte) (agentRecord, error) {
	var r agentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode agent record: %w", err)
	}
	if _, err := presence.ParseStatus(string(r.Status)); err != nil {
		return r, fmt.Errorf("failed to decode agent record: %w", err)
	}
	return r, nil
}

func decodeDeviceRecord(b []byte) (deviceRecord, error) {
	var r deviceRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode device record: %w", err)
	}
	if r.State != presence.Live && r.State != presence.Lingering && r.State != presence.Background {
		return r, fmt.Errorf("failed to decode device record: invalid state %q", r.State)
	}
	return r, nil
}
