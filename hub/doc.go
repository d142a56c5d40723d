// Package hub owns one replica's in-memory view of all presence state, built
// from one watch of a NATS JetStream key-value bucket, and fans the frames
// that view changes produce out to local subscribers.
//
// Its parts, each in a file of its name: the view (view.go: per-site state,
// each site behind its own lock, found through a sharded registry, and how
// bucket entries apply to it), the watch (watch.go: the watch loop, the
// reconcile after a reconnect), the store (store.go: every write to the
// bucket; retry.go: how writes ride out an election), health (health.go:
// the JetStream probe behind readiness), sessions (session.go: device
// sessions; lease.go: their leases, written one at a time, and the
// keeper), the fan-out (fanout.go: subscribers,
// per-site outboxes, sending, dropping), working hours (hours.go: one timer
// per schedule, and the events of its boundaries), replica statistics
// (stats.go), the event stream (events.go: events derived from the
// entries the watch applies, published to JetStream by every replica and
// de-duplicated there; eventretry.go: how events ride out an election),
// and the rules kept as keys' TTLs (activity.go: the idle rule;
// signoff.go: sign-off at closing time; coverage.go: the uncovered alert).
// The rules themselves, working hours included, are answered by
// package presence.
//
// Goroutines: Run starts and owns four, the watcher (applies bucket updates
// to the view; it re-reads a full snapshot after every NATS reconnect and
// after missing revisions), the lease keeper (refreshes the leases of live
// local sessions), the stats publisher (publishes this replica's numbers
// over NATS and answers per-site questions from other replicas) and the
// health prober (asks JetStream every few seconds whether it answers, for
// Healthy); all end when Run's context is done. Run also starts and owns
// the rule workers (worker.go; Config.RuleWorkers of them, 4 by default),
// which carry out the decisions of the idle, sign-off and coverage rules
// (writing activity keys and idle clocks, restoring agents from idle,
// signing agents off, writing and purging coverage keys, publishing
// coverage events) from a queue that holds at most one decision per key
// and never blocks who adds to it; they end with Run's context, dropping
// what is still queued. A watch that ends is stopped on a goroutine of its
// own (deleting its consumer can wait out a timeout), a bye whose caller
// gave up goes on purging its lease on a goroutine of its own
// (session.go), and events whose publish failed are published again by
// one retry goroutine while any wait (eventretry.go); Run waits for the
// rule workers and all three kinds. A site
// with frames to send has one delivery goroutine, started when
// its outbox gets frames and ended when it is empty; a large fan-out splits
// its sends over short-lived goroutines (one per core, at most 8) and waits
// for them. Working-hours timers run their callbacks on the runtime's timer
// goroutines and are stopped when Run ends. Everything else runs on the
// caller's goroutine.
//
// No lock spans every site, and no lock is held while a frame is sent: a
// change is applied and its frames queued under its site's lock, and the
// site's delivery goroutine sends them after the lock is released. The hub
// owns no sockets: subscribers are queues that the transport drains, and a
// send to a full queue drops the subscriber instead of waiting, so a slow
// subscriber can delay nobody; one that blocks anyway holds up only its own
// site.
//
// Liveness is never decided by a timer in a hub. Each device session owns a
// lease key with a NATS per-message TTL equal to the grace period; the keeper
// refreshes it while the session is live, a dropped session re-writes it once
// so the grace starts then, and when it expires NATS itself removes it and
// every hub's watcher sees the purge marker. A hub that crashes simply stops
// refreshing.
package hub
