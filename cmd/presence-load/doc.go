// Command presence-load is a load generator for presencehub. It speaks the
// real wire protocol (docs/protocol.md): it opens widget sockets and agent
// device sockets, changes agents' statuses, and measures how long the
// frames take to reach the agents' other devices and the widgets, how many
// arrive, how many are lost or duplicated, and what the hub processes spend
// in CPU and memory. See docs/load.md and --help.
//
// It speaks the protocol itself, with coder/websocket, not through package
// client, whose job is the opposite of a measurement's: the client hides
// what presence-load counts (it reconnects after the hub closes a socket,
// which presence-load reports as a failure), waits for each change's answer
// (presence-load sends changes on a schedule without waiting, from one
// socket per agent so that they stay in order), hands frames to the
// application over a channel from a second goroutine per socket (the
// latency is taken on the reader, as the frame arrives) and drops the
// oldest when the application falls behind (which would count as lost
// frames).
//
// It owns its own sockets and measurements, nothing of the hub's: the
// command line (main.go), the sockets a scenario lays out (load.go),
// connecting them (connect.go), the phases, initial state then status
// changes or a reconnect storm (phases.go), the sockets' readers, which
// measure what arrives (readers.go), the hub processes' CPU and memory read
// from /proc for --pids (hubprobes.go), and the report (report.go).
// `presence-load floor` (floor.go) serves a stand-in hub instead, to measure
// the write(2) floor. `presence-load replicas` (replicas.go) runs issue 21's
// scale simulation: it starts a nats-server and presencehub processes
// itself (replicas_deploy.go), waits for each to take its roles for the
// partitions, owner or standby (replicas_roles.go), connects agent devices
// to them with the same connect code, measures the processes and NATS over
// windows (replicas_measure.go), checks the targets (replicas_targets.go)
// and reports (replicas_report.go).
//
// Goroutines: the phases run on main's. Connecting runs up to --dialers
// goroutines at a time (in a storm without --storm-rate, one per widget) and
// one that prints the progress every second. Every open socket has one
// reader goroutine, which alone writes its socket's counters; closeAll waits
// for them all before the counts are collected. Closing runs up to 256
// goroutines at a time. The floor serves with net/http and gives every
// upgraded socket a reader goroutine of its own, which also writes the frames
// of the changes it reads; all are closed and waited for when ctx ends.
// `replicas` runs one goroutine per child process, which copies its stderr
// to its log and waits for it, and, without --nats-server, a nats-server
// in this process; it stops every process and waits for them before it
// returns.
package main
