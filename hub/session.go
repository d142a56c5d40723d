package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/presence"
)

// Identity is who a device session acts for, as its token says.
type Identity struct {
	Site   string
	Agent  string
	Groups []string
}

// DeviceHello is what a device says about itself when it connects.
type DeviceHello struct {
	// ID is the device's id from an earlier welcome, or "" for a new device.
	ID   string
	Kind presence.DeviceKind
}

// Session is one connected device of an agent on this hub.
type Session struct {
	h      *Hub
	id     string
	site   string
	agent  string
	groups []string
	device string
	sub    Subscriber

	// record is the lease value this session writes; rev the bucket revision
	// of its last write, which the next write expects (a mismatch means a
	// newer session of the same device took the lease over). Guarded by mu.
	mu     sync.Mutex
	record deviceRecord
	rev    uint64
	ended  bool
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Device returns the device id.
func (s *Session) Device() string { return s.device }

// ErrReplaced is returned when a newer session of the same device took over.
var ErrReplaced = errors.New("hub: session replaced by a newer one of the same device")

// ErrTooManyDevices is returned by Connect when the agent already has
// Config.MaxDevices live devices.
var ErrTooManyDevices = errors.New("hub: too many devices for this agent")

// Connect starts a device session: it makes sure the agent has a record (an
// agent seen for the first time starts online), takes the device's lease,
// waits until the view shows it, and then queues the welcome frame to sub and
// registers sub for the agent's status and device frames. The device adopts
// the stored status; nothing it says here changes it.
func (h *Hub) Connect(ctx context.Context, id Identity, hello DeviceHello, sub Subscriber) (*Session, error) {
	if !h.Ready() {
		return nil, ErrNotReady
	}
	if h.liveDevices(id.Site, id.Agent, hello.ID) >= h.cfg.MaxDevices {
		return nil, ErrTooManyDevices
	}
	groups := normalizeGroups(id.Groups)
	if err := h.ensureAgent(ctx, id.Site, id.Agent, groups); err != nil {
		return nil, err
	}
	device := hello.ID
	if device == "" {
		device = uuid.NewString()
	}
	sess := &Session{h: h, id: uuid.NewString(), site: id.Site, agent: id.Agent, groups: groups, device: device, sub: sub}
	key := deviceKey(id.Site, id.Agent, device)
	since := h.cfg.Now()
	h.mu.Lock()
	if s := h.sites[id.Site]; s != nil {
		if d, ok := s.devices[key]; ok {
			since = d.rec.Since // a reconnect inside the grace continues the device's run
		}
	}
	h.mu.Unlock()
	sess.record = deviceRecord{Kind: hello.Kind, Since: since, Session: sess.id, Hub: h.cfg.ID, State: presence.Live}
	rev, err := h.writeLease(ctx, key, sess.record, 0)
	if err != nil {
		return nil, err
	}
	sess.rev = rev
	if err := h.waitApplied(ctx, rev); err != nil {
		sess.Close(context.WithoutCancel(ctx))
		return nil, err
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.siteLocked(id.Site)
	if d, ok := s.devices[key]; !ok || d.rec.Session != sess.id {
		// Another session of the device took the lease over before this one
		// registered (or it already ended); this one must not go live.
		sess.ended = true
		return nil, ErrReplaced
	}
	welcome := Welcome{
		Type: "welcome", Session: sess.id, Device: device,
		Agent:   AgentInfo{Site: id.Site, ID: id.Agent, Groups: nonNil(groups)},
		Status:  presence.Online,
		Devices: []DeviceInfo{},
		GraceMS: h.cfg.Grace.Milliseconds(),
		Hours:   h.siteHoursLocked(s, h.cfg.Now()),
	}
	if a, ok := s.presence.Agent(id.Agent); ok {
		welcome.Status = a.Status
		welcome.Devices = deviceInfos(a.LiveDevices())
	}
	if s.local[id.Agent] == nil {
		s.local[id.Agent] = make(map[*Session]struct{})
	}
	s.local[id.Agent][sess] = struct{}{}
	h.sessions[sess] = struct{}{}
	h.registerLocked(sub, func() {
		delete(s.local[id.Agent], sess)
		if len(s.local[id.Agent]) == 0 {
			delete(s.local, id.Agent)
		}
		delete(s.roster, sub)
		h.gcSiteLocked(s)
	})
	if !h.sendLocked(sub, encode(welcome)) {
		h.dropLocked(sub, ErrSlowSubscriber)
	}
	return sess, nil
}

// ensureAgent creates the agent's record if it has none and keeps its groups
// in step with the token's.
func (h *Hub) ensureAgent(ctx context.Context, site, agent string, groups []string) error {
	key := agentKey(site, agent)
	return h.updateAgent(ctx, key, func(rec *agentRecord, exists bool) bool {
		if !exists {
			*rec = agentRecord{Status: presence.Online, Groups: groups, At: h.cfg.Now()}
			return true
		}
		if slices.Equal(rec.Groups, groups) {
			return false
		}
		rec.Groups = groups
		return true
	})
}

// updateAgent applies fn to the agent record at key with optimistic
// concurrency: it starts from the view, and on a conflict re-reads the bucket
// and tries again. fn reports whether it changed anything.
func (h *Hub) updateAgent(ctx context.Context, key string, fn func(rec *agentRecord, exists bool) bool) error {
	k, _ := parseKey(key)
	h.mu.Lock()
	var (
		rec    agentRecord
		rev    uint64
		exists bool
	)
	if s := h.sites[k.site]; s != nil {
		if a, ok := s.agents[k.agent]; ok {
			rec, rev, exists = a.rec, a.rev, true
			rec.Groups = slices.Clone(rec.Groups)
		}
	}
	h.mu.Unlock()

	for attempt := 0; attempt < 10; attempt++ {
		if !fn(&rec, exists) {
			return nil
		}
		b, _ := json.Marshal(rec)
		var err error
		if exists {
			_, err = h.kv.Update(ctx, key, b, rev)
			h.metrics.kvOp("update", err)
		} else {
			_, err = h.kv.Create(ctx, key, b)
			h.metrics.kvOp("create", err)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("failed to write agent record: %w", err)
		}
		e, err := h.kv.Get(ctx, key)
		h.metrics.kvOp("get", ignoreNotFound(err))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rec, rev, exists = agentRecord{}, 0, false
		case err != nil:
			return fmt.Errorf("failed to read agent record: %w", err)
		default:
			if rec, err = decodeAgentRecord(e.Value()); err != nil {
				return err
			}
			rev, exists = e.Revision(), true
		}
	}
	return errors.New("hub: agent record kept changing; gave up")
}

// writeLease writes a device lease with TTL = grace. With expect > 0 the
// write succeeds only if the key's last revision is expect.
func (h *Hub) writeLease(ctx context.Context, key string, rec deviceRecord, expect uint64) (uint64, error) {
	b, _ := json.Marshal(rec)
	rev, err := h.publish(ctx, &nats.Msg{Subject: h.kvSubject + key, Data: b}, expect)
	if err != nil && !errors.Is(err, ErrReplaced) {
		return 0, fmt.Errorf("failed to write lease: %w", err)
	}
	return rev, err
}

// refresh re-writes the session's lease so that its TTL starts again.
func (s *Session) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	return s.writeLeaseLocked(ctx, s.record)
}

