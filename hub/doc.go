// Package hub owns the in-memory view of all presence state, built from one
// watch of a NATS JetStream key-value bucket, and fans out the widget, roster
// and agent frames that view changes produce to local subscribers.
//
// Goroutines: Run starts and owns three, the watcher (applies bucket updates
// to the view and fans out frames, all under Hub.mu; it re-reads a full
// snapshot after every NATS reconnect), the lease keeper (refreshes the leases
// of live local sessions) and the stats publisher (publishes this replica's
// numbers over NATS and answers per-site questions from other replicas); all
// end when Run's context is done. Working-hours timers (one per schedule, for
// its next boundary) run their callbacks on the runtime's timer goroutines and
// are stopped when Run ends. A fan-out to many subscribers (the watcher's,
// or a timer's) splits its sends over short-lived goroutines (one per core,
// at most 8) and waits for them before it returns. Everything else runs on the
// caller's goroutine. The hub owns no sockets: subscribers are queues that
// the transport drains, and a send to a full queue drops the subscriber
// instead of waiting.
//
// Liveness is never decided by a timer in a hub. Each device session owns a
// lease key with a NATS per-message TTL equal to the grace period; the keeper
// refreshes it while the session is live, a dropped session re-writes it once
// so the grace starts then, and when it expires NATS itself removes it and
// every hub's watcher sees the purge marker. A hub that crashes simply stops
// refreshing.
package hub
