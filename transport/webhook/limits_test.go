package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport/webhook"
)

// The tests here show each limit of Config enforced: every limit and
// timeout has a default, a flag and a test.

// TestTimeoutFailsSlowAttempt: an endpoint that does not answer within the
// timeout has its attempt failed as a timeout, recorded without a status,
// and the event is attempted again after the schedule's delay.
func TestTimeoutFailsSlowAttempt(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, Timeout: 300 * time.Millisecond, RetrySchedule: []time.Duration{50 * time.Millisecond, time.Hour}}, nil)
	release := make(chan struct{})
	rc := startReceiver(t, func(n int, _ request) int {
		if n == 1 {
			<-release // answers only once the test ends, long after the timeout
		}
		return http.StatusOK
	})
	defer close(release) // before the receiver closes (cleanups run after)
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL})
	publishEvent(t, r.js, "acme", "agent.status", "1.agent.status.alice", map[string]string{"agent": "alice"})
	// The second attempt comes while the first request is still held: only
	// the timeout can have ended the first.
	ds := followAttempts(t, r.js, "acme", ep.ID, func(ds []webhook.Delivery) bool { return len(ds) == 2 })
	first, second := ds[0], ds[1]
	if first.Attempt != 1 || first.Outcome != webhook.OutcomeRetrying || first.StatusCode != 0 || first.NextAttempt == nil ||
		!strings.Contains(strings.ToLower(first.Error), "timeout") {
		t.Fatalf("first attempt %+v, want it failed by a timeout, without a status, and retried", first)
	}
	if second.Attempt != 2 || second.Outcome != webhook.OutcomeDelivered || second.StatusCode != http.StatusOK || second.EventID != "1.agent.status.alice" {
		t.Fatalf("second attempt %+v, want the same event delivered", second)
	}
}

// TestMaxPendingHoldsBackEvents: with MaxPending 2, an endpoint that does
// not answer has 2 events in flight and the rest waiting in the event
// stream, although its concurrency would take them all; once it answers,
// the rest are delivered.
func TestMaxPendingHoldsBackEvents(t *testing.T) {
	ns := natstest.Start(t)
	cfg := webhook.Config{AllowPrivate: true, MaxPending: 2, Concurrency: 5, Timeout: time.Minute}
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	rc := startReceiver(t, func(int, request) int {
		<-release
		return http.StatusOK
	})
	defer releaseAll() // before the receiver closes (cleanups run after), should the test fail first
	// The endpoint is registered and its events published before any
	// replica runs, so that the first pull finds all five waiting: without
	// the cap it would take them all at once.
	admin, js := openManager(t, ns, cfg, nil)
	ep := create(t, admin, "acme", webhook.Registration{URL: rc.srv.URL})
	const sent = 5
	ids := make(map[string]bool)
	for i := range sent {
		id := strconv.Itoa(i+1) + ".agent.status.alice"
		ids[id] = true
		publishEvent(t, js, "acme", "agent.status", id, map[string]string{"agent": "alice"})
	}
	startReplica(t, ns, cfg, nil)
	rc.expect(t)
	rc.expect(t)
	// Both requests are held, so the server has handed out two events and
	// acknowledged none: what it holds back now, it holds back for the cap.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.Consumer(ctx, "webhook-"+ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 2 || info.NumPending != sent-2 {
		t.Fatalf("got %d events in flight and %d waiting, want 2 and %d", info.NumAckPending, info.NumPending, sent-2)
	}
	if n := rc.count(); n != 2 {
		t.Fatalf("the endpoint got %d requests, want 2", n)
	}
	releaseAll()
	for range sent - 2 {
		rc.expect(t)
	}
	ds := followAttempts(t, js, "acme", ep.ID, func(ds []webhook.Delivery) bool { return len(ds) == sent })
	for _, d := range ds {
		if d.Outcome != webhook.OutcomeDelivered || !ids[d.EventID] {
			t.Fatalf("got attempts %+v, want each of the %d events delivered once", ds, sent)
		}
		delete(ids, d.EventID)
	}
}