// writeLeaseLocked writes the session's lease, expecting the revision of its
// last write. A mismatch does not by itself mean another session took the
// device over: the lease may have expired during a NATS outage, or a write
// may have landed whose ack was lost. So the key is read, and ErrReplaced is
// returned only if another session holds it. Guarded by s.mu.
func (s *Session) writeLeaseLocked(ctx context.Context, rec deviceRecord) error {
	key := deviceKey(s.site, s.agent, s.device)
	rev, err := s.h.writeLease(ctx, key, rec, s.rev)
	if errors.Is(err, ErrReplaced) {
		var current uint64
		if current, err = s.h.leaseOwner(ctx, key, s.id); err == nil {
			rev, err = s.h.writeLease(ctx, key, rec, current)
		}
	}
	if err != nil {
		return err
	}
	s.rev = rev
	return nil
}

// leaseOwner reads a device's lease: it returns the revision to expect when
// the lease is session's own or gone, and ErrReplaced when another session
// holds it.
func (h *Hub) leaseOwner(ctx context.Context, key, session string) (uint64, error) {
	e, err := h.kv.Get(ctx, key)
	h.metrics.kvOp("get", ignoreNotFound(err))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, nil // expired or removed: the session may take it again
	case err != nil:
		return 0, fmt.Errorf("failed to read lease: %w", err)
	}
	rec, err := decodeDeviceRecord(e.Value())
	if err != nil || rec.Session != session {
		return 0, ErrReplaced
	}
	return e.Revision(), nil
}

// SetStatus sets the agent's status; every device of the agent, this one
// included, then receives a status frame carrying ref.
func (s *Session) SetStatus(ctx context.Context, status presence.Status, ref string) error {
	s.h.counters.statusChanges.Add(1)
	s.h.metrics.statusChanges.Inc()
	return s.h.updateAgent(ctx, agentKey(s.site, s.agent), func(rec *agentRecord, exists bool) bool {
		if !exists {
			*rec = agentRecord{Groups: s.groups} // the record was removed meanwhile
		}
		rec.Status = status
		rec.ByDevice = s.device
		rec.Ref = ref
		rec.At = s.h.cfg.Now()
		return true
	})
}

// SubscribeRoster queues the roster of the session's site to the session's
// subscriber, then an agent frame each time an agent's effective status or
// groups change.
func (s *Session) SubscribeRoster() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.unsubs[s.sub]; !ok {
		return // dropped or ended
	}
	site := h.siteLocked(s.site)
	agents := site.presence.Agents()
	roster := rosterFrame{Type: "roster", Agents: make([]RosterAgent, 0, len(agents)), Hours: h.siteHoursLocked(site, h.cfg.Now())}
	for _, a := range agents {
		roster.Agents = append(roster.Agents, RosterAgent{ID: a.ID, Status: a.Effective(), Groups: nonNil(a.Groups)})
	}
	site.roster[s.sub] = struct{}{}
	if !h.sendLocked(s.sub, encode(roster)) {
		h.dropLocked(s.sub, ErrSlowSubscriber)
	}
}

