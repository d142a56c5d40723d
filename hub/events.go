package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The event stream (docs/events.md): every replica derives events from the
// bucket entries its watch applies live, and publishes them to a JetStream
// stream with a message id made of the entry's revision, the event's type
// and what it is about. Every replica applies the same entries to the same
// state, so every replica builds byte-identical events with the same ids,
// and JetStream keeps the first copy of each within its duplicate window:
// a change is in the stream once as long as any one replica watched it. A
// resync publishes only what it need not guess (Hub.resyncEvents).

// Event types, as in docs/events.md.
const (
	EventAgentStatus       = "agent.status"
	EventAgentAvailability = "agent.availability"
	EventDeviceConnected   = "device.connected"
	EventDeviceDropped     = "device.dropped"
	EventDeviceResumed     = "device.resumed"
	EventDeviceEnded       = "device.ended"
	EventWidgetStatus      = "widget.status"
	// The uncovered alert's (coverage.go); not derived from one entry.
	EventCoverageLost     = "coverage.lost"
	EventCoverageRestored = "coverage.restored"
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
	DefaultEventStream    = "PRESENCE_EVENTS"
	DefaultEventRetention = 90 * 24 * time.Hour
	// EventDuplicateWindow is how long JetStream remembers an event id. It
	// bounds how far behind another replica's watch may run and still have
	// its copy of an event dropped; a watch that far behind already misses
	// revisions and re-reads the bucket (watch.go), which publishes nothing.
	// Longer would cost the server memory for every id of the window.
	EventDuplicateWindow = 2 * time.Minute
	// EventSubjectPrefix starts every event's subject:
	// presence.events.<site>.<type, its dots as tokens>.
	EventSubjectPrefix = "presence.events."
)

// Event is the envelope of every event: the payload shape of the Standard
// Webhooks specification plus the site.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Site      string          `json:"site"`
	Timestamp protocol.Time   `json:"timestamp"`
	Data      json.RawMessage `json:"data"`

	rev uint64 // the revision that caused it, for ordering
}

// Subject is the NATS subject the event is published on.
func (e Event) Subject() string { return EventSubjectPrefix + e.Site + "." + e.Type }

// EventBy says who set a status.
type EventBy struct {
	Kind string `json:"kind"` // device, admin, idle, activity, hours
	ID   string `json:"id"`
}

