package hub

import (
	"context"
	"sync"
	"time"

	"github.com/presencehub/presencehub/hub/events"
)

// One publish per event. The events of a partition are published by its
// owner alone: its watch reads every entry of the partition's bucket, in
// order, into a view that holds every site of the partition, and derives
// each change's events from it (events.Derive). Replicas that only follow a
// site derive nothing.
//
// The partition's standby (package cluster: the replica that would own it
// if its owner went) runs the same watch and derives the same events, but
// keeps them instead of publishing them, for events.MaxRetryAge:
//
//   - when it comes to own the partition (its owner died, or left), it
//     publishes what it kept, then publishes as the owner: events the old
//     owner had not published yet, or not had acknowledged, are published,
//     and JetStream drops the copies of those it had, by their ids;
//   - when another replica comes to own the partition and has loaded it
//     (an owner that was not the standby announces the revision its watch
//     loaded, store.Members.Announce), the standby publishes what it kept up
//     to that revision: the entries between the old owner's release and the
//     new owner's load have their events, the ones before are copies.
//
// A copy is published only while it is younger than MaxRetryAge, so that it
// lands inside the stream's duplicate window. So a partition's events are
// published once while its owner lives, and once, with copies that the
// stream drops, when ownership moves; only an owner and its standby gone
// together (or a deployment of one replica restarting) lose the events of
// the changes made meanwhile.

// eventDuty is one watched partition's share of the event duty: publish
// (owner) or keep (standby).
type eventDuty struct {
	mu sync.Mutex
	// owner is set while this replica owns the partition. Guarded by mu,
	// as is everything below.
	owner bool
	// kept are the standby's events, in the order derived, from
	// kept[head] on (the ones before were forgotten).
	kept []keptEvents
	head int
	// through is the revision a new owner announced it loaded from: what
	// the standby derives up to it is published at once.
	through uint64
}

// keptEvents are the events of one change a standby keeps.
type keptEvents struct {
	rev uint64 // the entry's revision; 0 for a working-hours boundary's
	at  time.Time
	evs []events.Event
}

// DefaultStandbyKept is Config.StandbyKept's default: the changes a
// standby keeps; the oldest go first.
const DefaultStandbyKept = 1 << 16

// take publishes evs (the events of revision rev) as the owner, or keeps
// them as the standby.
func (d *eventDuty) take(h *Hub, rev uint64, evs []events.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner || (rev != 0 && rev <= d.through) {
		h.events.Publish(evs)
		return
	}
	now := h.cfg.Now()
	d.pruneLocked(now)
	if len(d.kept)-d.head >= h.cfg.StandbyKept {
		d.kept[d.head] = keptEvents{}
		d.head++
		h.metrics.eventsKeptDropped.Inc()
	}
	d.kept = append(d.kept, keptEvents{rev: rev, at: now, evs: evs})
}

// pruneLocked forgets kept events too old to be published as copies, and
// moves the rest to the slice's start once the forgotten ones are half of
// it.
func (d *eventDuty) pruneLocked(now time.Time) {
	for d.head < len(d.kept) && now.Sub(d.kept[d.head].at) >= events.MaxRetryAge {
		d.kept[d.head] = keptEvents{}
		d.head++
	}
	if d.head > 0 && d.head >= len(d.kept)/2 {
		n := copy(d.kept, d.kept[d.head:])
		clear(d.kept[n:])
		d.kept, d.head = d.kept[:n], 0
	}
}

// promote makes the standby the owner: what it kept is published first.
func (d *eventDuty) promote(h *Hub) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner {
		return
	}
	d.owner = true
	d.publishKeptLocked(h, 0)
}

// isOwner reports whether this replica publishes the partition's events.
func (d *eventDuty) isOwner() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.owner
}

// demote makes the owner a standby.
func (d *eventDuty) demote() {
	d.mu.Lock()
	d.owner, d.through = false, 0
	d.mu.Unlock()
}

// announced publishes, on the standby, what it kept up to rev: another
// replica owns the partition now, and derives the events of the entries
// after rev.
func (d *eventDuty) announced(h *Hub, rev uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.owner {
		return
	}
	d.through = max(d.through, rev)
	d.publishKeptLocked(h, rev)
}

// publishKeptLocked publishes the kept events of revisions up to rev (all
// for 0), boundaries' included, and forgets them.
func (d *eventDuty) publishKeptLocked(h *Hub, rev uint64) {
	d.pruneLocked(h.cfg.Now())
	var rest []keptEvents
	n := 0
	for _, k := range d.kept[d.head:] {
		if rev != 0 && k.rev > rev {
			rest = append(rest, k)
			continue
		}
		h.events.Publish(k.evs)
		n += len(k.evs)
	}
	d.kept, d.head = rest, 0
	if n > 0 {
		h.log.Info("published the events a standby kept", "events", n, "through", rev)
		h.metrics.eventsKeptPublished.Add(float64(n))
	}
}

// derivesEvents reports whether this replica derives the events of
// partition: it watches it, as its owner or its standby.
func (h *Hub) derivesEvents(partition int) bool {
	return h.events != nil && h.duty.eventDuty(partition) != nil
}

// publishEvents publishes, or keeps as the standby, the events of revision
// rev (0 for a working-hours boundary) of partition; a replica that does
// not watch the partition drops them: its owner publishes them.
func (h *Hub) publishEvents(partition int, rev uint64, evs []events.Event) {
	if len(evs) == 0 || h.events == nil {
		return
	}
	if d := h.duty.eventDuty(partition); d != nil {
		d.take(h, rev, evs)
	}
}

// announceLoaded tells the partition's standby, and every replica waiting
// to serve (cluster.Member.OwnersLoaded), that this replica, its owner, has
// loaded the partition up to rev (see above); in the background, retried by
// the store's writes.
func (h *Hub) announceLoaded(partition int, rev uint64) {
	if h.member == nil {
		return
	}
	h.goBackground(func(ctx context.Context) {
		if err := h.member.Announce(ctx, partition, rev); err != nil && ctx.Err() == nil {
			h.log.Warn("failed to announce a partition's load to its standby", "partition", partition, "err", err)
		}
	})
}
