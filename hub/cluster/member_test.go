package cluster_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub/cluster"
	"github.com/presencehub/presencehub/internal/natstest"
)

// TestMembersSharePartitions: three members on one server own every
// partition between them, each at least one, none twice.
func TestMembersSharePartitions(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b, c := startThree(t, url, 2*time.Second)
	for _, n := range []*node{a, b, c} {
		if n.m.Partitions() != partitions {
			t.Errorf("%s: %d partitions, want %d", n.id, n.m.Partitions(), partitions)
		}
		for _, p := range n.m.Owned() {
			if !n.m.Owns(p) {
				t.Errorf("%s: Owned lists %d, Owns says no", n.id, p)
			}
		}
	}
}

// TestGracefulLeaveHandsOverAtOnce: a member whose Run ends releases its
// partitions and its liveness key, and the others own everything long
// before the keys' TTL (a minute here, twice the test's wait) could have
// expired them; each saw the leaver gone once.
func TestGracefulLeaveHandsOverAtOnce(t *testing.T) {
	const ttl = 2 * waitTimeout
	url := natstest.Start(t).ClientURL()
	a, b, c := startThree(t, url, ttl)

	c.stop()
	if owned, cb := c.m.Owned(), c.rec.ownedByCallbacks(); len(owned) != 0 || len(cb) != 0 {
		t.Errorf("the leaver still owns %v (callbacks: %v)", owned, cb)
	}
	if c.m.Alive(c.id) {
		t.Error("the leaver still says it is live")
	}
	waitSettled(t, "the two left take over", a, b)
	checkGoneOnce(t, c.id, a, b)
}

// TestCrashedMembersPartitionsMove: a member that stops writing without
// releasing anything (its NATS connection closed, as a crash leaves it)
// loses its liveness and partition keys when their TTL runs out; the
// others then own everything, and each saw it gone once.
func TestCrashedMembersPartitionsMove(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b, c := startThree(t, url, 2*time.Second)

	c.nc.Close()
	eventually(t, "the two left take over", func() error {
		return cmp.Or(sawGone(c.id, a, b), settled(a, b))
	})
	checkGoneOnce(t, c.id, a, b)
}

// TestStandbyIsTheNextOwner: with three members, every partition has one
// standby, never its owner; when an owner crashes, each of its partitions
// goes to its standby, which acquires it without having stopped standing
// by (so a hub's watch of it runs on, and the events it kept are
// published).
func TestStandbyIsTheNextOwner(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b, c := startThree(t, url, 2*time.Second)
	standby := make(map[int]string)
	eventually(t, "every partition has one standby, not its owner", func() error {
		clear(standby)
		for _, n := range []*node{a, b, c} {
			sb, _ := n.rec.standbyByCallbacks()
			for _, p := range sb {
				if o, ok := standby[p]; ok {
					return fmt.Errorf("partition %d stood by for by %s and %s", p, o, n.id)
				}
				if n.m.Owns(p) {
					return fmt.Errorf("%s stands by for %d, which it owns", n.id, p)
				}
				standby[p] = n.id
			}
		}
		if len(standby) != partitions {
			return fmt.Errorf("%d partitions have a standby, want %d", len(standby), partitions)
		}
		return nil
	})
	ofC := c.m.Owned()
	want := make(map[int]string, len(ofC))
	for _, p := range ofC {
		want[p] = standby[p]
	}

	c.nc.Close()
	eventually(t, "the two left take over", func() error { return settled(a, b) })
	for p, id := range want {
		n := map[string]*node{a.id: a, b.id: b}[id]
		if !n.m.Owns(p) {
			t.Errorf("partition %d of the crashed member went to another than its standby %s", p, id)
			continue
		}
		if _, promoted := n.rec.standbyByCallbacks(); !slices.Contains(promoted, p) {
			t.Errorf("%s acquired partition %d without standing by for it up to then", id, p)
		}
	}
}

// TestClaimHasOneWinner: five callers on three members claim the same duty
// at once; exactly one wins.
func TestClaimHasOneWinner(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a, b, c := startThree(t, url, 2*time.Second)
	nodes := []*node{a, b, c}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		start = make(chan struct{})
	)
	for i := range 5 {
		wg.Go(func() {
			<-start
			won, err := nodes[i%len(nodes)].m.Claim(ctx, "signoff.acme.2026-05-04", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if won {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d claims won, want 1", wins)
	}
	if won, err := nodes[0].m.Claim(ctx, "bad name", time.Minute); err == nil || won {
		t.Errorf("claim of an invalid name: %v, %v; want an error", won, err)
	}
}

// TestLayoutOfTheFirstMemberWins: a member configured with another count
// than the stored layout's uses the stored one.
func TestLayoutOfTheFirstMemberWins(t *testing.T) {
	url := natstest.Start(t).ClientURL()
	a := startNode(t, url, "hub-a", 2*time.Second)
	b := startNode(t, url, "hub-b", 2*time.Second, func(cfg *cluster.Config) { cfg.Partitions = 2 * partitions })
	if got := b.m.Partitions(); got != partitions {
		t.Errorf("second member: %d partitions, want the stored %d", got, partitions)
	}
	if got, want := b.m.PartitionOf("acme"), cluster.PartitionOf("acme", partitions); got != want {
		t.Errorf("PartitionOf(acme) = %d, want %d", got, want)
	}
	waitSettled(t, "two members share the partitions", a, b)
}
