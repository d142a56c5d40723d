// Package hub owns one replica's in-memory state of the sites it serves,
// kept in step with the presence bucket, and fans the frames its changes
// produce out to local subscribers. docs/architecture.md follows one status
// change through it.
//
// A Hub is composed of parts, each a type in the files named for it:
//   - view (view.go, registry.go): every site's state, each site behind its
//     own lock, found through a sharded registry; apply.go applies a bucket
//     entry and returns its change record (package change); frames.go
//     turns the records gathered while a site was locked into frames when
//     it is unlocked.
//   - follows (follow.go, follow_loop.go): the sites this replica follows
//     by interest (a local client, a request), each through core NATS
//     subscriptions to its republished keys and one read of them.
//   - duty (duty.go): for each partition of sites this replica owns or
//     stands by for (package cluster), a whole-bucket watcher (watch.go)
//     of that partition's bucket feeds the view with every site of it
//     (watch_sites.go), for what must happen where no replica has a
//     client; the reconcile after a reconnect or missed revisions, and the
//     events of what it applies (package events derives them; the owner
//     publishes them, the standby keeps them: event_duty.go).
//   - liveness (liveness.go): this replica's membership of the cluster
//     (package cluster) stands for its live sessions' leases; the leases
//     of a replica that is gone are handed over to their grace here.
//   - fanout (fanout.go): subscribers, per-site outboxes, sending,
//     dropping the slow.
//   - rules (worker.go): carries out what package presence decides: the idle
//     rule (activity.go), sign-off at close (signoff.go), the uncovered
//     alert (coverage.go), working hours' boundaries (hours.go).
//   - stats (stats.go): this replica's numbers, and the other replicas'.
//   - sessions (session.go, lease.go): device sessions and their leases.
//
// Every read and write of the bucket goes through package store
// (store.go holds the hub's few uses of it); health.go probes it for
// readiness.
//
// Goroutines: Run starts and owns the cluster member (package cluster:
// heartbeats, the members bucket's watch, partition ownership and the
// callbacks), the follow loop (applies the followed sites' republished
// messages and loads in order; loads run on short-lived goroutines, at
// most 16 at once), a whole-bucket watcher for each partition this replica
// owns (applies its bucket's updates to the view; it re-reads a full
// snapshot after every NATS reconnect and after missing revisions), the
// stats
// publisher (publishes this replica's numbers over NATS and answers
// per-site questions from other replicas), the health prober (asks
// JetStream every few seconds whether it answers, for Healthy) and the
// rule workers (Config.RuleWorkers of them, 4 by default), which carry
// out the rules' decisions (writing activity keys and idle clocks,
// restoring agents from idle, signing agents off, writing and purging
// coverage keys, publishing coverage events) from a queue that holds at
// most one decision per key and never blocks who adds to it; all end when
// Run's context is done, the workers dropping what is still queued. A
// watch that ends is stopped on a goroutine of its own (deleting its
// consumer can wait out a timeout), a bye whose caller gave up goes on
// purging its lease on a goroutine of its own (session.go), the take-over
// of a gone replica's leases and the re-assertion of this replica's run
// on goroutines of their own (liveness.go, lease.go), and events whose
// publish failed are published again by the event publisher's retry
// goroutine while any wait; Run waits for all of them. A site with frames
// to send has one delivery goroutine, started when its outbox gets frames
// and ended when it is empty; a large fan-out splits its sends over
// short-lived goroutines (one per core, at most 8) and waits for them.
// A site unfollowed after Config.FollowLinger is dropped by a runtime
// timer's callback. // Working-hours timers run their callbacks on the runtime's timer
// goroutines and are stopped when Run ends. Everything else runs on the
// caller's goroutine.
//
// No lock spans every site, and no lock is held while a frame is sent or
// NATS is called: a change is applied and its frames queued under its
// site's lock, and the site's delivery goroutine sends them after the lock
// is released; a session's lease writes take turns through a token, not a
// lock held while NATS answers. The hub owns no sockets: subscribers are
// queues that the transport drains, and a send to a full queue drops the
// subscriber instead of waiting, so a slow subscriber can delay nobody; one
// that blocks anyway holds up only its own site.
//
// Liveness is never decided by a timer in a hub. A live session's lease has
// no TTL: the replica's one liveness key (package cluster), refreshed every
// third of its TTL, stands for all of them. A dropped session writes its
// lease once more with TTL = the grace, so the grace starts then, and when
// it expires NATS itself removes it and every follower of the site sees the
// marker. A hub that crashes stops refreshing its liveness key; when NATS
// expires it, one surviving replica (a compare-and-set claim) writes each of
// its leases as dropped, and their grace runs out in NATS as above.
package hub
