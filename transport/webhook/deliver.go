package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/protocol"
)

// Outcomes of an attempt, as in the deliveries log.
const (
	OutcomeDelivered = "delivered" // 2xx
	OutcomeRetrying  = "retrying"  // failed; another attempt is scheduled
	OutcomeGivenUp   = "given_up"  // failed, and it was the last attempt
	OutcomeDisabled  = "disabled"  // 410 Gone: the endpoint is disabled
)

// Delivery is one attempt as the deliveries log keeps it.
type Delivery struct {
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`
	// StatusCode is the endpoint's HTTP status; 0 when it gave none.
	StatusCode int `json:"status_code,omitempty"`
	// Error says why an attempt without a status failed.
	Error       string     `json:"error,omitempty"`
	Outcome     string     `json:"outcome"`
	NextAttempt *time.Time `json:"next_attempt"`
	DurationMS  int64      `json:"duration_ms"`
	Replica     string     `json:"replica,omitempty"`
}

// loop is a running delivery loop.
type loop struct {
	stop context.CancelFunc
	done chan struct{}
}

// fetchWait is how long one pull for an endpoint's events waits on the
// server before it is renewed.
const fetchWait = 30 * time.Second

// Run watches the registrations and delivers to every enabled endpoint
// until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	defer m.stopLoops()
	w, err := m.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("failed to watch webhooks: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				continue // every registration has been seen once
			}
			m.apply(ctx, e)
		}
	}
}

// apply starts or stops the loop of the endpoint e is about.
func (m *Manager) apply(ctx context.Context, e *store.Entry) {
	var ep Endpoint
	if !e.Deleted {
		if err := json.Unmarshal(e.Value, &ep); err != nil {
			m.log.Error("ignoring bad webhook", "key", e.Key, "err", err)
			return
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, id, _ := strings.Cut(e.Key, ".")
	running := m.loops[id]
	if !e.Deleted && ep.DisabledAt == nil {
		if running == nil {
			m.loops[id] = m.startLoop(ctx, ep)
		}
		return
	}
	if running != nil {
		running.stop()
		delete(m.loops, id)
	}
}

func (m *Manager) startLoop(ctx context.Context, ep Endpoint) *loop {
	ctx, cancel := context.WithCancel(ctx)
	l := &loop{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		m.deliverLoop(ctx, ep)
	}()
	return l
}

func (m *Manager) stopLoops() {
	m.mu.Lock()
	loops := m.loops
	m.loops = make(map[string]*loop)
	m.mu.Unlock()
	for _, l := range loops {
		l.stop()
	}
	for _, l := range loops {
		<-l.done
	}
}

// deliverLoop pulls ep's events, at most Concurrency at a time, and
// attempts each, until ctx is done.
func (m *Manager) deliverLoop(ctx context.Context, ep Endpoint) {
	key, err := secretKey(ep.Secret)
	if err != nil {
		m.log.Error("webhook has a bad secret; not delivering", "site", ep.Site, "webhook", ep.ID, "err", err)
		return
	}
	var cons jetstream.Consumer
	backoff := time.Second
	for ctx.Err() == nil {
		if cons == nil {
			c, err := m.events.Consumer(ctx, consumerName(ep.ID))
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("failed to find webhook consumer", "site", ep.Site, "webhook", ep.ID, "err", err)
				}
				wait(ctx, &backoff)
				continue
			}
			cons = c
		}
		fetchCtx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(m.cfg.Concurrency, jetstream.FetchContext(fetchCtx))
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				m.log.Warn("failed to fetch webhook events", "site", ep.Site, "webhook", ep.ID, "err", err)
				if errors.Is(err, jetstream.ErrConsumerNotFound) {
					cons = nil
				}
			}
			wait(ctx, &backoff)
			continue
		}
		var wg sync.WaitGroup
		for msg := range batch.Messages() {
			wg.Go(func() { m.attempt(ctx, ep, key, msg) })
		}
		wg.Wait()
		// A pull that expired with nothing to deliver ends with
		// ErrNoMessages or its context's error; neither is a failure.
		err = batch.Error()
		expired := fetchCtx.Err() != nil || errors.Is(err, jetstream.ErrNoMessages)
		cancel()
		if err != nil && ctx.Err() == nil && !expired {
			m.log.Warn("webhook event fetch ended", "site", ep.Site, "webhook", ep.ID, "err", err)
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				cons = nil
			}
			wait(ctx, &backoff)
			continue
		}
		backoff = time.Second
	}
}

// wait sleeps for *backoff or until ctx is done, and doubles *backoff up to
// 30s.
func wait(ctx context.Context, backoff *time.Duration) {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	*backoff = min(2**backoff, 30*time.Second)
}

// attempt delivers one event to ep once, then acknowledges it (delivered,
// given up, endpoint disabled) or schedules the next attempt by
// acknowledging negatively with the retry schedule's delay.
func (m *Manager) attempt(ctx context.Context, ep Endpoint, key []byte, msg jetstream.Msg) {
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
		m.log.Error("dropping an event that is not an event", "site", ep.Site, "webhook", ep.ID, "subject", msg.Subject())
		msg.Term()
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		m.log.Error("event without metadata", "err", err)
		msg.Nak()
		return
	}
	d := Delivery{EventID: ev.ID, EventType: ev.Type, Attempt: int(meta.NumDelivered), Replica: m.cfg.Replica}
	start := time.Now()
	d.At = start.UTC()
	status, err := m.post(ctx, ep, key, ev.ID, msg.Data())
	elapsed := time.Since(start)
	d.DurationMS = elapsed.Milliseconds()
	m.m.duration.Observe(elapsed.Seconds())
	if ctx.Err() != nil && status == 0 {
		// This replica is stopping: another one tries again at once,
		// and the attempt counts (the endpoint may have seen it).
		msg.Nak()
		return
	}
	d.StatusCode = status
	if err != nil {
		d.Error = err.Error()
	}
	switch {
	case err == nil && status >= 200 && status < 300:
		d.Outcome = OutcomeDelivered
		msg.Ack()
	case status == http.StatusGone:
		d.Outcome = OutcomeDisabled
		msg.Term()
		m.disable(context.WithoutCancel(ctx), ep, fmt.Sprintf("the endpoint answered 410 Gone at %s", d.At.UTC().Format(protocol.TimeFormat)))
	case d.Attempt > len(m.cfg.RetrySchedule):
		d.Outcome = OutcomeGivenUp
		msg.Term()
		m.log.Warn("webhook event given up", "site", ep.Site, "webhook", ep.ID, "event", ev.ID, "attempts", d.Attempt, "status", status, "err", err)
	default:
		delay := jitter(m.cfg.RetrySchedule[d.Attempt-1])
		next := d.At.Add(delay)
		d.Outcome, d.NextAttempt = OutcomeRetrying, &next
		msg.NakWithDelay(delay)
	}
	m.m.attempts.WithLabelValues(d.Outcome).Inc()
	m.record(context.WithoutCancel(ctx), ep, d)
}

// jitter adds up to a tenth to d, so that the retries of many events that
// failed together do not come back together. retrySpan counts the most it
// adds.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/10+1)
}

// maxAnswerBytes is how much of an answer's body is read, so that the
// connection can be reused; the rest is dropped with the connection.
const maxAnswerBytes = 64 << 10

// post sends one attempt and returns the answer's status code.
func (m *Manager) post(ctx context.Context, ep Endpoint, key []byte, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("failed to build request: %w", err)
	}
	now := time.Now()
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sign(key, id, now, body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("user-agent", m.cfg.UserAgent)
	resp, err := m.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // *url.Error repeats the URL, which may carry a token in its query
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// disable marks ep disabled, which stops every replica's loop for it, and
// removes its consumer with the deliveries still pending.
func (m *Manager) disable(ctx context.Context, ep Endpoint, reason string) {
	key := endpointKey(ep.Site, ep.ID)
	value, rev, err := m.kv.Get(ctx, key)
	if err != nil {
		return // removed meanwhile
	}
	var stored Endpoint
	if err := json.Unmarshal(value, &stored); err != nil || stored.DisabledAt != nil {
		return
	}
	now := time.Now().UTC()
	stored.DisabledAt, stored.DisabledReason = &now, reason
	b, err := json.Marshal(stored)
	if err != nil {
		return
	}
	if err := m.kv.Update(ctx, key, b, rev); err != nil {
		return // another replica disabled it, or it was removed
	}
	m.deleteConsumer(ctx, ep.ID)
	m.log.Warn("webhook disabled", "site", ep.Site, "webhook", ep.ID, "reason", reason)
}

func deliveriesSubject(site, id string) string { return DeliveriesSubjectPrefix + site + "." + id }

// recordTimeout bounds writing one attempt to the deliveries log.
const recordTimeout = 5 * time.Second

// record appends d to ep's deliveries log. A failure is logged, not
// retried: the log is for people, the delivery itself is already settled.
func (m *Manager) record(ctx context.Context, ep Endpoint, d Delivery) {
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	if _, err := m.cfg.JetStream.Publish(ctx, deliveriesSubject(ep.Site, ep.ID), b); err != nil {
		m.log.Warn("failed to record webhook attempt", "site", ep.Site, "webhook", ep.ID, "err", err)
	}
}

// readTimeout bounds reading an endpoint's deliveries log.
const readTimeout = 10 * time.Second

// Deliveries returns the recent attempts to one of site's endpoints,
// newest first.
func (m *Manager) Deliveries(ctx context.Context, site, id string) ([]Delivery, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	if _, err := m.get(ctx, endpointKey(site, id)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	cons, err := m.cfg.JetStream.OrderedConsumer(ctx, m.cfg.DeliveryStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{deliveriesSubject(site, id)},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read webhook deliveries: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to read webhook deliveries: %w", err)
	}
	out := make([]Delivery, 0, info.NumPending)
	if info.NumPending == 0 {
		return out, nil
	}
	batch, err := cons.Fetch(int(info.NumPending), jetstream.FetchContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("failed to read webhook deliveries: %w", err)
	}
	for msg := range batch.Messages() {
		var d Delivery
		if json.Unmarshal(msg.Data(), &d) == nil {
			out = append(out, d)
		}
		if len(out) == int(info.NumPending) {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// MarshalJSON writes the times in protocol.TimeFormat (milliseconds, UTC),
// as every time of the API.
func (d Delivery) MarshalJSON() ([]byte, error) {
	type plain Delivery // without this method
	return json.Marshal(struct {
		plain
		At          protocol.Time  `json:"at"`
		NextAttempt *protocol.Time `json:"next_attempt"`
	}{plain(d), protocol.Time(d.At), optionalTime(d.NextAttempt)})
}
