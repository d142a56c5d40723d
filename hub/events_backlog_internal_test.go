package hub

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/protocol"
)

// TestEventBacklogDropsWhenFull: while JetStream acknowledges nothing (here
// a stream that sends no acknowledgements), the publisher keeps at most
// eventBacklog events in flight and drops and counts the ones after them
// at once, rather than holding up the watcher that hands them over.
func TestEventBacklogDropsWhenFull(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SILENT", Subjects: []string{EventSubjectPrefix + ">"}, NoAck: true}); err != nil {
		t.Fatal(err)
	}
	kv, err := OpenBucket(ctx, js, BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h, err := New(Config{JetStream: js, KV: kv, Events: true, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	const over = 3
	events := make([]Event, eventBacklog+over)
	for i := range events {
		events[i] = Event{ID: fmt.Sprintf("%d.agent.status.alice", i+1), Type: EventAgentStatus, Site: "acme",
			Timestamp: protocol.Time(time.Now()), Data: json.RawMessage(`{}`)}
	}
	h.events.publish(events)
	if got := h.events.pending(); got != eventBacklog {
		t.Errorf("got %d events waiting for an acknowledgement, want the backlog's %d", got, eventBacklog)
	}
	if got := counter(t, reg, "presencehub_events_published_total", EventAgentStatus); got != eventBacklog {
		t.Errorf("got %v events published, want %d", got, eventBacklog)
	}
	if got := counter(t, reg, "presencehub_event_errors_total", "dropped"); got != over {
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
