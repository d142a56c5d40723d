package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport/webhook"
)

// waitTimeout bounds every wait in these tests; a deadline for failing,
// never a measurement.
const waitTimeout = 20 * time.Second

// syncBuffer is a log destination the test reads while replicas write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replica is one Manager running on its own NATS connection.
type replica struct {
	m    *webhook.Manager
	js   jetstream.JetStream
	stop func()
}

// openManager opens a Manager on ns with cfg (JetStream set here), without
// running it: registrations made with it are delivered by the replicas
// that run. Its logs, at every level, go to logs.
func openManager(t *testing.T, ns *natsserver.Server, cfg webhook.Config, logs *syncBuffer) (*webhook.Manager, jetstream.JetStream) {
	t.Helper()
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
	cfg.JetStream = js
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := webhook.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, js
}

// startReplica opens a Manager on ns with cfg (JetStream set here) and runs
// it until the test ends or stop is called. Its logs, at every level, go to
// logs as well as the test's log on failure.
func startReplica(t *testing.T, ns *natsserver.Server, cfg webhook.Config, logs *syncBuffer) *replica {
	t.Helper()
	m, js := openManager(t, ns, cfg, logs)
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stopRun()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &replica{m: m, js: js, stop: stop}
}

// publishEvent puts an event of site into the event stream as a hub does,
// and returns its body.
func publishEvent(t *testing.T, js jetstream.JetStream, site, typ, id string, data any) []byte {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.Event{ID: id, Type: typ, Site: site, Timestamp: protocol.Time(time.Now()), Data: raw}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := js.Publish(ctx, ev.Subject(), body, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	return body
}

// request is what a receiver got.
type request struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP endpoint whose answers the test scripts.
type receiver struct {
	srv  *httptest.Server
	got  chan request
	mu   sync.Mutex
	next func(n int, r request) int // guarded by mu; the status of the n-th request (from 1)
	n    int                        // guarded by mu
}

// startReceiver serves answer's status codes; nil answers 204.
func startReceiver(t *testing.T, answer func(n int, r request) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan request, 1000), next: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.n++
		n, answer := rc.n, rc.next
		rc.mu.Unlock()
		rc.got <- req
		status := http.StatusNoContent
		if answer != nil {
			status = answer(n, req)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// expect returns the next request, failing the test if none comes in time.
func (rc *receiver) expect(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("the receiver got no request in time")
		return request{}
	}
}

// count returns how many requests the receiver has had.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n
}

// followAttempts reads an endpoint's attempts from the deliveries stream,
// oldest first, as they are recorded, until cond holds of those read.
func followAttempts(t *testing.T, js jetstream.JetStream, site, id string, cond func([]webhook.Delivery) bool) []webhook.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, webhook.DefaultDeliveryStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{webhook.DeliveriesSubjectPrefix + site + "." + id},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []webhook.Delivery
	for !cond(got) {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("the attempts recorded so far, %+v, are not all that was awaited: %v", got, err)
		}
		var d webhook.Delivery
		if err := json.Unmarshal(msg.Data(), &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	return got
}

// deliveries returns the deliveries log of an endpoint.
func deliveries(t *testing.T, m *webhook.Manager, site, id string) []webhook.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ds, err := m.Deliveries(ctx, site, id)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func create(t *testing.T, m *webhook.Manager, site string, reg webhook.Registration) webhook.Endpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ep, err := m.Create(ctx, site, reg)
	if err != nil {
		t.Fatalf("failed to register %+v: %v", reg, err)
	}
	return ep
}
