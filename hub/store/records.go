package store

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// AgentRecord is the stored value of an agent key: the chosen status and
// the last status change, which every device of the agent is told about.
//
// By and ByID say who set the status (see Author); a device's change also
// keeps its id in ByDevice, which is all that records written before By
// existed carry.
type AgentRecord struct {
	Status   presence.Status `json:"status"`
	Groups   []string        `json:"groups,omitempty"`
	By       string          `json:"by,omitempty"`
	ByID     string          `json:"by_id,omitempty"`
	ByDevice string          `json:"by_device,omitempty"`
	Ref      string          `json:"ref,omitempty"`
	At       time.Time       `json:"at"`
}

// Author returns who set the record's status: kind (protocol.ByDevice,
// protocol.ByAdmin, ...) and id; kind is "" for a record that holds a
// default, not a chosen status (created when the agent first connected).
func (r AgentRecord) Author() (kind, id string) {
	switch {
	case r.By != "":
		return r.By, r.ByID
	case r.ByDevice != "":
		return protocol.ByDevice, r.ByDevice // a record stored before By existed
	}
	return "", ""
}

// DecodeAgentRecord decodes the value of an agent key.
func DecodeAgentRecord(b []byte) (AgentRecord, error) {
	var r AgentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode agent record: %w", err)
	}
	if _, err := presence.ParseStatus(string(r.Status)); err != nil {
		return r, fmt.Errorf("failed to decode agent record: %w", err)
	}
	r.Status = canonical(r.Status, presence.Online, presence.Busy, presence.Offline)
	r.By = canonical(r.By, protocol.ByDevice, protocol.ByAdmin, protocol.ByIdle, protocol.ByActivity, protocol.ByHours)
	return r, nil
}

// DeviceRecord is the stored value of a device lease.
type DeviceRecord struct {
	Kind    presence.DeviceKind  `json:"kind"`
	Since   time.Time            `json:"since"`
	Session string               `json:"session"`
	Hub     string               `json:"hub"`
	State   presence.DeviceState `json:"state"`
	// Until is set when a device in background mode dropped: when its
	// lease, written then with the background max, runs out.
	Until time.Time `json:"until,omitzero"`
	// TTL is the lease's TTL once its device drops when it is not the
	// grace (background mode: the site's background max). Stored, so that
	// the replica that takes over a dead replica's leases knows it.
	TTL time.Duration `json:"ttl,omitzero"`
}

// Held reports whether the record is the lease of a live session, which
// has no TTL of its own: its replica's liveness stands for it. A lingering
// lease, or a background one whose device dropped (Until set), runs out.
func (r DeviceRecord) Held() bool {
	return r.State == presence.Live || r.State == presence.Background && r.Until.IsZero()
}

// Dropped returns the record of the lease once its device dropped at now,
// and its TTL: lingering for grace, or, in background mode, until the
// background max is over.
func (r DeviceRecord) Dropped(now time.Time, grace time.Duration) (DeviceRecord, time.Duration) {
	if r.State == presence.Background && r.TTL > 0 {
		r.Until = now.Add(r.TTL)
		return r, r.TTL
	}
	r.State = presence.Lingering
	return r, grace
}

// DecodeDeviceRecord decodes the value of a lease key.
func DecodeDeviceRecord(b []byte) (DeviceRecord, error) {
	var r DeviceRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode device record: %w", err)
	}
	if r.State != presence.Live && r.State != presence.Lingering && r.State != presence.Background {
		return r, fmt.Errorf("failed to decode device record: invalid state %q", r.State)
	}
	r.State = canonical(r.State, presence.Live, presence.Lingering, presence.Background)
	r.Kind = canonical(r.Kind, presence.Desktop, presence.Mobile, presence.Web)
	r.Hub = replicaIDs.intern(r.Hub)
	return r, nil
}

// The decoders give the strings of a record that take few values a copy
// that records share: the constant's for a status, an author's kind, a
// device's kind and state, and a recent one for a lease's replica. A view
// keeps a record per agent and per device, and each string that
// encoding/json decodes is a copy of its own.

// canonical returns the value of values equal to s, or s.
func canonical[T ~string](s T, values ...T) T {
	for _, v := range values {
		if s == v {
			return v
		}
	}
	return s
}

// idCache keeps the last copy of each of a few ids, direct-mapped by hash:
// intern returns the copy it keeps of an id equal to its argument, or
// keeps the argument. It keeps at most len(slots) ids, whatever comes.
type idCache struct {
	seed  maphash.Seed
	slots [64]atomic.Pointer[string]
}

// replicaIDs are the replicas' ids of the leases decoded last.
var replicaIDs = idCache{seed: maphash.MakeSeed()}

func (c *idCache) intern(id string) string {
	slot := &c.slots[maphash.String(c.seed, id)%uint64(len(c.slots))]
	if p := slot.Load(); p != nil && *p == id {
		return *p
	}
	kept := new(string)
	*kept = id
	slot.Store(kept)
	return id
}

// ActivityRecord is the stored value of an activity key.
type ActivityRecord struct {
	At     time.Time `json:"at"`
	Device string    `json:"device,omitempty"`
}

// DecodeActivityRecord decodes the value of an activity key.
func DecodeActivityRecord(b []byte) (ActivityRecord, error) {
	var r ActivityRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode activity record: %w", err)
	}
	return r, nil
}

// CoverageRecord is the stored value of the uncovered and coverage-lost
// keys: since when the widget is not online, and why.
type CoverageRecord struct {
	Since  time.Time       `json:"since"`
	Reason presence.Reason `json:"reason"`
}

// DecodeCoverageRecord decodes the value of a coverage key.
func DecodeCoverageRecord(b []byte) (CoverageRecord, error) {
	var r CoverageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("failed to decode coverage record: %w", err)
	}
	return r, nil
}

// The bodies of purge markers, which every replica's watch reads as the
// reason a key went; a key removed by its TTL leaves a marker with none.
var (
	// ByeMarker: a device said bye (an expired lease is a grace that ran
	// out).
	ByeMarker = []byte("bye")
	// RevokedMarker: an admin revoked the device.
	RevokedMarker = []byte("revoked")
	// ClearedMarker: an uncovered key removed because its widget is
	// covered again, or outside its hours.
	ClearedMarker = []byte("cleared")
	// RestoredMarker: a coverage-lost key removed because its widget is
	// online again.
	RestoredMarker = []byte("restored")
)

// Versioned is a record as read at a revision of its key. Rev is 0, and
// Exists false, when there is no record.
type Versioned[T any] struct {
	Rec    T
	Rev    uint64
	Exists bool
}
