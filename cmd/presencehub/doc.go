// Command presencehub runs the presence hub: agent and widget sockets over
// a NATS JetStream key-value bucket, with an embedded nats-server by default.
//
// It owns the process and nothing of the presence logic: the command line
// (main.go, flags.go; every flag can also come from a PRESENCE_* variable),
// the signing secret kept in --data-dir (secret.go), the connection to NATS
// or the embedded nats-server (nats.go) with what keeps its store safe
// (embedded.go: the lock on --data-dir, --nats-sync, the check of what it
// recovered at start-up, restarting JetStream after a full disk), and the
// composition of the parts.
// serve (serve.go) builds them in the order of start-up: the checked
// configuration (config.go; the --history-* flags in history.go), the listeners, the lock, the secret, NATS, the bucket
// and the event stream with its webhooks and history (nats.go), the hub,
// then the transport's server and the HTTP server with the metrics and the
// pages (http.go). It also owns the way out: a signal drains the replica
// (/readyz 503, --shutdown-delay, sockets closed with 1001, NATS drained), a
// second one stops at once; the exit code is 0, 1 on a failure, 2 on a bad
// command line.
//
// Goroutines: serve runs on main's and starts one each for the hub's Run,
// the HTTP server's Serve and, with events, the webhooks' and the history's
// Run, and with summaries the history's walk of the owned sites
// (history.go, --history-summarize-rate); it waits for them all before it
// returns. With --debug-addr one more
// serves pprof until serve returns. With the embedded nats-server, its store
// keeper (embeddedNATS.keepStoreWritable) runs until the server is shut
// down. The embedded nats-server and the NATS client run goroutines of
// their own, from which they call natsLog (which also notes store faults
// for the keeper) and the connection's handlers, which only log.
package main
