package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/presencehub/presencehub/hub/events"
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
// site, over its last hour, reading the site's 90 days from a real event
// stream: without summaries (every event read), with summaries on and none
// written yet (every event read, and the 89 days over written), and with
// them written (89 days of summaries read, then the last day's events: the
// clock is at the end of the last day, which is not settled yet); then
// the same with 600,000 events of 20,000 other sites in the stream.
func BenchmarkReplay90Days(b *testing.B) {
	encoded := benchEvents()
	s := openSitesStream(b)
	for _, e := range encoded {
		var ev events.Event
		json.Unmarshal(e, &ev)
		s.n++
		s.raw(ev.Subject(), e)
	}
	s.flush()
	sums := openSummaries(b, s)
	defer b.ReportMetric(float64(len(encoded)), "events")
	cfg := Config{Now: func() time.Time { return benchEnd }}
	from := benchEnd.Add(-time.Hour)
	b.Run("summaries=none", func(b *testing.B) {
		firstTimeline(b, s, cfg, "acme", from, benchEnd, nil)
	})
	cfg.Summaries = DefaultSummaries
	b.Run("summaries=written", func(b *testing.B) {
		firstTimeline(b, s, cfg, "acme", from, benchEnd, func() {
			if err := sums.Purge(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("summaries=present", func(b *testing.B) {
		firstTimeline(b, s, cfg, "acme", from, benchEnd, nil)
		info, err := sums.Info(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(info.State.Bytes)/float64(info.State.Msgs), "B/summary")
	})
	// Whatever else the stream holds: 600,000 events of 20,000 other
	// sites over the same 90 days.
	start := benchEnd.AddDate(0, 0, -benchDays)
	for i := range 600_000 {
		s.widget(fmt.Sprintf("site%05d", i%20_000), start.Add(time.Duration(i)*benchEnd.Sub(start)/600_000), presence.Online, presence.ReasonAgentsOnline)
	}
	s.flush()
	b.Run("others=600000/summaries=none", func(b *testing.B) {
		firstTimeline(b, s, Config{Now: cfg.Now}, "acme", from, benchEnd, nil)
	})
	b.Run("others=600000/summaries=present", func(b *testing.B) {
		firstTimeline(b, s, cfg, "acme", from, benchEnd, nil)
	})
}

// firstTimeline measures a fresh index's first timeline of site over
// [from, to), before each of which it calls reset (when set), untimed. It
// reports the live heap of the site's index once answered (heap-MiB: the
// heap, after a GC, less the heap once the site's index and the parts it
// built are dropped, after another GC, back to back; the least over the
// iterations, as the in-process nats-server allocates and frees in
// between), what indexBytes counts of it (index-MiB), the messages it read
// from the event stream and the summaries it applied.
func firstTimeline(b *testing.B, s *sitesStream, cfg Config, site string, from, to time.Time, reset func()) Timeline {
	b.Helper()
	heap, index := math.Inf(1), 0.0
	var tl Timeline
	var read, summaries int64
	for b.Loop() {
		if reset != nil {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		x := runIndex(b, s, cfg)
		var err error
		if tl, err = x.Timeline(context.Background(), site, from, to, Selection{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var with, without runtime.MemStats
		e := x.sites[site]
		read, summaries = e.read.Load(), e.summaries.Load()
		runtime.GC()
		runtime.ReadMemStats(&with)
		x.mu.Lock()
		index = float64(indexBytes(e)) / (1 << 20)
		e.idx, e.b = newSiteIndex(), nil
		x.mu.Unlock()
		runtime.GC()
		runtime.ReadMemStats(&without)
		heap = min(heap, (float64(with.HeapAlloc)-float64(without.HeapAlloc))/(1<<20))
		b.StartTimer()
	}
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(index, "index-MiB")
	b.ReportMetric(float64(read), "read")
	b.ReportMetric(float64(summaries), "summaries")
	return tl
}

// indexBytes is about the memory e holds: its series (their points, by
// capacity, the series and their ids in the maps) and the summaries' parts
// it built and has not written.
func indexBytes(e *siteEntry) int {
	n := 0
	for _, m := range []map[string]*series{e.idx.agents, e.idx.widgets} {
		for id, sr := range m {
			n += cap(sr.points)*int(unsafe.Sizeof(point{})) + int(unsafe.Sizeof(*sr)) + len(id) + 32
		}
	}
	if e.b != nil {
		for _, p := range e.b.parts {
			n += cap(p.ops) + p.idSize + int(unsafe.Sizeof(*p))
		}
	}
	return n
}

// BenchmarkFirstTimelineOtherSites: a fresh index's first timeline of one
// site with 3,000 events of its own, while the stream also holds 150,000,
// then 600,000 events of 2,000, or of 20,000, other sites. Neither its time
// nor the index's memory should grow with the other sites. Without
// summaries: the site's events are read.
func BenchmarkFirstTimelineOtherSites(b *testing.B) {
	for _, sites := range []int{2000, 20_000} {
		s := openSitesStream(b)
		for i := range 3000 {
			st := []presence.Status{presence.Online, presence.Busy, presence.Offline}[i%3]
			s.widget("acme", sitesT0.Add(time.Duration(i)*time.Minute), st, presence.ReasonAgentsOnline)
		}
		others := 0
		for _, total := range []int{150_000, 600_000} {
			for ; others < total; others++ {
				s.widget(fmt.Sprintf("site%05d", others%sites), sitesT0.Add(time.Duration(others)*time.Second), presence.Online, presence.ReasonAgentsOnline)
			}
			s.flush()
			b.Run(fmt.Sprintf("sites=%d/others=%d", sites, total), func(b *testing.B) {
				now := sitesT0.Add(60 * 24 * time.Hour)
				tl := firstTimeline(b, s, Config{Now: func() time.Time { return now }}, "acme", sitesT0, now, nil)
				if len(tl.Widgets) != 1 || len(tl.Widgets[0].Intervals) != 3000 {
					b.Fatalf("got %+v", tl.Widgets)
				}
			})
		}
	}
}
