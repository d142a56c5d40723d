package hub

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// Benchmarks of the hot paths. They feed the view by hand (as the watcher
// does) with a hub whose NATS side is real but idle. Run with
//
//	go test -run '^$' -bench . -benchmem ./hub/ ./presence/

// drainQueue is a subscriber whose queue the benchmark empties itself.
type drainQueue struct{ frames chan []byte }

func (q *drainQueue) Send(f *Frame) bool {
	select {
	case q.frames <- f.Payload():
		return true
	default:
		return false
	}
}

func (q *drainQueue) Kick(error) {}

// newBenchHub returns a hub on a real, idle bucket, its view fed by hand.
func newBenchHub(b *testing.B) *Hub {
	b.Helper()
	return newBucketEntries(b).newHub()
}

func agentEntry(b *testing.B, site, agent string, status presence.Status, rev uint64) entry {
	b.Helper()
	v, err := json.Marshal(store.AgentRecord{Status: status, At: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	return entry{key: store.AgentKey(site, agent).String(), rev: rev, value: v}
}

func deviceEntry(b *testing.B, site, agent, device string, rev uint64) entry {
	b.Helper()
	v, err := json.Marshal(store.DeviceRecord{Kind: presence.Desktop, Session: "s-" + device, State: presence.Live, Since: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	return entry{key: store.LeaseKey(site, agent, device).String(), rev: rev, value: v}
}

// applyEntry applies e as the watcher does.
func (h *Hub) applyEntry(e entry) {
	k, _ := store.ParseKey(e.key)
	s := h.view.lockSite(k.Site)
	h.view.applyEntryLocked(s, k, e, false)
	h.view.unlockSite(s)
}

// seedBenchSite fills site acme with 1,000 busy agents, one device each,
// and subscribes a widget of the site; it returns the last revision used
// and the widget's queue, its first frame read.
func seedBenchSite(b *testing.B, h *Hub) (uint64, *drainQueue) {
	b.Helper()
	var rev uint64
	for i := range 1000 {
		rev++
		h.applyEntry(agentEntry(b, "acme", fmt.Sprint("agent", i), presence.Busy, rev))
		rev++
		h.applyEntry(deviceEntry(b, "acme", fmt.Sprint("agent", i), "d", rev))
	}
	q := &drainQueue{frames: make(chan []byte, 1)}
	if _, err := h.SubscribeWidget("acme", "", q); err != nil {
		b.Fatal(err)
	}
	<-q.frames
	return rev, q
}

// BenchmarkApplyAgentUpdate applies one agent status change to a view with
// 1,000 agents on the site and one subscribed widget.
func BenchmarkApplyAgentUpdate(b *testing.B) {
	h := newBenchHub(b)
	rev, q := seedBenchSite(b, h)
	entries := []entry{agentEntry(b, "acme", "agent7", presence.Online, 0), agentEntry(b, "acme", "agent7", presence.Busy, 0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rev++
		e := entries[i%2]
		e.rev = rev
		h.applyEntry(e)
		<-q.frames
	}
}

// BenchmarkApplyLeaseRefresh applies a lease refreshed, the agent
// unchanged (the most common entry of all), on a site with working hours
// and widgets of 20 groups and the site subscribed, the agent in no group
// (so in every group's count): the entry moves no widget, so none is
// recomputed.
func BenchmarkApplyLeaseRefresh(b *testing.B) {
	h := newBenchHub(b)
	rev, _ := seedBenchSite(b, h)
	sched := presence.Schedule{Timezone: "Europe/Prague", Weekly: map[string][]presence.Interval{"monday": {{From: "09:00", To: "17:00"}}}}
	v, err := json.Marshal(sched)
	if err != nil {
		b.Fatal(err)
	}
	rev++
	h.applyEntry(entry{key: store.HoursKey("acme", "").String(), rev: rev, value: v})
	for g := range 20 {
		q := &drainQueue{frames: make(chan []byte, 1)}
		if _, err := h.SubscribeWidget("acme", fmt.Sprint("group", g), q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rev++
		h.applyEntry(deviceEntry(b, "acme", "agent7", "d", rev))
	}
}

// countingQueue is a subscriber that only counts what it is sent, and
// says when a whole fan-out has arrived.
type countingQueue struct {
	sent *atomic.Int64
	want int64
	done chan struct{}
}

func (q *countingQueue) Send(*Frame) bool {
	if q.sent.Add(1) == q.want {
		q.done <- struct{}{}
	}
	return true
}

func (q *countingQueue) Kick(error) {}

// BenchmarkFanOut10kWidgets applies a change that flips one widget watched
// by 10,000 local subscribers: one frame encoded, 10,000 sent by the
// site's delivery goroutine; each iteration ends when the last has it.
func BenchmarkFanOut10kWidgets(b *testing.B) {
	const n = 10000
	h := newBenchHub(b)
	h.applyEntry(agentEntry(b, "acme", "alice", presence.Online, 1))
	h.applyEntry(deviceEntry(b, "acme", "alice", "d", 2))
	var sent atomic.Int64
	done := make(chan struct{}, 1)
	for range n {
		if _, err := h.SubscribeWidget("acme", "", &countingQueue{sent: &sent, want: n, done: done}); err != nil {
			b.Fatal(err)
		}
	}
	<-done // every subscriber has its first frame
	entries := []entry{agentEntry(b, "acme", "alice", presence.Busy, 0), agentEntry(b, "acme", "alice", presence.Online, 0)}
	rev := uint64(2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rev++
		e := entries[i%2]
		e.rev = rev
		sent.Store(0)
		h.applyEntry(e)
		<-done
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/delivery")
}

// BenchmarkEncodeWidgetFrame encodes one widget_status frame.
func BenchmarkEncodeWidgetFrame(b *testing.B) {
	w := presence.Widget{Status: presence.Online, Reason: presence.ReasonAgentsOnline}
	next := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		widgetFrame("acme", "sales", w, next, time.Now())
	}
}

// BenchmarkApplyAgentUpdateWithEvents is BenchmarkApplyAgentUpdate on a
// hub that publishes events: the change's events derived, encoded and
// handed to a real JetStream stream asynchronously (4 per change here:
// agent.status, agent.availability, the site's and a group's widget).
func BenchmarkApplyAgentUpdateWithEvents(b *testing.B) {
	be := newBucketEntries(b)
	if _, err := events.OpenStream(b.Context(), be.js, events.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h, err := New(Config{JetStream: be.js, Bucket: be.bucket, Events: true, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	h.ready.Store(true)
	ownEvents(h, 0, true)
	rev, q := seedBenchSite(b, h)
	entries := []entry{agentEntry(b, "acme", "agent7", presence.Online, 0), agentEntry(b, "acme", "agent7", presence.Busy, 0)}
	for i := range entries {
		var rec store.AgentRecord
		if err := json.Unmarshal(entries[i].value, &rec); err != nil {
			b.Fatal(err)
		}
		rec.ByDevice, rec.Groups = "d", []string{"sales"}
		entries[i].value, _ = json.Marshal(rec)
	}
	k, _ := store.ParseKey(entries[0].key)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rev++
		e := entries[i%2]
		e.rev, e.at = rev, time.Now()
		h.applyLive(k, e)
		<-q.frames
	}
	b.StopTimer()
	<-h.events.Complete()
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var published, failed float64
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
	b.ReportMetric(failed, "failed")
	b.ReportMetric(published/float64(b.N), "events/change")
	b.ReportMetric(published/b.Elapsed().Seconds(), "events/s")
}
