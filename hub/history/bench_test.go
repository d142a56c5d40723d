package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The benchmarks of docs/benchmarks.md#history: a site with 100 agents in
// 5 groups and about 3000 status changes a day, each with its
// agent.status, agent.availability and, one time in three, widget.status
// events, over 90 days: 630,000 events.

const (
	benchAgents  = 100
	benchGroups  = 5
	benchDays    = 90
	benchChanges = 3000 // a day
)

var benchEnd = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// benchEvents returns the synthetic history's events as the stream holds
// them, in order.
func benchEvents() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	start := benchEnd.AddDate(0, 0, -benchDays)
	n := benchDays * benchChanges
	step := benchEnd.Sub(start) / time.Duration(n)
	statuses := []presence.Status{presence.Online, presence.Busy, presence.Offline}
	chosen := make([]presence.Status, benchAgents)
	for i := range chosen {
		chosen[i] = presence.Offline
	}
	var out [][]byte
	add := func(typ string, at time.Time, data any) {
		d, _ := json.Marshal(data)
		b, _ := json.Marshal(events.Event{ID: fmt.Sprint(len(out)), Type: typ, Site: "acme", Timestamp: protocol.Time(at), Data: d})
		out = append(out, b)
	}
	for i := range n {
		at := start.Add(time.Duration(i) * step)
		a := rng.IntN(benchAgents)
		id := fmt.Sprintf("agent%03d", a)
		cur := slices.Index(statuses, chosen[a])
		next := statuses[(cur+1+rng.IntN(2))%3] // always a change
		add(events.TypeAgentStatus, at, events.AgentStatusData{Agent: id, Status: next, Previous: chosen[a]})
		add(events.TypeAgentAvailability, at, events.AgentAvailabilityData{Agent: id, Status: next, Previous: chosen[a]})
		chosen[a] = next
		if i%3 == 0 {
			g := ""
			if k := rng.IntN(benchGroups + 1); k > 0 {
				g = fmt.Sprintf("group%d", k)
			}
			w := presence.Widget{Status: presence.Online, Reason: presence.ReasonAgentsOnline}
			switch rng.IntN(4) {
			case 1:
				w = presence.Widget{Status: presence.Busy, Reason: presence.ReasonAllBusy}
			case 2:
				w = presence.Widget{Status: presence.Offline, Reason: presence.ReasonNoAgents}
			case 3:
				w = presence.Widget{Status: presence.Offline, Reason: presence.ReasonOutsideHours}
			}
			add(events.TypeWidgetStatus, at, events.WidgetStatusData{Group: g, Status: w.Status, Reason: w.Reason})
		}
	}
	return out
}

// benchIndex builds the index of the synthetic history in memory and
// returns it with a func that reports its size (call it after the loop:
// b.Loop's first call drops earlier metrics).
func benchIndex(b *testing.B) (*Index, func()) {
	b.Helper()
	encoded := benchEvents()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x, s := memIndex(Config{Retention: events.DefaultRetention + 24*time.Hour, Now: func() time.Time { return benchEnd }, Logger: slog.Default()}, "acme")
	for _, e := range encoded {
		x.apply(s, "", e)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	mib := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	runtime.KeepAlive(encoded)
	return x, func() {
		b.ReportMetric(mib, "index-MiB")
		b.ReportMetric(float64(len(encoded)), "events")
	}
}

// BenchmarkReport90Days: the availability report over 90 days in
// Europe/Prague, every agent and widget.
func BenchmarkReport90Days(b *testing.B) {
	x, report := benchIndex(b)
	defer report()
	prague, _ := time.LoadLocation("Europe/Prague")
	first := time.Date(2026, 9, 3, 0, 0, 0, 0, prague)
	last := time.Date(2026, 11, 30, 0, 0, 0, 0, prague)
	for b.Loop() {
		rep, err := x.Report(context.Background(), "acme", first, last, prague, Selection{})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Days) != 89 || len(rep.Days[0].Agents) != benchAgents {
			b.Fatalf("got %d days", len(rep.Days))
		}
	}
}

// BenchmarkTimeline90Days: the timeline over 90 days.
func BenchmarkTimeline90Days(b *testing.B) {
	x, report := benchIndex(b)
	defer report()
	from := benchEnd.AddDate(0, 0, -89)
	for b.Loop() {
		if _, err := x.Timeline(context.Background(), "acme", from, benchEnd, Selection{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay90Days: a new index answers its first timeline of the
// site, reading the site's 90 days from a real event stream.
func BenchmarkReplay90Days(b *testing.B) {
	encoded := benchEvents()
	ns := natstest.Start(b)
	nc := natstest.Connect(b, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	for i, e := range encoded {
		if i%2000 == 0 {
			<-js.PublishAsyncComplete()
		}
		var ev events.Event
		json.Unmarshal(e, &ev)
		m := nats.NewMsg(ev.Subject())
		m.Data = e
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	defer b.ReportMetric(float64(len(encoded)), "events")
	for b.Loop() {
		x, err := New(Config{JetStream: js, Now: func() time.Time { return benchEnd }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- x.Run(ctx) }()
		if _, err := x.Timeline(ctx, "acme", benchEnd.Add(-time.Hour), benchEnd, Selection{}); err != nil {
			b.Fatal(err)
		}
		cancel()
		<-done
	}
}

// BenchmarkFirstTimelineOtherSites: a fresh index's first timeline of one
// site with 3,000 events of its own, while the stream also holds 150,000,
// then 600,000 events of 2,000 other sites. Neither its time nor the
// index's memory should grow with the other sites.
func BenchmarkFirstTimelineOtherSites(b *testing.B) {
	s := openSitesStream(b)
	for i := range 3000 {
		st := []presence.Status{presence.Online, presence.Busy, presence.Offline}[i%3]
		s.widget("acme", sitesT0.Add(time.Duration(i)*time.Minute), st, presence.ReasonAgentsOnline)
	}
	others := 0
	for _, total := range []int{150_000, 600_000} {
		for ; others < total; others++ {
			s.widget(fmt.Sprintf("site%04d", others%2000), sitesT0.Add(time.Duration(others)*time.Second), presence.Online, presence.ReasonAgentsOnline)
		}
		s.flush()
		b.Run(fmt.Sprintf("others=%d", total), func(b *testing.B) {
			now := sitesT0.Add(60 * 24 * time.Hour)
			var heap float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				x := runIndex(b, s, Config{Now: func() time.Time { return now }})
				tl, err := x.Timeline(context.Background(), "acme", sitesT0, now, Selection{})
				if err != nil || len(tl.Widgets) != 1 || len(tl.Widgets[0].Intervals) != 3000 {
					b.Fatalf("got %v, %+v", err, tl.Widgets)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
				runtime.KeepAlive(x)
			}
			b.ReportMetric(heap, "heap-MiB")
		})
	}
}
