package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport/webhook"
)

// TestDeliversSignedEvents registers an endpoint and checks the request an
// event makes with the Standard Webhooks reference library: the signature
// verifies with the endpoint's secret and not with another.
func TestDeliversSignedEvents(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, UserAgent: "presencehub/test"}, nil)
	rc := startReceiver(t, nil)
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL + "/hooks?x=1"})
	if !strings.HasPrefix(ep.Secret, "whsec_") || ep.ID == "" || len(ep.Events) != 1 || ep.Events[0] != "*" {
		t.Fatalf("got endpoint %+v, want an id, a whsec_ secret and events [*]", ep)
	}

	body := publishEvent(t, r.js, "acme", "agent.status", "7.agent.status.alice", map[string]string{"agent": "alice", "status": "online"})
	got := rc.expect(t)
	if !bytes.Equal(got.body, body) {
		t.Fatalf("got body %s, want the event as stored %s", got.body, body)
	}
	h := got.header
	if h.Get("webhook-id") != "7.agent.status.alice" || h.Get("content-type") != "application/json" || h.Get("user-agent") != "presencehub/test" {
		t.Fatalf("got headers %v", h)
	}
	wh, err := standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got.body, h); err != nil {
		t.Fatalf("the reference library refuses the signature: %v", err)
	}
	other, err := standardwebhooks.NewWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Verify(got.body, h); err == nil {
		t.Fatal("the signature verifies with another secret")
	}
	tampered := bytes.Replace(got.body, []byte("online"), []byte("offline"), 1)
	if err := wh.Verify(tampered, h); err == nil {
		t.Fatal("the signature verifies for another body")
	}
	// Another site's events do not reach the endpoint.
	publishEvent(t, r.js, "other", "agent.status", "8.agent.status.bob", map[string]string{"agent": "bob"})
	publishEvent(t, r.js, "acme", "agent.status", "9.agent.status.alice", map[string]string{"agent": "alice"})
	if id := rc.expect(t).header.Get("webhook-id"); id != "9.agent.status.alice" {
		t.Fatalf("got event %s, want acme's 9.agent.status.alice only", id)
	}
}

// TestRetriesUntilAnswered: an endpoint that answers 500 twice and then 200
// gets the event three times with the same webhook-id, and the deliveries
// log shows the three attempts.
func TestRetriesUntilAnswered(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, RetrySchedule: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, time.Hour}}, nil)
	rc := startReceiver(t, func(n int, _ request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL})
	publishEvent(t, r.js, "acme", "agent.availability", "3.agent.availability.alice", map[string]string{"agent": "alice"})
	wh, err := standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got := rc.expect(t)
		if id := got.header.Get("webhook-id"); id != "3.agent.availability.alice" {
			t.Fatalf("attempt %d: got webhook-id %q", i+1, id)
		}
		// Each attempt is signed afresh, with its own timestamp.
		if err := wh.Verify(got.body, got.header); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	followAttempts(t, r.js, "acme", ep.ID, func(ds []webhook.Delivery) bool { return len(ds) == 3 })
	ds := deliveries(t, r.m, "acme", ep.ID)
	for i, want := range []struct {
		attempt, status int
		outcome         string
		next            bool
	}{{3, 200, webhook.OutcomeDelivered, false}, {2, 500, webhook.OutcomeRetrying, true}, {1, 500, webhook.OutcomeRetrying, true}} {
		d := ds[i]
		if d.Attempt != want.attempt || d.StatusCode != want.status || d.Outcome != want.outcome || (d.NextAttempt != nil) != want.next || d.EventID != "3.agent.availability.alice" || d.EventType != "agent.availability" {
			t.Fatalf("deliveries[%d] = %+v, want attempt %d, status %d, %s, next attempt %v", i, d, want.attempt, want.status, want.outcome, want.next)
		}
		if d.NextAttempt != nil && d.NextAttempt.Before(d.At) {
			t.Fatalf("deliveries[%d]: next attempt %v before the attempt %v", i, d.NextAttempt, d.At)
		}
	}
	if ds[1].Error == "" {
		t.Fatalf("a failed attempt has no error: %+v", ds[1])
	}
}

// TestGivesUpAfterTheSchedule: an endpoint that always fails gets one
// attempt more than the schedule has delays, then the event is given up.
func TestGivesUpAfterTheSchedule(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, RetrySchedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}}, nil)
	rc := startReceiver(t, func(int, request) int { return http.StatusServiceUnavailable })
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL})
	publishEvent(t, r.js, "acme", "agent.status", "5.agent.status.alice", map[string]string{"agent": "alice"})
	followAttempts(t, r.js, "acme", ep.ID, func(ds []webhook.Delivery) bool {
		return len(ds) > 0 && ds[len(ds)-1].Outcome == webhook.OutcomeGivenUp
	})
	ds := deliveries(t, r.m, "acme", ep.ID)
	// Given up is recorded after the event is terminated: nothing more
	// comes, so the count is final.
	if n := rc.count(); n != 3 || len(ds) != 3 || ds[0].Attempt != 3 || ds[0].NextAttempt != nil {
		t.Fatalf("got %d requests and log %+v, want 3 attempts, the last given up without a next attempt", n, ds)
	}
}

