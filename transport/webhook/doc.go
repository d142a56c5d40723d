// Package webhook delivers the hub's availability events to HTTP endpoints
// registered per site, signed as the Standard Webhooks specification says,
// at least once, with retries.
//
// Nothing of a delivery lives in one replica's memory. A registration is a
// key of a JetStream key-value bucket; its pending deliveries are a durable
// pull consumer of the event stream, filtered to the site and the event
// types it asked for, which every replica pulls from. JetStream hands each
// event to one replica at a time; a replica that dies mid-delivery leaves
// the event unacknowledged and JetStream hands it to another after the ack
// wait. A failed attempt is negatively acknowledged with the retry
// schedule's next delay, so the schedule runs on the NATS server, not on a
// timer of a replica. Every attempt is recorded in a stream that keeps the
// last attempts of each endpoint, read by the deliveries API.
//
// It owns the registrations bucket, one durable consumer per endpoint, the
// deliveries stream, the signing (sign.go) and the address guard that keeps
// deliveries off the hub's own network (guard.go). The HTTP API over it is
// the transport's, and the event stream, which it reads through its
// consumers, is created and written by others.
//
// Goroutines: Run, on its caller's goroutine, watches the registrations
// bucket and starts one delivery loop goroutine per enabled endpoint. A
// loop pulls at most Config.Concurrency events at a time and attempts each
// on a goroutine of its own, waiting for them all before it pulls again, so
// a slow or failing endpoint holds up only its own loop. Everything Run
// starts has stopped when it returns. The registration and deliveries
// methods run on their caller's goroutine.
package webhook
