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
// Goroutines: Run watches the registrations bucket and runs one delivery
// loop per enabled endpoint, each with at most Config.Concurrency requests
// in flight, so a slow or failing endpoint holds up only its own loop.
// Everything Run starts has stopped when it returns.
package webhook
