package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/protocol"
)

// TestEventBacklogWaitsWhenFull: while JetStream acknowledges nothing (here
// a stream that sends no acknowledgements), the publisher keeps at most
// events.Backlog events in flight; the ones after them wait for room, in
// order, rather than being dropped (with one replica publishing each
// event, a dropped one would be lost) or holding up the watcher that hands
// them over. Once the stream acknowledges again, every one is stored.
func TestEventBacklogWaitsWhenFull(t *testing.T) {
	ctx := t.Context()
	sp := startSilent(t, 0)
	js, stream, cfg, p, reg := sp.js, sp.stream, sp.cfg, sp.p, sp.reg
	const over = 3
	evs := statusEvents(events.Backlog + over)
	p.Publish(evs)
	if got := p.Pending(); got != events.Backlog {
		t.Errorf("got %d events waiting for an acknowledgement, want the backlog's %d", got, events.Backlog)
	}
	if got := counter(t, reg, "published", events.TypeAgentStatus); got != float64(len(evs)) {
		t.Errorf("got %v events handed over, want %d", got, len(evs))
	}
	if got := counter(t, reg, "errors", "dropped"); got != 0 {
		t.Errorf("got %v events dropped, want none: the %d over the backlog wait", got, over)
	}
	// The stream acknowledges again: the attempts that timed out are
	// tried again, the ones that waited go out, and the stream holds each
	// event once.
	cfg.NoAck = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == uint64(len(evs)) && p.Pending() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %d events and %d are in flight, want all %d stored", info.State.Msgs, p.Pending(), len(evs))
		}
		<-tick.C
	}
	if got := counter(t, reg, "errors", "dropped") + counter(t, reg, "errors", "nack"); got != 0 {
		t.Errorf("got %v events given up, want none", got)
	}
}

// counter reads the value of the series of counter name whose one label
// has value label.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if l := m.GetLabel(); len(l) == 1 && l[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestEventQueueBound: behind a full backlog, at most the publisher's queue
// of events wait; the ones after are dropped and counted.
func TestEventQueueBound(t *testing.T) {
	const queue, over = 5, 3
	sp := startSilent(t, queue)
	p, reg := sp.p, sp.reg
	evs := statusEvents(events.Backlog + queue + over)
	p.Publish(evs)
	if got := counter(t, reg, "errors", "dropped"); got != over {
		t.Errorf("got %v events dropped, want the %d over the backlog and the queue of %d", got, over, queue)
	}
}

// silentPublisher is a publisher on a stream that acknowledges nothing
// (NoAck): every event stays in flight until its acknowledgement times out.
type silentPublisher struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    jetstream.StreamConfig
	p      *events.Publisher
	reg    *prometheus.Registry // its metrics: published and errors
}

// startSilent starts a nats-server with a silent stream of the events'
// subjects and a publisher with queue, whose retry loops end with the test.
func startSilent(t *testing.T, queue int) silentPublisher {
	t.Helper()
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "SILENT", Subjects: []string{events.SubjectPrefix + ">"}, NoAck: true, Duplicates: events.DuplicateWindow}
	stream, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := events.Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "published"}, []string{"type"}),
		Errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "errors"}, []string{"reason"}),
	}
	reg.MustRegister(m.Published, m.Errors)
	var loops sync.WaitGroup
	t.Cleanup(loops.Wait)
	loopCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	spawn := func(f func(context.Context)) bool {
		loops.Go(func() { f(loopCtx) })
		return true
	}
	p, err := events.NewPublisher(natstest.Connect(t, ns), m, spawn, time.Now, queue)
	if err != nil {
		t.Fatal(err)
	}
	return silentPublisher{js: js, stream: stream, cfg: cfg, p: p, reg: reg}
}

// statusEvents returns n agent.status events of distinct ids.
func statusEvents(n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = events.Event{ID: fmt.Sprintf("%d.agent.status.alice", i+1), Type: events.TypeAgentStatus, Site: "acme",
			Timestamp: protocol.Time(time.Now()), Data: json.RawMessage(`{}`)}
	}
	return evs
}
