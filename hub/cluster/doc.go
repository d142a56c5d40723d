// Package cluster owns one replica's membership of the cluster of hub
// replicas and its share of the partitions of sites, both kept in NATS
// through the members bucket (hub/store's Members; this package holds no
// key-value handle of its own):
//
//   - liveness (liveness.go): the replica refreshes one key, r.<id>, with a
//     TTL, every TTL/3; when NATS expires another replica's key, every
//     replica hears of it (OnReplicaGone); when this replica finds its own
//     key expired or replaced (it was cut off from NATS for longer than the
//     TTL, say), it says so (OnLivenessLost) and creates it again
//     (OnLivenessRestored). A graceful stop removes it at once.
//   - ownership (ownership.go): a site belongs to partition FNV-1a-32(site)
//     mod N, N fixed when the deployment is created (the layout key). The
//     owner of a partition is the live replica that rendezvous hashing
//     picks; it holds the partition's key, p.<n>, with a TTL and refreshes
//     it, and releases it at once when another live replica should own it.
//     A dead replica's partitions move to their new owners once their keys
//     expire. Two owners may overlap for a moment (the duties they run
//     are compare-and-sets); a gap lasts at most about one TTL.
//   - one-shot claims (claim.go): Claim(name) is won by exactly one caller
//     across the cluster while the claim's key lives.
//   - the watch (watch.go): one watch of the whole members bucket (it holds
//     one key per replica and per partition) keeps the live set and the
//     owners of partitions; it starts again after every NATS reconnect,
//     reconciling with its snapshot.
//
// Goroutines: Run runs one loop goroutine, its caller's, which writes the
// liveness key, reads the watch, rebalances, and calls every callback
// (OnAcquire, OnRelease, OnReplicaGone, OnLivenessLost,
// OnLivenessRestored) in order, never two at once, never with a lock held.
// Besides, each watch runs one goroutine of hub/store's Watcher; a watch
// replaced after a reconnect is stopped on a goroutine of its own (deleting
// its consumer can wait out a timeout); and a round of partition writes
// runs on up to 16 short-lived goroutines (maxWritesInFlight) that Run's loop
// waits for. Run waits for all of them before it returns. Claim and the
// accessors run on their caller's goroutine and are safe for concurrent
// use.
package cluster
