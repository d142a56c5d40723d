package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/jsretry"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
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

	// mu guards the session's in-memory state and is never held across a
	// NATS call. record is the lease value this session writes; rev the
	// bucket revision of its last write, which the next write expects (a
	// mismatch means a newer session of the same device took the lease
	// over); both change only with the lease token held.
	mu     sync.Mutex
	record store.DeviceRecord // guarded by mu
	rev    uint64             // guarded by mu
	ended  bool               // guarded by mu
	// indexRev is the revision of the session's index key (store.IndexKey),
	// which says this replica holds the lease; it changes with the lease
	// token held.
	indexRev uint64 // guarded by mu

	// leaseToken is held, by sending into it, by the session's one lease
	// write in flight: each write expects the revision of the one before,
	// so two of the same session must not overlap. A channel rather than a
	// second mutex because a write that waits for the token gives up when
	// its context ends, and a re-assertion does not wait at all (see
	// refresh). The session's own operations come one at a time (the
	// transport runs a device's operations in order), so the token is
	// contended only by a re-assertion and by the end of the session.
	leaseToken chan struct{}

	// revoked is set when an admin revoked the device (admin.go): its
	// lease is gone for good, so the session writes it no more.
	revoked atomic.Bool
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Device returns the device id.
func (s *Session) Device() string { return s.device }

// ErrTooManyDevices is returned by Connect when the agent already has
// Config.MaxDevices live devices.
var ErrTooManyDevices = errors.New("hub: too many devices for this agent")

// Connect starts a device session: it makes sure the agent has a record (an
// agent seen for the first time starts online), takes the device's lease,
// waits until the view shows it, and then queues the welcome frame to sub and
// registers sub for the agent's status and device frames. The device adopts
// the stored status; nothing it says here changes it.
func (h *Hub) Connect(ctx context.Context, id Identity, hello DeviceHello, sub Subscriber) (*Session, error) {
	release, err := h.visit(ctx, id.Site)
	if err != nil {
		return nil, err
	}
	// The session keeps the interest until it is unregistered.
	registered := false
	defer func() {
		if !registered {
			release()
		}
	}()
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
	sess := &Session{h: h, id: uuid.NewString(), site: id.Site, agent: id.Agent, groups: groups, device: device, sub: sub,
		leaseToken: make(chan struct{}, 1)}
	key := store.LeaseKey(id.Site, id.Agent, device)
	since := h.cfg.Now()
	resumed := false // the device had a lease: a reconnect, or a new token
	if s := h.view.lockExistingSite(id.Site); s != nil {
		if d, ok := s.devices[key.String()]; ok {
			since = d.rec.Since // a reconnect inside the grace continues the device's run
			resumed = true
		}
		h.view.unlockSite(s)
	}
	sess.record = store.DeviceRecord{Kind: hello.Kind, Since: since, Session: sess.id, Hub: h.memberID, State: presence.Live}
	// The index first: a lease held by this replica must be one that its
	// replica's end hands over to the grace (liveness.go).
	irev, err := h.store.For(id.Site).WriteIndex(ctx, sess.indexKey(), sess.id)
	if err != nil {
		return nil, err
	}
	sess.indexRev = irev
	rev, err := h.store.For(id.Site).WriteLease(ctx, key, sess.record, 0)
	if err != nil {
		sess.dropIndex(context.WithoutCancel(ctx))
		return nil, err
	}
	sess.rev = rev
	if err := h.waitLease(ctx, sess); err != nil {
		sess.Close(context.WithoutCancel(ctx))
		return nil, err
	}

	s := h.view.lockSite(id.Site)
	defer h.view.unlockSite(s)
	if d, ok := s.devices[key.String()]; !ok || d.rec.Session != sess.id {
		// Another session of the device took the lease over before this one
		// registered (or it already ended); this one must not go live.
		sess.mu.Lock()
		sess.ended = true
		sess.mu.Unlock()
		return nil, ErrReplaced
	}
	welcome := protocol.Welcome{
		Type: "welcome", Session: sess.id, Device: device,
		Agent:   protocol.AgentInfo{Site: id.Site, ID: id.Agent, Groups: protocol.NonNil(groups)},
		Status:  presence.Online,
		Devices: []protocol.DeviceInfo{},
		GraceMS: h.cfg.Grace.Milliseconds(),
		Hours:   siteHours(s.presence, h.cfg.Now()),
	}
	if a, ok := s.presence.Agent(id.Agent); ok {
		welcome.Status = a.Status
		welcome.Devices = protocol.DeviceInfos(a.LiveDevices())
	}
	if s.local[id.Agent] == nil {
		put(&s.local, id.Agent, make(map[*Session]struct{}))
	}
	s.local[id.Agent][sess] = struct{}{}
	h.sessionCount.Add(1)
	h.fanout.registerLocked(s, sub, func() {
		delete(s.local[id.Agent], sess)
		if len(s.local[id.Agent]) == 0 {
			delete(s.local, id.Agent)
		}
		s.roster.remove(sub)
		h.sessionCount.Add(-1)
		release()
	})
	registered = true
	h.fanout.enqueueLocked(s, encode(welcome), []Subscriber{sub})
	// A device's first hello counts as activity: someone opened the app.
	// A device coming back while its lease lasts (a network that dropped,
	// a client renewing its token) shows nobody: an agent the idle rule set
	// away stays away.
	if !resumed {
		h.rules.activityLocked(s, id.Agent, device)
	}
	return sess, nil
}