// TestDeliveriesKept: with DeliveriesKept 3, the deliveries log of an
// endpoint that was delivered five events shows the last three.
func TestDeliveriesKept(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, webhook.Config{AllowPrivate: true, DeliveriesKept: 3}, nil)
	rc := startReceiver(t, nil)
	ep := create(t, r.m, "acme", webhook.Registration{URL: rc.srv.URL})
	for i := range 5 {
		id := strconv.Itoa(i+1) + ".agent.status.alice"
		publishEvent(t, r.js, "acme", "agent.status", id, map[string]string{"agent": "alice"})
		// One event at a time, each recorded before the next is
		// published, so the log's order is the events' and the follower
		// always finds the newest record still kept.
		followAttempts(t, r.js, "acme", ep.ID, func(ds []webhook.Delivery) bool {
			return len(ds) > 0 && ds[len(ds)-1].EventID == id
		})
	}
	ds := deliveries(t, r.m, "acme", ep.ID)
	var got []string
	for _, d := range ds {
		got = append(got, d.EventID)
	}
	if strings.Join(got, ",") != "5.agent.status.alice,4.agent.status.alice,3.agent.status.alice" {
		t.Fatalf("got deliveries of %v, want the last three events, newest first", got)
	}
}

// TestURLLengthCap: an endpoint URL of 2048 bytes is registered, one of
// 2049 is refused as the url field.
func TestURLLengthCap(t *testing.T) {
	ns := natstest.Start(t)
	m, _ := openManager(t, ns, webhook.Config{AllowPrivate: true}, nil)
	base := "http://127.0.0.1:8080/"
	atCap := base + strings.Repeat("a", 2048-len(base))
	ep := create(t, m, "acme", webhook.Registration{URL: atCap})
	if ep.URL != atCap {
		t.Fatalf("got URL %q, want the 2048 bytes registered", ep.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := m.Create(ctx, "acme", webhook.Registration{URL: atCap + "a"})
	var fe *webhook.FieldError
	if !errors.As(err, &fe) || fe.Field != "url" || !strings.Contains(fe.Msg, "2048") {
		t.Fatalf("a URL of 2049 bytes: got %v, want it refused as the url field, naming the 2048 bytes", err)
	}
}

// TestRetryScheduleBounded: Open refuses a retry schedule whose attempts,
// with the most jitter, could outlast the deliveries log's 7 days or the
// event stream's retention, and takes the default and one that fits.
func TestRetryScheduleBounded(t *testing.T) {
	ns := natstest.Start(t)
	nc := natstest.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		schedule []time.Duration
		want     string // in the error; "" for accepted
	}{
		{"default", nil, ""},
		{"six days", []time.Duration{time.Minute, 3 * day, 3 * day}, ""},
		{"seven days", []time.Duration{day, day, day, day, day, day, day}, "deliveries log"},
		// 6.5 days fit only without the jitter.
		{"six and a half days with the jitter", []time.Duration{6*day + 12*time.Hour}, "deliveries log"},
		{"one long delay", []time.Duration{5 * time.Second, 8 * day}, "deliveries log"},
		{"overflowing", []time.Duration{time.Duration(1<<63 - 1)}, "deliveries log"},
	} {
		_, err := webhook.Open(ctx, webhook.Config{JetStream: js, RetrySchedule: tc.schedule})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "retry schedule") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want the retry schedule refused for the %s", tc.name, err, tc.want)
		}
	}

	// With the event stream keeping events an hour, a retry after that
	// would find its event gone.
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, schedule := range [][]time.Duration{nil, {time.Minute, time.Hour}} {
		_, err := webhook.Open(ctx, webhook.Config{JetStream: js, RetrySchedule: schedule})
		if err == nil || !strings.Contains(err.Error(), "retry schedule") || !strings.Contains(err.Error(), "event stream") {
			t.Errorf("schedule %v with events kept an hour: got %v, want it refused for the event stream's retention", schedule, err)
		}
	}
	if _, err := webhook.Open(ctx, webhook.Config{JetStream: js, RetrySchedule: []time.Duration{time.Minute, 30 * time.Minute}}); err != nil {
		t.Errorf("a schedule within the event stream's hour: %v", err)
	}
}
