package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/protocol"
)

// TestEventBacklogDropsWhenFull: while JetStream acknowledges nothing (here
// a stream that sends no acknowledgements), the publisher keeps at most
// events.Backlog events in flight and drops and counts the ones after them
// at once, rather than holding up the watcher that hands them over.
func TestEventBacklogDropsWhenFull(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SILENT", Subjects: []string{events.SubjectPrefix + ">"}, NoAck: true}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := events.Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "published"}, []string{"type"}),
		Errors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "errors"}, []string{"reason"}),
	}
	reg.MustRegister(m.Published, m.Errors)
	p, err := events.NewPublisher(natstest.Connect(t, ns), m, func(func(context.Context)) bool { return false }, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	const over = 3
	evs := make([]events.Event, events.Backlog+over)
	for i := range evs {
		evs[i] = events.Event{ID: fmt.Sprintf("%d.agent.status.alice", i+1), Type: events.TypeAgentStatus, Site: "acme",
			Timestamp: protocol.Time(time.Now()), Data: json.RawMessage(`{}`)}
	}
	p.Publish(evs)
	if got := p.Pending(); got != events.Backlog {
		t.Errorf("got %d events waiting for an acknowledgement, want the backlog's %d", got, events.Backlog)
	}
	if got := counter(t, reg, "published", events.TypeAgentStatus); got != events.Backlog {
		t.Errorf("got %v events published, want %d", got, events.Backlog)
	}
	if got := counter(t, reg, "errors", "dropped"); got != over {
		t.Errorf("got %v events dropped, want the %d over the backlog", got, over)
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