// ensureAgent creates the agent's record if it has none and keeps its groups
// in step with the token's.
func (h *Hub) ensureAgent(ctx context.Context, site, agent string, groups []string) error {
	_, err := h.updateAgent(ctx, site, agent, func(rec *store.AgentRecord, exists bool) bool {
		if !exists {
			*rec = store.AgentRecord{Status: presence.Online, Groups: groups, At: h.cfg.Now()}
			return true
		}
		if slices.Equal(rec.Groups, groups) {
			return false
		}
		rec.Groups = groups
		return true
	})
	return err
}

// ErrBackgroundOff refuses background mode where the site has it off, and
// ErrNotMobile for a device that is not mobile.
var (
	ErrBackgroundOff = errors.New("background mode is off for this site (site setting background)")
	ErrNotMobile     = errors.New("only mobile devices have a background mode")
)

// Background puts the session's device in background mode: its lease is
// written with TTL = the site's background max, so when the operating
// system suspends the app and its socket drops, the agent stays available
// for that long instead of the grace. A new hello from the device, or
// Foreground, ends it.
func (s *Session) Background(ctx context.Context) error {
	s.mu.Lock()
	kind := s.record.Kind
	s.mu.Unlock()
	if kind != presence.Mobile {
		return ErrNotMobile
	}
	max := s.h.Settings(s.site).BackgroundMax()
	if max == 0 {
		return ErrBackgroundOff
	}
	return s.setState(ctx, presence.Background, max)
}

// Foreground ends background mode; the lease is a live one again.
func (s *Session) Foreground(ctx context.Context) error {
	return s.setState(ctx, presence.Live, 0)
}

// setState writes the session's lease with state and TTL ttl (0: the
// grace), unless it has them already or the session ended.
func (s *Session) setState(ctx context.Context, state presence.DeviceState, ttl time.Duration) error {
	if err := s.takeLease(ctx); err != nil {
		return err
	}
	defer s.releaseLease()
	s.mu.Lock()
	rec := s.record
	done := s.ended || rec.State == state && rec.TTL == ttl
	s.mu.Unlock()
	if done {
		return nil
	}
	rec.State, rec.TTL = state, ttl
	if err := s.writeOwnLease(ctx, rec); err != nil {
		return err
	}
	s.mu.Lock()
	s.record = rec
	s.mu.Unlock()
	return nil
}

// SetStatus sets the agent's status; every device of the agent, this one
// included, then receives a status frame carrying ref.
func (s *Session) SetStatus(ctx context.Context, status presence.Status, ref string) error {
	s.h.counters.statusChanges.Add(1)
	s.h.metrics.statusChanges.Inc()
	_, err := s.h.updateAgent(ctx, s.site, s.agent, func(rec *store.AgentRecord, exists bool) bool {
		if !exists {
			*rec = store.AgentRecord{Groups: s.groups} // the record was removed meanwhile
		}
		rec.Status = status
		rec.By, rec.ByID, rec.ByDevice = protocol.ByDevice, s.device, s.device
		rec.Ref = ref
		rec.At = s.h.cfg.Now()
		return true
	})
	if err == nil && status == presence.Online {
		s.Activity() // choosing online is activity: the idle clock starts
	}
	return err
}

