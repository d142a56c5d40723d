package hub

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub/cluster"
	"github.com/presencehub/presencehub/hub/store"
)

// membership is the part of a Hub that keeps its place in the cluster:
// the layout (layout.go), the member (package cluster) and what its
// callbacks start: the hand-over of a gone replica's leases, the
// re-assertion of this replica's own. Its methods run on Run's goroutine
// (join) and on the member's callbacks, which start goroutines of Run's.
type membership struct {
	h *Hub
}

// join opens the cluster bucket if the config has none, reads the
// deployment's layout, and makes this replica's member of the cluster.
func (m *membership) join(ctx context.Context) error {
	h := m.h
	members := h.cfg.Members
	if members == nil {
		var err error
		members, err = store.OpenMembers(ctx, h.js, store.MembersConfig{
			Name: h.cfg.Bucket.Name() + "-cluster", Replicas: h.cfg.Bucket.Replicas(), LimitMarkerTTL: h.cfg.MarkerTTL,
		})
		if err != nil {
			return err
		}
	}
	n, err := m.openLayout(ctx, members)
	if err != nil {
		return err
	}
	member, err := cluster.New(cluster.Config{
		Members: members, ID: h.memberID, TTL: h.cfg.LivenessTTL, Partitions: n,
		Logger: h.log, Now: h.cfg.Now,
		OnAcquire:          h.duty.acquire,
		OnRelease:          h.duty.release,
		OnStandby:          h.duty.standBy,
		OnAnnounce:         h.duty.announced,
		OnReplicaGone:      m.replicaGone,
		OnLivenessRestored: func() { h.goBackground(m.reassertLeases) },
	})
	if err != nil {
		return err
	}
	h.member = member
	return nil
}

// Liveness per replica: a live session's lease has no TTL, and the
// replica's one liveness key (package cluster) stands for all of them.
// When a replica's liveness key runs out (it crashed, or was cut off from
// NATS for longer than its TTL), one surviving replica, the winner of a
// compare-and-set claim, writes each lease that replica held as dropped,
// which starts its grace: a device of a dead replica is offline at most
// the liveness TTL plus the grace after its replica's last heartbeat.
// The replica's index keys (store.IndexKey) say which leases those are.

// replicaGone hands the leases of replica id, whose liveness key is gone,
// over to their grace. Called by the cluster member; runs in the
// background.
func (m *membership) replicaGone(id string) {
	h := m.h
	if id == h.memberID {
		return
	}
	h.goBackground(func(ctx context.Context) { m.takeOver(ctx, id) })
}

// takeOver claims the take-over of replica id's leases and drops them; if
// another replica holds the claim, it checks after a claim's TTL that the
// index is empty and tries again otherwise, so that a taker that died
// part-way is replaced.
func (m *membership) takeOver(ctx context.Context, id string) {
	h := m.h
	ttl := h.member.TTL()
	for {
		won, err := h.member.Claim(ctx, "takeover."+id, ttl)
		if err == nil && won {
			n, err := m.dropLeasesOf(ctx, id)
			if err == nil {
				h.log.Info("replica gone: started the grace of its devices", "replica", id, "devices", n)
				if err := h.member.Forget(ctx, id); err != nil {
					h.log.Warn("failed to forget a gone replica", "replica", id, "err", err)
				}
				return
			}
			h.log.Warn("failed to start the grace of a gone replica's devices", "replica", id, "err", err)
		}
		if err != nil && ctx.Err() == nil {
			h.log.Warn("failed to claim the take-over of a gone replica", "replica", id, "err", err)
		}
		if !sleep(ctx, ttl) {
			return
		}
		if h.member.Alive(id) {
			return // it came back and re-asserts its leases itself
		}
		keys, err := h.store.ListIndex(ctx, id)
		if err == nil && len(keys) == 0 {
			return // another replica did it
		}
	}
}

// dropConcurrency bounds the lease writes in flight at once in a take-over.
const dropConcurrency = 64

// dropLeasesOf drops every lease replica id held live, and returns how
// many it wrote. It follows each site while it writes, so that this
// replica's view derives the drops' events, whether or not another replica
// holds the site: its partition's owner may be the replica that is gone.
func (m *membership) dropLeasesOf(ctx context.Context, id string) (int, error) {
	h := m.h
	keys, err := h.store.ListIndex(ctx, id)
	if err != nil {
		return 0, err
	}
	bySite := make(map[string][]store.Key)
	for _, k := range keys {
		bySite[k.Site] = append(bySite[k.Site], k)
	}
	var g errgroup.Group
	g.SetLimit(dropConcurrency)
	var dropped atomic.Int64
	for site, keys := range bySite {
		g.Go(func() error {
			release, err := h.visit(ctx, site)
			if err != nil {
				return err
			}
			defer release()
			for _, k := range keys {
				ok, err := h.store.For(site).DropIndexed(ctx, k, h.cfg.Now())
				if err != nil {
					return err
				}
				if ok {
					dropped.Add(1)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return int(dropped.Load()), err
}
