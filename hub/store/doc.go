// Package store owns the presence bucket, a NATS JetStream key-value
// bucket: it is the only code of the module that holds a key-value handle.
// It names the keys (keys.go), encodes the typed records stored under them
// (records.go), and does every read and write the hub needs: one
// compare-and-set loop for records (update.go), device leases and purge
// markers with per-message TTLs (lease.go), the keys the idle rule and the
// uncovered alert keep as TTLs (ttlkeys.go), the watch that feeds every
// replica's view (watch.go), and the retry policy that rides out a stream
// leader election (retry.go). Records, a small JSON-record bucket with the
// same policy, holds other parts' registrations (webhooks).
//
// Goroutines: none of its own. A Watch runs nats.go's consumer for the
// watch; every call runs on its caller's goroutine.
package store