// AgentStatusData is the data of agent.status.
type AgentStatusData struct {
	Agent    string          `json:"agent"`
	Status   presence.Status `json:"status"`
	Previous presence.Status `json:"previous"`
	By       EventBy         `json:"by"`
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

// EventStreamConfig says how the event stream is created.
type EventStreamConfig struct {
	Name      string        // default DefaultEventStream
	Retention time.Duration // default DefaultEventRetention
	Replicas  int           // default 1; as the bucket's
}

// OpenEventStream creates the event stream, or updates an existing one to
// cfg, as OpenBucket does for the bucket.
func OpenEventStream(ctx context.Context, js jetstream.JetStream, cfg EventStreamConfig) (jetstream.Stream, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultEventStream
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultEventRetention
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	var s jetstream.Stream
	err := openRetrying(ctx, func(ctx context.Context) (err error) {
		s, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Name,
			Description: "presencehub: availability events (docs/events.md)",
			Subjects:    []string{EventSubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      cfg.Retention,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Duplicates:  EventDuplicateWindow,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open event stream %q: %w", cfg.Name, err)
	}
	return s, nil
}

// byeMarker is the body of the purge marker a bye leaves on a device key;
// an expired lease's marker has none, which is how every replica tells a
// bye from an expired grace.
var byeMarker = []byte("bye")

// eventCtx is what the events of one entry share.
type eventCtx struct {
	site string
	rev  uint64
	out  []Event
}

// add appends an event whose id is "<rev>.<type>.<about>", about being the
// agent, device or group ("" for the site) the event is about: unique per
// entry, since one entry causes at most one event of each type about each.
func (c *eventCtx) add(typ, about string, at time.Time, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("failed to encode event data: %v", err)) // the data types always encode
	}
	c.out = append(c.out, Event{
		ID:        strconv.FormatUint(c.rev, 10) + "." + typ + "." + about,
		Type:      typ,
		Site:      c.site,
		Timestamp: protocol.Time(at),
		Data:      b,
		rev:       c.rev,
	})
}

// eventState is what an entry's events are derived from, taken before and
// after it is applied.
type eventState struct {
	agent     agentBefore
	device    storedDevice
	hasDevice bool
	widgets   map[string]presence.Widget
	nexts     map[string]time.Time
}

// eventGroupsLocked lists the widgets entry e of key k can move, before it
// is applied: the site, the agent's groups before and after it, and, when
// the agent is in no group (it counts for every group) or the entry is
// working hours, every group.
func (h *Hub) eventGroupsLocked(s *site, k parsedKey, e entry) []string {
	groups := []string{""}
	all := false
	switch k.kind {
	case hoursPrefix:
		all = true
		groups = append(groups, k.group)
	case agentPrefix, devicePrefix:
		st, ok := s.agents[k.agent]
		all = !ok || len(st.rec.Groups) == 0
		groups = append(groups, st.rec.Groups...)
		if a, ok := s.presence.Agent(k.agent); ok {
			all = all || len(a.Groups) == 0
			groups = append(groups, a.Groups...)
		}
		if k.kind == agentPrefix && !e.deleted {
			if rec, err := decodeAgentRecord(e.value); err == nil {
				all = all || len(rec.Groups) == 0
				groups = append(groups, rec.Groups...)
			}
		}
	}
	if all {
		groups = append(groups, s.presence.Groups()...)
		groups = append(groups, memberGroupsLocked(s)...)
	}
	slices.Sort(groups)
	return slices.Compact(groups)
}

// memberGroupsLocked lists the groups any agent of the site is in, online
// or not. An agent in no group counts for every group, so its changes
// (and the site's hours) move the widget of a group none of whose members
// is online too, which presence.Site.Groups does not list: without these,
// a group's widget that an agent in no group kept online would have no
// event when that agent leaves, and its history (hub/history) would show
// it online for ever.
func memberGroupsLocked(s *site) []string { return s.presence.MemberGroups() }

func (h *Hub) eventStateLocked(s *site, k parsedKey, key string, groups []string, at time.Time) eventState {
	st := eventState{widgets: make(map[string]presence.Widget, len(groups)), nexts: make(map[string]time.Time, len(groups))}
	if k.agent != "" {
		st.agent = h.agentNowLocked(s, k.agent)
	}
	if k.kind == devicePrefix {
		st.device, st.hasDevice = s.devices[key]
	}
	for _, g := range groups {
		st.widgets[g], st.nexts[g] = s.presence.WidgetAt(g, at)
	}
	return st
}

// deriveEvents compares an entry's before and after states and returns the
// events it caused, in a fixed order: device, agent status, availability,
// widgets by group.
func deriveEvents(siteID string, k parsedKey, e entry, at time.Time, grace time.Duration, groups []string, before, after eventState) []Event {
	c := eventCtx{site: siteID, rev: e.rev}
	availabilityCause := ""
	switch k.kind {
	case agentPrefix:
		availabilityCause = CauseStatusSet
		// As the status frame (view.go): a record created when the
		// agent first connected holds a default, not a chosen status.
		b, a := before.agent, after.agent
		if by, byID := a.rec.author(); a.hasRec && by != "" && (!b.hasRec || b.rec.Status != a.rec.Status) {
			prev := presence.Offline
			if b.hasRec {
				prev = b.rec.Status
			}
			at = a.rec.At
			c.add(EventAgentStatus, k.agent, at, AgentStatusData{
				Agent: k.agent, Status: a.rec.Status, Previous: prev, By: EventBy{Kind: by, ID: byID},
			})
		}
	case devicePrefix:
		b, a := before.device, after.device
		data := func(kind presence.DeviceKind) DeviceData {
			return DeviceData{Agent: k.agent, Device: k.device, Kind: kind}
		}
		switch {
		case e.deleted && before.hasDevice:
			d := data(b.rec.Kind)
			d.Cause = CauseGraceExpired
			switch string(e.value) {
			case string(byeMarker):
				d.Cause = CauseBye
			case string(revokedMarker):
				d.Cause = CauseRevoked
			}
			availabilityCause = d.Cause
			c.add(EventDeviceEnded, k.device, at, d)
		case e.deleted:
		case before.hasDevice && (b.rec.State == presence.Lingering || !b.rec.Until.IsZero()) && a.rec.State == presence.Live:
			// The device came back inside its grace, or while its
			// background lease lasted (as a new session of the same
			// device id).
			availabilityCause = CauseConnected
			c.add(EventDeviceResumed, k.device, at, data(a.rec.Kind))
		case !before.hasDevice || b.rec.Session != a.rec.Session:
			availabilityCause = CauseConnected
			if before.hasDevice {
				d := data(b.rec.Kind)
				d.Cause = CauseReplaced
				c.add(EventDeviceEnded, k.device, at, d)
			}
			c.add(EventDeviceConnected, k.device, at, data(a.rec.Kind))
		case b.rec.State == presence.Live && a.rec.State == presence.Lingering:
			d := data(a.rec.Kind)
			until := protocol.Time(at.Add(grace))
			d.GraceUntil = &until
			c.add(EventDeviceDropped, k.device, at, d)
		case b.rec.Until.IsZero() && !a.rec.Until.IsZero():
			// A device in background mode dropped: its lease lasts the
			// background max, which the writer put in the record.
			d := data(a.rec.Kind)
			until := protocol.Time(a.rec.Until)
			d.GraceUntil = &until
			c.add(EventDeviceDropped, k.device, at, d)
		}
	}
	if k.agent != "" && availabilityCause != "" && before.agent.effective != after.agent.effective {
		c.add(EventAgentAvailability, k.agent, at, AgentAvailabilityData{
			Agent: k.agent, Status: after.agent.effective, Previous: before.agent.effective, Cause: availabilityCause,
		})
	}
	for _, g := range groups {
		w, next := after.widgets[g], after.nexts[g]
		if w == before.widgets[g] && next.Equal(before.nexts[g]) {
			continue
		}
		c.add(EventWidgetStatus, g, at, WidgetStatusData{Group: g, Status: w.Status, Reason: w.Reason, NextChange: protocol.OptionalTime(next)})
	}
	return c.out
}

// eventPublisher publishes events asynchronously on the hub's connection,
// in the order the watcher hands them over, so the watcher never waits for
// NATS per event. What JetStream has not acknowledged yet is bounded by
// eventBacklog; an event that finds the backlog full is dropped and
// counted, not waited for, as is one JetStream refuses. One that fails
// while the stream elects a leader is published again (eventretry.go).
type eventPublisher struct {
	js    jetstream.JetStream
	m     *metrics
	retry eventRetry
}

// eventBacklog bounds the events published but not yet acknowledged.
const eventBacklog = 4096

// eventAckTimeout is how long an event waits for its acknowledgement
// before it is published again (eventretry.go). It is below the shortest
// election of a new stream leader (the raft election timeout is 4-9s), so
// that an event lost with a killed leader goes out again before any later
// event can be stored by the next one; a late acknowledgement costs only a
// copy the stream drops.
const eventAckTimeout = 3 * time.Second

// eventStallWait is how long a publish waits for room in a full backlog
// before the event is dropped: short, since the watcher is waiting.
const eventStallWait = 10 * time.Millisecond

func newEventPublisher(nc *nats.Conn, m *metrics, spawn func(func(context.Context)) bool, now func() time.Time) (*eventPublisher, error) {
	p := &eventPublisher{m: m, retry: eventRetry{inFlight: make(map[*nats.Msg]pendingEvent), spawn: spawn, now: now}}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(eventBacklog),
		// An event whose acknowledgement never comes (a reconnect lost
		// it) frees its place in the backlog and is tried again.
		jetstream.WithPublishAsyncTimeout(eventAckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) { p.acked(msg) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, msg *nats.Msg, err error) { p.failed(msg, err) }))
	if err != nil {
		return nil, fmt.Errorf("failed to open JetStream for events: %w", err)
	}
	p.js = js
	return p, nil
}

func (p *eventPublisher) publish(events []Event) {
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			panic(fmt.Sprintf("failed to encode event: %v", err)) // Event always encodes
		}
		if err := p.send(ev, b); err != nil {
			p.m.eventErrors.WithLabelValues("dropped").Inc()
			continue
		}
		p.m.eventsPublished.WithLabelValues(ev.Type).Inc()
	}
}

// appliedRev returns the highest bucket revision the view has applied.
func (h *Hub) appliedRev() uint64 {
	h.applied.mu.Lock()
	defer h.applied.mu.Unlock()
	return h.applied.rev
}

// isLoaded reports whether the view has loaded once.
func (h *Hub) isLoaded() bool {
	select {
	case <-h.loaded:
		return true
	default:
		return false
	}
}

// pending returns the events published and not yet acknowledged.
func (p *eventPublisher) pending() int { return p.js.PublishAsyncPending() }
