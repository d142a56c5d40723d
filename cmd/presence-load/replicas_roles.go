package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/cluster"
	"github.com/presencehub/presencehub/hub/store"
)

// The replicas' roles in a deployment of `presence-load replicas`: for
// each partition of sites, the replica that owns it (its duties, and the
// publishing of its events) and its standby, the replica that would own it
// if the owner went, which derives and keeps the same events (issue 22).
// Both hold every site of the partition; a replica that is neither holds
// only the sites of its own clients.

// roles are the owner and the standby of each partition, as indexes into
// the deployment's replicas (-1: none).
type roles struct {
	owner, standby []int
}

// rolesOf computes the roles the replicas of cluster ids ids (all of them
// live) take for partitions partitions: the replicas compute the same by
// rendezvous hashing (cluster.Roles). waitRoles then checks the replicas'
// own gauges against them.
func rolesOf(ids []string, partitions int) *roles {
	idx := map[string]int{"": -1}
	for i, id := range ids {
		idx[id] = i
	}
	r := &roles{owner: make([]int, partitions), standby: make([]int, partitions)}
	for p := range partitions {
		o, s := cluster.Roles(p, ids)
		r.owner[p], r.standby[p] = idx[o], idx[s]
	}
	return r
}

// count returns how many partitions replica i owns, and stands by for.
func (r *roles) count(i int) (owned, standby int) {
	for p := range r.owner {
		if r.owner[p] == i {
			owned++
		}
		if r.standby[p] == i {
			standby++
		}
	}
	return owned, standby
}

// watches reports whether replica i owns partition p or stands by for it:
// it then holds every site of p.
func (r *roles) watches(i, p int) bool { return r.owner[p] == i || r.standby[p] == i }

// waitRoles waits until every replica's liveness key is in the members
// bucket and every replica has loaded the partitions it owns and stands by
// for (presencehub_duties and presencehub_standby_partitions count only
// loaded watches), and returns the roles. They can still move later (the
// measurements check that they did not), but not for the replicas having
// joined.
func (d *deployment) waitRoles(ctx context.Context, partitions int) (*roles, error) {
	deadline := time.Now().Add(d.cfg.timeout)
	for {
		ro, err := d.checkRoles(ctx, partitions)
		if err == nil {
			return ro, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("after %v: %w", d.cfg.timeout, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil { // polling NATS and /metrics for an event
			return nil, err
		}
	}
}

// checkRoles is waitRoles' check: it returns the roles once every replica
// has taken its own.
func (d *deployment) checkRoles(ctx context.Context, partitions int) (*roles, error) {
	ids, err := d.memberIDs(ctx)
	if err != nil {
		return nil, err
	}
	want := rolesOf(ids, partitions)
	for i, r := range d.replicas {
		m, err := d.scrape(ctx, r.url+"/metrics")
		if err != nil {
			return nil, err
		}
		owned, standby := want.count(i)
		if got := int(m["presencehub_duties"]); got != owned {
			return nil, fmt.Errorf("%s owns %d partitions, not %d", r.name, got, owned)
		}
		if got := int(m["presencehub_standby_partitions"]); got != standby {
			return nil, fmt.Errorf("%s stands by for %d partitions, not %d", r.name, got, standby)
		}
	}
	return want, nil
}

// memberIDs returns each replica's cluster id, read from the liveness keys
// in the members bucket's stream (only hub/store holds a key-value
// handle): a subject whose last message is not a removal's marker is a
// live replica's. A replica's cluster id is its --replica-id, a dash, and
// a suffix of its run (hub.memberID).
func (d *deployment) memberIDs(ctx context.Context) ([]string, error) {
	prefix := "$KV." + store.DefaultMembersBucket + "." + store.LivenessPrefix
	stream, err := d.js.Stream(ctx, "KV_"+store.DefaultMembersBucket)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(d.replicas))
	live := 0
	for subject := range info.State.Subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			return nil, err
		}
		if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
			continue
		}
		id := strings.TrimPrefix(subject, prefix)
		name := id[:max(strings.LastIndexByte(id, '-'), 0)]
		i := slices.IndexFunc(d.replicas, func(r *replica) bool { return r.name == name })
		if i < 0 || ids[i] != "" {
			return nil, fmt.Errorf("a liveness key of no replica, or a second one: %s", id)
		}
		ids[i] = id
		live++
	}
	if live != len(d.replicas) {
		return nil, fmt.Errorf("%d of %d replicas' liveness keys in the members bucket", live, len(d.replicas))
	}
	return ids, nil
}

// checkWindowRoles returns an error when a replica's roles moved during
// a measurement window, or differ from want.
func checkWindowRoles(w *window, want *roles) error {
	for i, r := range w.Replicas {
		owned, standby := want.count(i)
		if r.Owned != owned || r.ownedAtStart != owned || r.Standby != standby || r.standbyAtStart != standby {
			return fmt.Errorf("the partitions' owners or standbys moved during the measurement (%s owns %d then %d, stands by for %d then %d; want %d and %d): run again",
				r.Name, r.ownedAtStart, r.Owned, r.standbyAtStart, r.Standby, owned, standby)
		}
	}
	return nil
}
