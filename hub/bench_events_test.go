package hub

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// BenchmarkEventsTwoReplicas is the event stream's sustained rate with two
// replicas, as deployed: two hubs, each on its own connection to a real
// nats-server (in process, sharing the cores), apply the same status
// changes at once, derive the same 4 events per change and publish them;
// JetStream keeps one copy of each. It reports the events each replica
// published per second, the events the stream stored per second, and
// whether any were lost: a figure for docs/benchmarks.md, not a limit.
func BenchmarkEventsTwoReplicas(b *testing.B) {
	ns := natstest.Start(b)
	type replica struct {
		h   *Hub
		q   *drainQueue
		reg *prometheus.Registry
		in  chan entry
	}
	var replicas [2]*replica
	var stream jetstream.Stream
	var rev uint64
	for i := range replicas {
		js, err := jetstream.New(natstest.Connect(b, ns))
		if err != nil {
			b.Fatal(err)
		}
		kv, err := OpenBucket(b.Context(), js, BucketConfig{})
		if err != nil {
			b.Fatal(err)
		}
		if stream, err = OpenEventStream(b.Context(), js, EventStreamConfig{}); err != nil {
			b.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		h, err := New(Config{JetStream: js, KV: kv, Events: true, Registerer: reg})
		if err != nil {
			b.Fatal(err)
		}
		h.ready.Store(true)
		r := &replica{h: h, reg: reg, in: make(chan entry)}
		rev, r.q = seedBenchSite(b, h)
		replicas[i] = r
	}
	entries := []entry{agentEntry(b, "acme", "agent7", presence.Online, 0), agentEntry(b, "acme", "agent7", presence.Busy, 0)}
	for i := range entries {
		var rec agentRecord
		if err := json.Unmarshal(entries[i].value, &rec); err != nil {
			b.Fatal(err)
		}
		rec.ByDevice, rec.Groups = "d", []string{"sales"}
		entries[i].value, _ = json.Marshal(rec)
	}
	k, _ := parseKey(entries[0].key)
	// Each replica's watcher is a goroutine of its own, as in a process.
	done := make(chan struct{}, len(replicas))
	for _, r := range replicas {
		go func() {
			for e := range r.in {
				r.h.applyLive(k, e)
				<-r.q.frames
				done <- struct{}{}
			}
		}()
	}
	before, err := stream.Info(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	// b.Loop stops the benchmark's timer when it ends, before the last
	// acknowledgements: the rates are over the wall time until they came.
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		rev++
		e := entries[i%2]
		e.rev, e.at = rev, time.Now()
		for _, r := range replicas {
			r.in <- e
		}
		for range replicas {
			<-done
		}
	}
	for _, r := range replicas {
		close(r.in)
		<-r.h.events.js.PublishAsyncComplete()
	}
	elapsed := time.Since(start).Seconds()
	after, err := stream.Info(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	var published, failed float64
	for _, r := range replicas {
		families, err := r.reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				switch f.GetName() {
				case "presencehub_events_published_total":
					published += m.GetCounter().GetValue()
				case "presencehub_event_errors_total":
					failed += m.GetCounter().GetValue()
				}
			}
		}
	}
	stored := float64(after.State.Msgs - before.State.Msgs)
	// Seeding the site published nothing: its entries were applied without
	// events (applyEntry), so every stored event is one of the changes'.
	b.ReportMetric(failed, "failed")
	b.ReportMetric(published/float64(len(replicas))/elapsed, "published/s/replica")
	b.ReportMetric(stored/elapsed, "stored/s")
	b.ReportMetric(published/float64(len(replicas))-stored, "lost")
}
