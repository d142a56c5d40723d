package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the publisher's counters, registered by its owner.
type Metrics struct {
	// Published counts events handed to JetStream, by type.
	Published *prometheus.CounterVec
	// Errors counts events lost, by reason: dropped (the backlog stayed
	// full) or nack (refused, or no acknowledgement).
	Errors *prometheus.CounterVec
}

// Publisher publishes events asynchronously on the hub's connection,
// in the order the watcher hands them over, so the watcher never waits for
// NATS per event. What JetStream has not acknowledged yet is bounded by
// Backlog; an event that finds the backlog full is dropped and
// counted, not waited for, as is one JetStream refuses. One that fails
// while the stream elects a leader is published again (retry.go).
type Publisher struct {
	js    jetstream.JetStream
	m     Metrics
	retry eventRetry
}

// Backlog bounds the events published but not yet acknowledged; more are
// dropped and counted.
const Backlog = 4096

// eventAckTimeout is how long an event waits for its acknowledgement
// before it is published again (retry.go). It is below the shortest
// election of a new stream leader (the raft election timeout is 4-9s), so
// that an event lost with a killed leader goes out again before any later
// event can be stored by the next one; a late acknowledgement costs only a
// copy the stream drops.
const eventAckTimeout = 3 * time.Second

// eventStallWait is how long a publish waits for room in a full backlog
// before the event is dropped: short, since the watcher is waiting.
const eventStallWait = 10 * time.Millisecond

// NewPublisher returns a publisher on nc. spawn runs the retry loop on a
// goroutine its owner waits for, and reports false when the owner has
// stopped; now is the clock events are aged by; queue bounds the events
// waiting behind a full backlog or for a retry (DefaultQueue for 0).
func NewPublisher(nc *nats.Conn, m Metrics, spawn func(func(context.Context)) bool, now func() time.Time, queue int) (*Publisher, error) {
	if queue <= 0 {
		queue = DefaultQueue
	}
	p := &Publisher{m: m, retry: eventRetry{inFlight: make(map[*nats.Msg]pendingEvent), spawn: spawn, now: now, queue: queue}}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(Backlog),
		// An event whose acknowledgement never comes (a reconnect lost
		// it) frees its place in the backlog and is tried again.
		jetstream.WithPublishAsyncTimeout(eventAckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) { p.acked(msg) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, msg *nats.Msg, err error) { p.failed(msg, err) }))
	if err != nil {
		return nil, fmt.Errorf("failed to open JetStream for events: %w", err)
	}
	p.js = js
	return p, nil
}

// Publish hands events to JetStream in order, asynchronously.
func (p *Publisher) Publish(events []Event) {
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			panic(fmt.Sprintf("failed to encode event: %v", err)) // Event always encodes
		}
		if err := p.send(ev, b); err != nil {
			p.m.Errors.WithLabelValues("dropped").Inc()
			continue
		}
		p.m.Published.WithLabelValues(ev.Type).Inc()
	}
}

// pending returns the events published and not yet acknowledged.
func (p *Publisher) Pending() int { return p.js.PublishAsyncPending() }

// Complete returns a channel closed once every event handed over so far
// has been acknowledged or has failed.
func (p *Publisher) Complete() <-chan struct{} { return p.js.PublishAsyncComplete() }

// Drained reports whether every event handed over so far has been stored
// or given up: none is in flight, and no retry loop runs. Complete does not
// wait for the retries: a failure puts an event back in the queue.
func (p *Publisher) Drained() bool {
	p.retry.mu.Lock()
	retrying := p.retry.retrying
	p.retry.mu.Unlock()
	return !retrying && p.Pending() == 0
}

// Failures returns how many attempts failed and were tried again.
func (p *Publisher) Failures() uint64 {
	p.retry.mu.Lock()
	defer p.retry.mu.Unlock()
	return p.retry.failures
}
