// Package store owns the presence bucket, a NATS JetStream key-value
// bucket: it is the only code of the module that holds a key-value handle.
// It names the keys (keys.go), encodes the typed records stored under them
// (records.go), and does every read and write the hub needs: one
// compare-and-set loop for records (update.go), device leases and purge
// markers with per-message TTLs (lease.go), the keys the idle rule and the
// uncovered alert keep as TTLs (ttlkeys.go), the watch that feeds every
// replica's view (watch.go), and the retry policy that rides out a stream
// leader election (retry.go). Records, a small JSON-record bucket, holds
// other parts' registrations (webhooks); it is opened with the same retry
// through a forming cluster, and its reads and writes are tried once.
// Members, the cluster's own small bucket (members.go), holds each
// replica's liveness key, each partition's owner, one-shot claims and the
// partition layout, written with per-message TTLs and compare-and-sets
// retried as the store's writes are; package hub/cluster decides what to
// write.
//
// Goroutines: a Watcher runs one, handing the watch's entries over, until
// Stop is called or the watch ends (nats.go runs the watch's consumer).
// Every other call runs on its caller's goroutine.
package store