// end unregisters the session; it reports false if it had already ended.
func (s *Session) end() bool {
	h := s.h
	h.mu.Lock()
	h.unregisterLocked(s.sub)
	delete(h.sessions, s)
	h.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended = true
	return true
}

// Close ends a session whose device dropped without saying bye: the lease is
// written once more with TTL = grace, so the grace starts now, and then left
// to expire unless the device comes back.
func (s *Session) Close(ctx context.Context) error {
	if !s.end() {
		return nil
	}
	rec := s.record
	rec.State = presence.Lingering
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.writeLeaseLocked(ctx, rec)
	if errors.Is(err, ErrReplaced) {
		return nil // a newer session of the device owns the lease now
	}
	return err
}

// Bye ends the session deliberately: the device's lease is removed at once,
// with no grace. The purge leaves a marker that NATS removes after the
// marker TTL, so the bucket does not grow with churn.
func (s *Session) Bye(ctx context.Context) error {
	if !s.end() {
		return nil
	}
	key := deviceKey(s.site, s.agent, s.device)
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, err := s.h.purgeKey(ctx, key, s.rev)
	if errors.Is(err, ErrReplaced) {
		var current uint64
		current, err = s.h.leaseOwner(ctx, key, s.id)
		switch {
		case errors.Is(err, ErrReplaced):
			return nil // a newer session of the device owns the lease now
		case err == nil && current == 0:
			return nil // already gone
		case err == nil:
			rev, err = s.h.purgeKey(ctx, key, current)
		}
	}
	if err != nil {
		return fmt.Errorf("failed to purge lease: %w", err)
	}
	// Returning once this replica's view has the device gone means a device
	// that reconnects here right after the bye is counted without it.
	return s.h.waitApplied(ctx, rev)
}

// purgeKey removes a key with a purge marker that NATS deletes after the
// marker TTL, and returns the marker's revision. With expect > 0 it succeeds
// only if the key's last revision is expect.
func (h *Hub) purgeKey(ctx context.Context, key string, expect uint64) (uint64, error) {
	msg := nats.NewMsg(h.kvSubject + key)
	msg.Header.Set("KV-Operation", "PURGE")
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	return h.publish(ctx, msg, expect)
}

// publish writes msg to the bucket's stream with TTL = grace for leases or
// the marker TTL for purges; with expect > 0 only if the subject's last
// revision is expect, else ErrReplaced.
func (h *Hub) publish(ctx context.Context, msg *nats.Msg, expect uint64) (uint64, error) {
	ttl, op := h.cfg.Grace, "lease"
	if msg.Header.Get("KV-Operation") != "" {
		ttl, op = h.cfg.MarkerTTL, "purge"
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgTTL(ttl)}
	if expect > 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(expect))
	}
	ack, err := h.js.PublishMsg(ctx, msg, opts...)
	h.metrics.kvOp(op, err)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, ErrReplaced
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// refreshConcurrency bounds the lease writes in flight at once, so that a
// hub with many sessions refreshes them all well inside one interval.
const refreshConcurrency = 64

// keepLeases refreshes the lease of every live local session every
// RefreshEvery, so that a lease outlives its session by at most the grace.
func (h *Hub) keepLeases(ctx context.Context) error {
	t := time.NewTicker(h.cfg.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		h.mu.Lock()
		sessions := make([]*Session, 0, len(h.sessions))
		for s := range h.sessions {
			sessions = append(sessions, s)
		}
		h.mu.Unlock()
		var g errgroup.Group
		g.SetLimit(refreshConcurrency)
		for _, s := range sessions {
			g.Go(func() error {
				rctx, cancel := context.WithTimeout(ctx, h.cfg.RefreshEvery)
				defer cancel()
				err := s.refresh(rctx)
				switch {
				case errors.Is(err, ErrReplaced):
					h.mu.Lock()
					h.dropLocked(s.sub, ErrReplaced)
					h.mu.Unlock()
				case err != nil && ctx.Err() == nil:
					h.log.Warn("failed to refresh lease", "site", s.site, "agent", s.agent, "device", s.device, "err", err)
				}
				return nil
			})
		}
		g.Wait()
	}
}

func normalizeGroups(groups []string) []string {
	if len(groups) == 0 {
		return nil
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Compact(out)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// liveDevices counts the agent's live devices other than except.
func (h *Hub) liveDevices(site, agent, except string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sites[site]
	if s == nil {
		return 0
	}
	a, ok := s.presence.Agent(agent)
	if !ok {
		return 0
	}
	n := 0
	for _, d := range a.LiveDevices() {
		if d.ID != except {
			n++
		}
	}
	return n
}
