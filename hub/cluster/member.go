package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presencehub/presencehub/hub/store"
)

// DefaultTTL is the default TTL of the liveness and ownership keys.
const DefaultTTL = 10 * time.Second

// DefaultPartitions is the partition count a new deployment gets when
// Config.Partitions is 0.
const DefaultPartitions = 64

// Config configures a Member.
type Config struct {
	// Members is the members bucket; required.
	Members *store.Members
	// ID is this replica's id, unique in the cluster; required. 1-64 of
	// A-Za-z0-9 and -_=/. (a host name fits).
	ID string
	// TTL is the TTL of the liveness and ownership keys, refreshed every
	// TTL/3; default DefaultTTL, at least 1s, whole seconds (NATS keeps
	// TTLs in whole seconds; a fraction is dropped).
	TTL time.Duration
	// Partitions is the partition count asked for; the count stored in
	// the bucket's layout when the deployment was created wins. Default
	// DefaultPartitions; 1..store.MaxPartitions.
	Partitions int
	// Logger receives the member's logs; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time

	// The callbacks, each optional, are called on Run's goroutine, in
	// order, never two at once, and never with a lock of the member held:
	// they may call the member's accessors.

	// OnAcquire is called when this replica comes to own partition.
	OnAcquire func(partition int)
	// OnRelease is called when it no longer owns partition: released
	// for another replica, lost (its key expired or was taken), or
	// because the member stops.
	OnRelease func(partition int)
	// OnStandby is called with true when this replica comes to stand by
	// for partition: it is the one that would own it if its owner went
	// (the next in rendezvous order among the live replicas), and with
	// false when it is neither that nor the owner any more. A standby
	// that comes to own the partition gets OnAcquire, and no OnStandby
	// in between; one that leaves the membership (liveness lost, Run
	// ending) gets OnStandby false.
	OnStandby func(partition int, standby bool)
	// OnAnnounce is called when a replica (this one included) announces
	// that, as partition's owner, it has loaded the partition's bucket up
	// to revision rev (Announce).
	OnAnnounce func(partition int, id string, rev uint64)
	// OnReplicaGone is called when another replica this member saw live
	// is live no more: its liveness key expired (it crashed, or was cut
	// off from NATS for longer than the TTL) or was removed (it stopped
	// gracefully). Not called for replicas gone before the member
	// started: compare against Live once Ready is closed for those.
	OnReplicaGone func(id string)
	// OnLivenessLost is called when this replica finds its own liveness
	// key expired or replaced, or knows it expired (not refreshed for a
	// TTL): other replicas may have started the grace of its devices. It
	// is called before the member creates the key again, and after it
	// the member releases (OnRelease) every partition it owned.
	OnLivenessLost func()
	// OnLivenessRestored is called when the key exists again after
	// OnLivenessLost: the hub asserts its devices' leases again.
	OnLivenessRestored func()
}

// Member is one replica's membership of the cluster. Run keeps it; the
// accessors and Claim may be called from any goroutine.
type Member struct {
	cfg     Config
	log     *slog.Logger
	value   []byte // the liveness key's value, one per member
	ready   chan struct{}
	readyOK sync.Once
	// ownersLoaded is closed once every partition's owner has announced
	// its load (OwnersLoaded).
	ownersLoaded   chan struct{}
	ownersLoadedOK sync.Once
	running        atomic.Bool
	parts          atomic.Int32 // the layout's count; 0 until Run has read it

	mu     sync.Mutex
	alive  bool                  // guarded by mu: the liveness key is stored and not known lost
	others map[string]struct{}   // guarded by mu: the other live replicas
	owned  map[int]*partitionKey // guarded by mu: the partitions this replica owns

	loop loopState // Run's goroutine alone
}

// liveness is the value of a replica's liveness key. Run tells this
// member's value from a previous run's with the same id (a write that
// finds its own value in place takes it for its own, see
// store.Members.Heartbeat), whatever the clock says.
type liveness struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	Run     string    `json:"run"`
}

