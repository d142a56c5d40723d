package hub

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Read-only answers about a site's agents for the admin agents API. They
// come from this replica's view, as every other read does, so they show
// what the bucket said when the view last applied it.

// AgentState is one agent of a site as the admin agents API shows it.
type AgentState struct {
	ID     string          `json:"id"`
	Status presence.Status `json:"status"`
	// Effective is what widgets count: Status while any device holds a
	// lease, offline otherwise.
	Effective presence.Status `json:"effective"`
	Groups    []string        `json:"groups"`
	// Devices are the devices that hold a lease, live or in grace, oldest
	// first.
	Devices []AgentDevice `json:"devices"`
	// ChangedAt is when the agent's record last changed (its status, or
	// its creation when the agent first connected); nil when the agent is
	// known only from device leases.
	ChangedAt *protocol.Time `json:"changed_at"`
	// ChangedBy names who set the status last; nil when nobody has since
	// the record was created.
	ChangedBy *ChangedBy `json:"changed_by"`
	// LastActivity is the last activity of any of the agent's devices the
	// view knows of (recorded at most every quarter of the idle delay);
	// nil when unknown, or the idle rule is off.
	LastActivity *protocol.Time `json:"last_activity"`
}

// AgentDevice is one device of an agent that holds a lease.
type AgentDevice struct {
	ID    string               `json:"id"`
	Kind  presence.DeviceKind  `json:"kind"`
	State presence.DeviceState `json:"state"`
	Since protocol.Time        `json:"since"`
	// GraceUntil is when a device in grace loses its lease unless it comes
	// back; nil for a live device.
	GraceUntil *protocol.Time `json:"grace_until"`
}

// ChangedBy names the author of a status change; Kind is one of the kinds
// of an event's "by" ("device" with the device id, "admin" with the
// admin's id).
type ChangedBy struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Agents returns every agent the site's view holds, sorted by id.
func (h *Hub) Agents(siteID string) ([]AgentState, error) {
	release, err := h.visit(context.Background(), siteID)
	if err != nil {
		return nil, err
	}
	defer release()
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		return []AgentState{}, nil
	}
	defer h.view.unlockSite(s)
	devices := make(map[string][]AgentDevice)
	for key, d := range s.devices {
		k, _ := store.ParseKey(key)
		devices[k.Agent] = append(devices[k.Agent], h.agentDevice(k.Device, d))
	}
	agents := s.presence.Agents()
	out := make([]AgentState, 0, len(agents))
	for _, a := range agents {
		out = append(out, h.agentStateLocked(s, a, devices[a.ID]))
	}
	return out, nil
}

// Agent returns one agent of the site; ok is false when the view holds
// neither a record nor a lease of it.
func (h *Hub) Agent(siteID, agent string) (state AgentState, ok bool, err error) {
	release, err := h.visit(context.Background(), siteID)
	if err != nil {
		return AgentState{}, false, err
	}
	defer release()
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		return AgentState{}, false, nil
	}
	defer h.view.unlockSite(s)
	a, ok := s.presence.Agent(agent)
	if !ok {
		return AgentState{}, false, nil
	}
	var devices []AgentDevice
	for key, d := range s.devices {
		if k, _ := store.ParseKey(key); k.Agent == agent {
			devices = append(devices, h.agentDevice(k.Device, d))
		}
	}
	return h.agentStateLocked(s, a, devices), true, nil
}

func (h *Hub) agentStateLocked(s *site, a *presence.Agent, devices []AgentDevice) AgentState {
	slices.SortFunc(devices, func(x, y AgentDevice) int {
		return cmp.Or(time.Time(x.Since).Compare(time.Time(y.Since)), cmp.Compare(x.ID, y.ID))
	})
	st := AgentState{ID: a.ID, Status: a.Status, Effective: a.Effective(), Groups: protocol.NonNil(slices.Clone(a.Groups)), Devices: devices}
	if st.Devices == nil {
		st.Devices = []AgentDevice{}
	}
	if act, ok := s.activity[a.ID]; ok {
		st.LastActivity = protocol.OptionalTime(act.at)
	}
	if rec, ok := s.agents[a.ID]; ok {
		st.ChangedAt = protocol.OptionalTime(rec.rec.At)
		if by, id := rec.rec.Author(); by != "" {
			st.ChangedBy = &ChangedBy{Kind: by, ID: id}
		}
	}
	return st
}

func (h *Hub) agentDevice(id string, d storedDevice) AgentDevice {
	ad := AgentDevice{ID: id, Kind: d.rec.Kind, State: d.rec.State, Since: protocol.Time(d.rec.Since)}
	switch {
	case d.rec.State == presence.Lingering:
		ad.GraceUntil = protocol.OptionalTime(d.written.Add(h.cfg.Grace))
	case !d.rec.Until.IsZero():
		ad.GraceUntil = protocol.OptionalTime(d.rec.Until) // a background device that dropped
	}
	return ad
}