// SubscribeRoster queues the roster of the session's site to the session's
// subscriber, then an agent frame each time an agent's effective status or
// groups change.
func (s *Session) SubscribeRoster() {
	h := s.h
	site := h.view.lockExistingSite(s.site)
	if site == nil {
		return // the session ended and took the site with it
	}
	defer h.view.unlockSite(site)
	if _, ok := site.registered[s.sub]; !ok {
		return // dropped or ended
	}
	agents := site.presence.Agents()
	roster := protocol.RosterFrame{Type: "roster", Agents: make([]protocol.RosterAgent, 0, len(agents)), Hours: siteHours(site.presence, h.cfg.Now())}
	for _, a := range agents {
		roster.Agents = append(roster.Agents, protocol.RosterAgent{ID: a.ID, Status: a.Effective(), Groups: protocol.NonNil(a.Groups)})
	}
	site.roster.add(s.sub)
	h.fanout.enqueueLocked(site, encode(roster), []Subscriber{s.sub})
}

// end unregisters the session; it reports false if it had already ended.
func (s *Session) end() bool {
	s.h.fanout.unregister(s.site, s.sub)
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
	err := s.writeDropped(ctx)
	if err != nil && !s.h.goBackground(s.dropLater) {
		s.h.log.Warn("failed to start the grace of a dropped device; its lease lasts until this replica ends",
			"site", s.site, "agent", s.agent, "device", s.device, "err", err)
	}
	return err
}

// writeDropped writes the session's lease as dropped now, which starts its
// TTL: lingering for the grace, or, in background mode (the app sleeps),
// the background max. Once stored, the index key goes: the lease runs out
// by its TTL, not with this replica.
func (s *Session) writeDropped(ctx context.Context) error {
	// A lease write in flight (a re-assertion) lands first: the grace must
	// start from this write, the last.
	if err := s.takeLease(ctx); err != nil {
		return err
	}
	defer s.releaseLease()
	if s.revoked.Load() {
		s.dropIndex(ctx)
		return nil // a revoked device has no grace
	}
	s.mu.Lock()
	rec := s.record
	s.mu.Unlock()
	rec, _ = rec.Dropped(s.h.cfg.Now(), s.h.cfg.Grace)
	err := s.writeOwnLease(ctx, rec)
	if errors.Is(err, ErrReplaced) || errors.Is(err, ErrRevoked) {
		err = nil // a newer session of the device owns the lease now, or nobody may
	}
	if err == nil {
		s.dropIndex(ctx)
	}
	return err
}

// dropLater writes the lease of an ended session as dropped, retrying
// until NATS takes it or Run ends: a live lease has no TTL, so one left
// behind would keep its device online for as long as this replica lives.
// (If Run ends first, this replica's end hands the lease over to its
// grace: its index key is still there.)
func (s *Session) dropLater(ctx context.Context) {
	for wait := jsretry.FirstWait; ; wait = min(2*wait, dropRetryMaxWait) {
		if !sleep(ctx, wait) {
			return
		}
		if err := s.writeDropped(ctx); err == nil {
			return
		}
	}
}

// dropRetryMaxWait bounds the wait between dropLater's attempts.
const dropRetryMaxWait = 5 * time.Second

// indexKey is the key that says this replica holds the session's lease.
func (s *Session) indexKey() store.Key {
	return store.IndexKey(s.site, s.h.memberID, s.agent, s.device)
}

// dropIndex removes the session's index key, unless a newer session of the
// device on this replica wrote it since. A failure is logged: the key is
// then removed when this replica ends, and a lease it names that is no
// longer held is left alone.
func (s *Session) dropIndex(ctx context.Context) {
	s.mu.Lock()
	rev := s.indexRev
	s.mu.Unlock()
	if rev == 0 {
		return
	}
	if err := s.h.store.For(s.site).DeleteIndex(ctx, s.indexKey(), rev); err != nil {
		s.h.log.Warn("failed to remove a lease index key", "site", s.site, "agent", s.agent, "device", s.device, "err", err)
	}
}

// ErrNotStored is wrapped by Bye's error when the lease could not be
// removed: the device stays online until its lease runs out the grace (or
// the purge, still retried in the background, lands), so the device must
// not be told it logged out.
var ErrNotStored = errors.New("hub: bye not stored")

