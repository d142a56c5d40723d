package events

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/jsretry"
)

// Events ride out an election of the event stream's leader, as writes do
// (retry.go). While the stream has no leader every replica's publishes
// fail at once, so the other replicas' copies are no help: an event whose
// publish fails for a reason that passes (no leader, no acknowledgement in
// time, the connection moving to another server) is published again, with
// its id, until it is stored. JetStream drops a copy it already holds, so
// an event that was stored but not acknowledged is still there once.
//
// Order: when one publish fails, the events in flight after it may have
// been lost too, with no answer but a timeout later (a killed leader
// answers nothing; see eventAckTimeout). So every event in flight is
// published again with the failed one, and the events handed over
// meanwhile wait behind them: all go out again in the order they were
// handed over, and an agent's events do not overtake each other in the
// common case, every publish failing while there is no leader. A later
// event can still land before a retried one when a new leader stored it
// before the failure was seen (a timeout racing a fast election, or a
// refusal while another replica's copy was in process at the old leader),
// and another replica's copy may land first; the ids' revisions give the
// order of changes (docs/events.md).
//
// An event is retried only while it is younger than MaxRetryAge, so that
// every copy of it, this replica's retries included, lands inside the
// stream's duplicate window and the stream holds it once.

// eventRetry is the Publisher's record of events in flight and of
// events waiting to be published again.
type eventRetry struct {
	mu  sync.Mutex
	seq uint64 // the order events were handed over in
	// inFlight are the events published and not yet acknowledged, by
	// the message of the attempt (the callbacks of nats.go hand back the
	// message; each attempt has its own, so that the late answer to an
	// attempt given up on is told from the answer to the next).
	inFlight map[*nats.Msg]pendingEvent
	// waiting are the events to publish again, and those handed over
	// while any waited, by seq.
	waiting []pendingEvent
	// retrying is set while a retry loop runs; events handed over then
	// wait for it.
	retrying bool
	// failures counts the failed attempts, so the retry loop can tell
	// events that failed from events that only waited for it.
	failures uint64
	// queue bounds waiting (NewPublisher).
	queue int
	// spawn runs the retry loop on a goroutine owned by Run; it reports
	// false when Run is not running (Hub.goBackground).
	spawn func(func(context.Context)) bool
	now   func() time.Time
}

// pendingEvent is an event as published, and what its retries need.
type pendingEvent struct {
	seq     uint64
	subject string
	data    []byte
	id      string
	at      time.Time // the event's timestamp, for its age
}

// send publishes an event, or queues it behind the events waiting for a
// retry, or, when the backlog of unacknowledged events is full, queues it
// for the retry loop to publish once acknowledgements make room: an event
// is dropped only when the queue is full.
func (p *Publisher) send(ev Event, data []byte) error {
	r := &p.retry
	r.mu.Lock()
	r.seq++
	pe := pendingEvent{seq: r.seq, subject: ev.Subject(), data: data, id: ev.ID, at: time.Time(ev.Timestamp)}
	if r.retrying {
		err := r.waitLocked(pe)
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()
	err := p.publishPending(pe)
	if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		return err
	}
	r.mu.Lock()
	if err := r.waitLocked(pe); err != nil {
		r.mu.Unlock()
		return err
	}
	start := !r.retrying
	r.retrying = true
	r.mu.Unlock()
	if start && !r.spawn(p.retryLoop) {
		r.mu.Lock()
		r.waiting, r.retrying = nil, false
		r.mu.Unlock()
		return errors.New("failed to publish an event: the hub has stopped")
	}
	return nil
}

// DefaultQueue is the default bound of the events waiting for the retry
// loop (a full backlog, or a stream without a leader); more are dropped
// and counted.
const DefaultQueue = 1 << 18

// errWaitingFull is an event dropped because MaxWaiting events wait.
var errWaitingFull = errors.New("failed to publish an event: too many wait for JetStream")

// waitLocked queues pe for the retry loop, unless queue events wait.
func (r *eventRetry) waitLocked(pe pendingEvent) error {
	if len(r.waiting) >= r.queue {
		return errWaitingFull
	}
	r.waiting = append(r.waiting, pe)
	return nil
}