// TestGoneDisablesEndpoint: 410 Gone disables the endpoint on every
// replica; its pending deliveries go with its consumer.
func TestGoneDisablesEndpoint(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, RetrySchedule: []time.Duration{time.Hour}}, nil)
	gone := startReceiver(t, func(int, request) int { return http.StatusGone })
	ep := create(t, r.m, "acme", webhook.Registration{URL: gone.srv.URL})
	publishEvent(t, r.js, "acme", "widget.status", "4.widget.status.", map[string]string{"group": ""})
	gone.expect(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// The attempt is recorded once the endpoint is disabled.
	followAttempts(t, r.js, "acme", ep.ID, func(ds []webhook.Delivery) bool { return len(ds) == 1 })
	got, err := r.m.Get(ctx, "acme", ep.ID)
	if err != nil || got.DisabledAt == nil || !strings.Contains(got.DisabledReason, "410") {
		t.Fatalf("got disabled reason %q, want it to name the 410", got.DisabledReason)
	}
	stream, err := r.js.Stream(ctx, "PRESENCE_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Consumer(ctx, "webhook-"+ep.ID); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the disabled endpoint's consumer: got %v, want it removed", err)
	}
	if ds := deliveries(t, r.m, "acme", ep.ID); len(ds) != 1 || ds[0].Outcome != webhook.OutcomeDisabled || ds[0].StatusCode != 410 {
		t.Fatalf("got deliveries %+v, want one attempt that disabled the endpoint", ds)
	}
}

// TestSlowEndpointDoesNotDelayOthers: an endpoint that never answers holds
// up only its own deliveries.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, Timeout: time.Minute, Concurrency: 2}, nil)
	release := make(chan struct{})
	stuck := startReceiver(t, func(int, request) int {
		<-release
		return http.StatusOK
	})
	defer close(release) // before the receivers close (cleanups run after)
	fast := startReceiver(t, nil)
	create(t, r.m, "acme", webhook.Registration{URL: stuck.srv.URL})
	create(t, r.m, "acme", webhook.Registration{URL: fast.srv.URL})
	const events = 20
	for i := range events {
		publishEvent(t, r.js, "acme", "agent.status", "1"+strings.Repeat("0", i)+".agent.status.alice", map[string]string{"agent": "alice"})
	}
	for range events {
		fast.expect(t)
	}
	if n := stuck.count(); n > 2 {
		t.Fatalf("the stuck endpoint got %d requests at once, want at most its concurrency of 2", n)
	}
}

// TestEventFilters: an endpoint gets only the types it asked for.
func TestEventFilters(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true}, nil)
	rc := startReceiver(t, nil)
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL, Events: []string{"widget.*", "agent.availability", "widget.status"}})
	if strings.Join(ep.Events, ",") != "agent.availability,widget.*" {
		t.Fatalf("got events %v, want the covered widget.status folded into widget.*", ep.Events)
	}
	publishEvent(t, r.js, "acme", "agent.status", "1.agent.status.a", map[string]string{})
	publishEvent(t, r.js, "acme", "device.connected", "1.device.connected.d", map[string]string{})
	publishEvent(t, r.js, "acme", "agent.availability", "1.agent.availability.a", map[string]string{})
	publishEvent(t, r.js, "acme", "widget.status", "1.widget.status.", map[string]string{})
	got := map[string]bool{}
	for range 2 {
		got[rc.expect(t).header.Get("webhook-id")] = true
	}
	if !got["1.agent.availability.a"] || !got["1.widget.status."] {
		t.Fatalf("got %v, want agent.availability and widget.status only", got)
	}
	// A marker the endpoint asked for, published last, arrives after
	// anything the filter let through by mistake would have.
	publishEvent(t, r.js, "acme", "widget.status", "2.widget.status.", map[string]string{})
	if id := rc.expect(t).header.Get("webhook-id"); id != "2.widget.status." {
		t.Fatalf("got %s, want only the types asked for", id)
	}
}

// TestCoverageEventFilter: an endpoint for coverage.* gets the uncovered
// alert's events, and coverage.lost alone folds into it.
func TestCoverageEventFilter(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true}, nil)
	rc := startReceiver(t, nil)
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL, Events: []string{"coverage.lost", "coverage.*"}})
	if strings.Join(ep.Events, ",") != "coverage.*" {
		t.Fatalf("got events %v, want coverage.lost folded into coverage.*", ep.Events)
	}
	publishEvent(t, r.js, "acme", "widget.status", "1.widget.status.", map[string]string{})
	publishEvent(t, r.js, "acme", "coverage.lost", "coverage.acme..1.coverage.lost", map[string]string{"group": ""})
	publishEvent(t, r.js, "acme", "coverage.restored", "coverage.acme..1.coverage.restored", map[string]string{"group": ""})
	got := map[string]bool{}
	for range 2 {
		got[rc.expect(t).header.Get("webhook-id")] = true
	}
	if !got["coverage.acme..1.coverage.lost"] || !got["coverage.acme..1.coverage.restored"] {
		t.Fatalf("got %v, want coverage.lost and coverage.restored only", got)
	}
	ep = create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL + "/only-restored", Events: []string{"coverage.restored"}})
	if strings.Join(ep.Events, ",") != "coverage.restored" {
		t.Fatalf("got events %v, want coverage.restored", ep.Events)
	}
}