// Bye ends the session deliberately: the device's lease is removed at once,
// with no grace. The purge leaves a marker that NATS removes after the
// marker TTL, so the bucket does not grow with churn.
//
// While NATS cannot take the purge (a stream leader election, a server that
// went away) it is retried until it is stored or the grace has passed,
// after which the lease has run out anyway. If ctx ends first, the retries
// go on in the background, owned by Run, and Bye returns an error wrapping
// ErrNotStored at once, as it does when the retries give up: only a nil
// error means the logout is stored.
func (s *Session) Bye(ctx context.Context) error {
	if !s.end() {
		return nil
	}
	deadline := time.Now().Add(s.h.cfg.Grace)
	rev, err := s.purgeUntil(ctx, deadline)
	if err == nil {
		s.dropIndex(ctx)
		// Returning once this replica's view has the device gone means a
		// device that reconnects here right after the bye is counted
		// without it. The purge is stored whatever the wait says.
		if err := s.h.waitApplied(ctx, s.site, rev); err != nil {
			s.h.log.Debug("bye stored but not yet applied to the view", "err", err)
		}
		return nil
	}
	if ctx.Err() != nil && time.Now().Before(deadline) && s.h.goBackground(func(bg context.Context) {
		_, err := s.purgeUntil(bg, deadline)
		switch {
		case err == nil:
			s.dropIndex(bg)
		case bg.Err() == nil:
			s.h.log.Warn("gave up removing the lease of a device that said bye; starting its grace instead",
				"site", s.site, "agent", s.agent, "device", s.device, "err", err)
			s.dropLater(bg)
		}
	}) {
		return fmt.Errorf("%w: still retrying in the background: %w", ErrNotStored, err)
	}
	// The purge gave up: the lease must not stay live for as long as this
	// replica lives; it is written as dropped instead, in the background.
	s.h.goBackground(s.dropLater)
	return fmt.Errorf("%w: %w", ErrNotStored, err)
}

// purgeUntil removes the session's lease, retrying what NATS could not take
// until deadline or until ctx ends, and returns the purge marker's revision
// (0 when there was nothing left to remove). It holds the lease token, not
// s.mu, across the retries: the session has ended, so a re-assertion skips
// it and nothing else needs the token but Bye's own purge in the
// background.
func (s *Session) purgeUntil(ctx context.Context, deadline time.Time) (uint64, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := s.takeLease(ctx); err != nil {
		return 0, err
	}
	defer s.releaseLease()
	for wait := jsretry.FirstWait; ; wait = min(2*wait, jsretry.MaxWait) {
		rev, err := s.purgeOnce(ctx)
		if err == nil || ctx.Err() != nil || s.h.cfg.WriteRetry <= 0 || !(jsretry.Retryable(err) || errors.Is(err, ErrOutcomeUnknown)) {
			return rev, err
		}
		if errors.Is(err, errInFlight) {
			// Refused at once: give the write in flight time to settle.
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return rev, err
			case <-t.C:
			}
		}
	}
}

// purgeOnce removes the session's lease once (publish retries within
// Config.WriteRetry). A purge that finds the lease replaced reads it: a
// lease held by a newer session, or already gone (an earlier attempt whose
// acknowledgement was lost landed, or it expired), needs nothing more.
// Called with the lease token held.
func (s *Session) purgeOnce(ctx context.Context) (uint64, error) {
	key := store.LeaseKey(s.site, s.agent, s.device)
	expect := s.revision()
	st := s.h.store.For(s.site)
	rev, err := st.Purge(ctx, key, expect, store.ByeMarker)
	if errors.Is(err, ErrReplaced) {
		var current uint64
		current, err = st.LeaseOwner(ctx, key, s.id)
		switch {
		case errors.Is(err, ErrReplaced):
			return 0, nil // a newer session of the device owns the lease now
		case errors.Is(err, ErrRevoked):
			return 0, nil // an admin removed it already
		case err == nil && current == 0:
			return 0, nil // already gone
		case err == nil:
			s.mu.Lock()
			s.rev = current
			s.mu.Unlock()
			rev, err = st.Purge(ctx, key, current, store.ByeMarker)
			if errors.Is(err, ErrReplaced) && current == expect {
				err = errInFlight
			}
		}
	}
	if err != nil {
		return 0, fmt.Errorf("failed to purge lease: %w", err)
	}
	return rev, nil
}

func normalizeGroups(groups []string) []string {
	if len(groups) == 0 {
		return nil
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Compact(out)
}

// liveDevices counts the agent's live devices other than except.
func (h *Hub) liveDevices(siteID, agent, except string) int {
	s := h.view.lockExistingSite(siteID)
	if s == nil {
		return 0
	}
	defer h.view.unlockSite(s)
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