// publishPending hands a pending event to JetStream as a new attempt.
func (p *Publisher) publishPending(pe pendingEvent) error {
	msg := &nats.Msg{Subject: pe.subject, Data: pe.data, Header: nats.Header{}}
	p.retry.mu.Lock()
	p.retry.inFlight[msg] = pe
	p.retry.mu.Unlock()
	// No retries of nats.go's own: it retries each message on its own
	// timer, which lets later events overtake; failed retries in order.
	_, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(pe.id), jetstream.WithStallWait(eventStallWait),
		jetstream.WithRetryAttempts(0))
	if err != nil {
		p.retry.mu.Lock()
		delete(p.retry.inFlight, msg)
		p.retry.mu.Unlock()
	}
	return err
}

// acked forgets an acknowledged event.
func (p *Publisher) acked(msg *nats.Msg) {
	p.retry.mu.Lock()
	defer p.retry.mu.Unlock()
	delete(p.retry.inFlight, msg)
}

// failed queues an event whose publish failed for a retry, with every
// event in flight (see Order above), if the failure passes and the event is
// young enough; otherwise it is lost, and counted. The answer to an attempt
// given up on already is ignored.
func (p *Publisher) failed(msg *nats.Msg, err error) {
	r := &p.retry
	r.mu.Lock()
	pe, ok := r.inFlight[msg]
	delete(r.inFlight, msg)
	if !ok {
		r.mu.Unlock()
		return
	}
	if !retryableEvent(err) || r.now().Sub(pe.at) >= MaxRetryAge {
		r.mu.Unlock()
		p.m.Errors.WithLabelValues("nack").Inc()
		return
	}
	r.failures++
	r.waiting = append(r.waiting, pe)
	for m, other := range r.inFlight {
		r.waiting = append(r.waiting, other)
		delete(r.inFlight, m)
	}
	slices.SortFunc(r.waiting, func(a, b pendingEvent) int { return cmp.Compare(a.seq, b.seq) })
	start := !r.retrying
	r.retrying = true
	r.mu.Unlock()
	if start && !r.spawn(p.retryLoop) {
		// Run has ended: nothing will publish them.
		r.mu.Lock()
		lost := len(r.waiting)
		r.waiting, r.retrying = nil, false
		r.mu.Unlock()
		p.m.Errors.WithLabelValues("nack").Add(float64(lost))
	}
}

// retryLoop publishes the waiting events again, in order, until none waits
// or ctx ends. It backs off while attempts keep failing; events that only
// waited behind the failed ones go out at once.
func (p *Publisher) retryLoop(ctx context.Context) {
	r := &p.retry
	backoff := jsretry.FirstWait
	wait := backoff
	r.mu.Lock()
	seen := r.failures
	r.mu.Unlock()
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				r.mu.Lock()
				lost := len(r.waiting)
				r.waiting, r.retrying = nil, false
				r.mu.Unlock()
				p.m.Errors.WithLabelValues("nack").Add(float64(lost))
				return
			case <-t.C:
			}
		}
		r.mu.Lock()
		batch := r.waiting
		r.waiting = nil
		now := r.now()
		var lost int
		batch = slices.DeleteFunc(batch, func(pe pendingEvent) bool {
			old := now.Sub(pe.at) >= MaxRetryAge
			if old {
				lost++
			}
			return old
		})
		r.mu.Unlock()
		p.m.Errors.WithLabelValues("nack").Add(float64(lost))
		for i, pe := range batch {
			if err := p.publishPending(pe); err != nil {
				// The backlog stayed full: the rest wait, in order, ahead
				// of what was handed over meanwhile.
				r.mu.Lock()
				r.waiting = append(slices.Clone(batch[i:]), r.waiting...)
				r.failures++
				r.mu.Unlock()
				break
			}
		}
		r.mu.Lock()
		if len(r.waiting) == 0 {
			r.retrying = false
			r.mu.Unlock()
			return
		}
		wait = 0
		if r.failures != seen {
			seen = r.failures
			wait = backoff
			backoff = min(2*backoff, jsretry.MaxWait)
		}
		r.mu.Unlock()
	}
}

// retryableEvent reports whether a failed publish may succeed if tried
// again: no stream leader, no acknowledgement in time, a connection that
// moved to another server, or another replica's copy of the event being
// stored right now (which may yet fail; if it does not, the retry is
// dropped as a duplicate).
func retryableEvent(err error) bool {
	var apiErr *jetstream.APIError
	return jsretry.Retryable(err) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeDuplicateInProcess)
}

// errCodeDuplicateInProcess is JetStream's "duplicate message id is in
// process" (NATS 2.11 and later), which nats.go names no constant for.
const errCodeDuplicateInProcess jetstream.ErrorCode = 10158