// New returns a member of the cluster; Run keeps it.
func New(cfg Config) (*Member, error) {
	switch {
	case cfg.Members == nil:
		return nil, errors.New("cluster: Config.Members is required")
	case cfg.ID == "" || len(cfg.ID) > 64 || !store.ValidMembersKey(store.LivenessPrefix+cfg.ID):
		return nil, fmt.Errorf("cluster: invalid replica id %q: want 1-64 of A-Za-z0-9-_=/. without empty tokens", cfg.ID)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("cluster: TTL %v is below NATS's resolution of 1s", cfg.TTL)
	}
	cfg.TTL = cfg.TTL.Truncate(time.Second)
	if cfg.Partitions == 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.Partitions < 1 || cfg.Partitions > store.MaxPartitions {
		return nil, fmt.Errorf("cluster: %d partitions, want 1..%d", cfg.Partitions, store.MaxPartitions)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, f := range []*func(int){&cfg.OnAcquire, &cfg.OnRelease} {
		if *f == nil {
			*f = func(int) {}
		}
	}
	if cfg.OnStandby == nil {
		cfg.OnStandby = func(int, bool) {}
	}
	if cfg.OnAnnounce == nil {
		cfg.OnAnnounce = func(int, string, uint64) {}
	}
	if cfg.OnReplicaGone == nil {
		cfg.OnReplicaGone = func(string) {}
	}
	for _, f := range []*func(){&cfg.OnLivenessLost, &cfg.OnLivenessRestored} {
		if *f == nil {
			*f = func() {}
		}
	}
	value, _ := json.Marshal(liveness{ID: cfg.ID, Started: cfg.Now().UTC(), Run: rand.Text()})
	return &Member{
		cfg:          cfg,
		log:          cfg.Logger.With("replica", cfg.ID),
		value:        value,
		ready:        make(chan struct{}),
		others:       make(map[string]struct{}),
		owned:        make(map[int]*partitionKey),
		loop:         loopState{owners: make(map[int]owner), standby: make(map[int]bool), announced: make(map[int]string)},
		ownersLoaded: make(chan struct{}),
	}, nil
}

// ID returns this replica's id.
func (m *Member) ID() string { return m.cfg.ID }

// TTL returns the TTL of the liveness and ownership keys.
func (m *Member) TTL() time.Duration { return m.cfg.TTL }

// Ready returns a channel closed once Run has read the layout, stored the
// first liveness key and loaded the first snapshot of the bucket, so that
// Partitions, PartitionOf and Live answer.
func (m *Member) Ready() <-chan struct{} { return m.ready }

// Partitions returns the layout's partition count, 0 before Run has read
// it.
func (m *Member) Partitions() int { return int(m.parts.Load()) }

// PartitionOf returns the partition of site, -1 before Run has read the
// layout.
func (m *Member) PartitionOf(site string) int {
	n := m.Partitions()
	if n == 0 {
		return -1
	}
	return PartitionOf(site, n)
}

// PartitionOf returns the partition of site among n (n > 0): its FNV-1a
// hash modulo n (store.PartitionOf).
func PartitionOf(site string, n int) int { return store.PartitionOf(site, n) }

// Owns reports whether this replica owns partition now.
func (m *Member) Owns(partition int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.owned[partition]
	return ok
}

// Owned returns the partitions this replica owns now, sorted.
func (m *Member) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, 0, len(m.owned))
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// OwnersLoaded returns a channel that is closed the first time every
// partition is owned by a replica that has announced, as its owner, that it
// loaded it (Announce): from then on, each partition's changes have a
// replica that derives their events.
func (m *Member) OwnersLoaded() <-chan struct{} { return m.ownersLoaded }

// checkOwnersLoaded closes ownersLoaded if every partition's owner has
// announced its load.
func (m *Member) checkOwnersLoaded() {
	n := m.Partitions()
	if n == 0 {
		return
	}
	for p := range n {
		o, held := m.loop.owners[p]
		if !held || m.loop.announced[p] != o.id {
			return
		}
	}
	m.ownersLoadedOK.Do(func() { close(m.ownersLoaded) })
}

// Announce tells the other replicas, through the members bucket, that this
// replica, as partition's owner, has loaded it up to revision rev.
func (m *Member) Announce(ctx context.Context, partition int, rev uint64) error {
	return m.cfg.Members.Announce(ctx, partition, m.cfg.ID, rev)
}

// Live returns the ids of the live replicas, sorted: those whose liveness
// key the watch saw stored and not yet removed, and this one while its own
// key is stored.
func (m *Member) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.others)+1)
	for id := range m.others {
		out = append(out, id)
	}
	if m.alive {
		out = append(out, m.cfg.ID)
	}
	slices.Sort(out)
	return out
}

// Alive reports whether replica id is live, as Live says.
func (m *Member) Alive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == m.cfg.ID {
		return m.alive
	}
	_, ok := m.others[id]
	return ok
}

// setAlive records whether this replica's liveness key is stored.
func (m *Member) setAlive(alive bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alive = alive
}

// isAlive reports whether this replica's liveness key is stored.
func (m *Member) isAlive() bool { return m.Alive(m.cfg.ID) }

// markReady closes Ready once the layout, the first liveness key and the
// first snapshot are there.
func (m *Member) markReady() {
	if m.loop.rev != 0 && m.loop.loaded {
		m.readyOK.Do(func() { close(m.ready) })
	}
}
