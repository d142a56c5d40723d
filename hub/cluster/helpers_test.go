package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/cluster"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
)

// waitTimeout bounds every wait of the tests: a deadline for failing, never
// a measurement.
const waitTimeout = 30 * time.Second

// partitions is the tests' layout.
const partitions = 16

// recorder records a member's callbacks, and what in them went against
// their contract (an acquire of a partition owned, a release of one not).
type recorder struct {
	mu      sync.Mutex
	owned   map[int]bool
	standby map[int]bool
	// promoted are the partitions acquired while stood by for.
	promoted map[int]bool
	gone     map[string]int
	events   []string // "lost", "restored"
	problems []string
}

func newRecorder() *recorder {
	return &recorder{owned: make(map[int]bool), standby: make(map[int]bool), promoted: make(map[int]bool), gone: make(map[string]int)}
}

func (r *recorder) hook(cfg *cluster.Config) {
	cfg.OnAcquire = func(p int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.owned[p] {
			r.problems = append(r.problems, fmt.Sprintf("partition %d acquired twice", p))
		}
		r.owned[p] = true
		if r.standby[p] {
			r.promoted[p] = true
		}
		delete(r.standby, p)
	}
	cfg.OnStandby = func(p int, standby bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.standby[p] == standby {
			r.problems = append(r.problems, fmt.Sprintf("partition %d: standby %v twice", p, standby))
		}
		if standby {
			r.standby[p] = true
		} else {
			delete(r.standby, p)
		}
	}
	cfg.OnRelease = func(p int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.owned[p] {
			r.problems = append(r.problems, fmt.Sprintf("partition %d released but not owned", p))
		}
		delete(r.owned, p)
	}
	cfg.OnReplicaGone = func(id string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.gone[id]++
	}
	cfg.OnLivenessLost = func() { r.event("lost") }
	cfg.OnLivenessRestored = func() { r.event("restored") }
}

func (r *recorder) event(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// ownedByCallbacks returns the partitions the callbacks say are owned.
func (r *recorder) ownedByCallbacks() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for p := range r.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// standbyByCallbacks returns the partitions the callbacks say are stood
// by for, and those acquired while stood by for.
func (r *recorder) standbyByCallbacks() (standby, promoted []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.standby)), slices.Sorted(maps.Keys(r.promoted))
}

func (r *recorder) goneCount(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone[id]
}

func (r *recorder) eventList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// node is a member running in the test, with a NATS connection of its own.
type node struct {
	id   string
	m    *cluster.Member
	rec  *recorder
	nc   *nats.Conn
	stop func() // cancels Run and waits for it
}

// startNode connects to url, runs a member id with ttl (and what opts
// change of its configuration) until the test ends or stop is called, and
// waits until it is ready.
func startNode(t *testing.T, url, id string, ttl time.Duration, opts ...func(*cluster.Config)) *node {
	t.Helper()
	nc := natstest.ConnectURL(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	members, err := store.OpenMembers(ctx, js, store.MembersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, rec: newRecorder(), nc: nc}
	cfg := cluster.Config{
		Members: members, ID: id, TTL: ttl, Partitions: partitions,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id),
	}
	n.rec.hook(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	if n.m, err = cluster.New(cfg); err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.m.Run(runCtx) }()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			stopRun()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: Run: %v", id, err)
				}
			case <-time.After(waitTimeout):
				t.Errorf("%s: Run did not return after its context ended", id)
			}
		})
	}
	t.Cleanup(func() {
		n.stop()
		n.rec.mu.Lock()
		defer n.rec.mu.Unlock()
		for _, p := range n.rec.problems {
			t.Errorf("%s: %s", id, p)
		}
	})
	select {
	case <-n.m.Ready():
	case <-time.After(waitTimeout):
		t.Fatalf("%s not ready after %v", id, waitTimeout)
	}
	return n
}

// sawGone returns nil once each of nodes has seen gone gone, else who has
// not.
func sawGone(gone string, nodes ...*node) error {
	for _, n := range nodes {
		if n.rec.goneCount(gone) == 0 {
			return fmt.Errorf("%s has not seen %s gone", n.id, gone)
		}
	}
	return nil
}

// checkGoneOnce fails the test unless each of nodes saw gone gone once.
func checkGoneOnce(t *testing.T, gone string, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		if got := n.rec.goneCount(gone); got != 1 {
			t.Errorf("%s saw %s gone %d times, want 1", n.id, gone, got)
		}
	}
}

// startThree starts members hub-a, hub-b and hub-c on url and waits until
// they share the partitions.
func startThree(t *testing.T, url string, ttl time.Duration) (a, b, c *node) {
	t.Helper()
	a = startNode(t, url, "hub-a", ttl)
	b = startNode(t, url, "hub-b", ttl)
	c = startNode(t, url, "hub-c", ttl)
	waitSettled(t, "three members share the partitions", a, b, c)
	return a, b, c
}

// eventually waits until cond returns nil, failing the test with what and
// cond's last error if it does not within waitTimeout. For state that
// changes on the members' own goroutines, with no event to wait on.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond) // polling the condition, as wstest.Eventually does
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v: %v", what, waitTimeout, err)
		}
		<-tick.C
	}
}

// settled reports whether nodes own every partition between them, each at
// least one, none twice, with the callbacks agreeing with Owned, and every
// node sees them all live; else it says why not.
func settled(nodes ...*node) error {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.id)
	}
	slices.Sort(ids)
	owner := make(map[int]string)
	for _, n := range nodes {
		owned := n.m.Owned()
		if len(owned) == 0 {
			return fmt.Errorf("%s owns no partition", n.id)
		}
		if cb := n.rec.ownedByCallbacks(); !slices.Equal(cb, owned) {
			return fmt.Errorf("%s owns %v, its callbacks say %v", n.id, owned, cb)
		}
		for _, p := range owned {
			if o, ok := owner[p]; ok {
				return fmt.Errorf("partition %d owned by %s and %s", p, o, n.id)
			}
			owner[p] = n.id
		}
		if live := n.m.Live(); !slices.Equal(live, ids) {
			return fmt.Errorf("%s sees %v live, want %v", n.id, live, ids)
		}
	}
	if len(owner) != partitions {
		return fmt.Errorf("%d of %d partitions owned", len(owner), partitions)
	}
	return nil
}

// waitSettled waits until settled(nodes...) holds.
func waitSettled(t *testing.T, what string, nodes ...*node) {
	t.Helper()
	eventually(t, what, func() error { return settled(nodes...) })
}
