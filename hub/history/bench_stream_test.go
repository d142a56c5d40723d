//go:build unix

package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// The benchmarks of a fresh index's first answer, reading a real event
// stream (docs/benchmarks.md#history). The nats-server runs in a process
// of its own, so that the heap measured is the index's alone.

// openProcessStream is an event stream on a nats-server process.
func openProcessStream(b *testing.B) *sitesStream {
	b.Helper()
	js, err := jetstream.New(natstest.ConnectURL(b, natstest.StartProcess(b).URL()))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := events.OpenStream(context.Background(), js, events.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	return &sitesStream{tb: b, js: js}
}

// BenchmarkReplay90Days: a new index answers its first timeline of the
// site, over its last hour, reading the site's 90 days from a real event
// stream: without summaries (every event read), with summaries on and none
// written yet (every event read, and the 89 days over written), and with
// them written (89 days of summaries read, then the last day's events: the
// clock is at the end of the last day, which is not settled yet); then
// the same with 600,000 events of 20,000 other sites in the stream.
func BenchmarkReplay90Days(b *testing.B) {
	encoded, s := busyStream(b)
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
// iterations, as the NATS client may allocate or free in between), what
// indexBytes counts of it (index-MiB), the messages it read from the
// event stream and the summaries it applied.
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
		s := openProcessStream(b)
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

// BenchmarkSummarize90Days: the owner's Summarize of the busy site of
// BenchmarkReplay90Days, the clock just after its 90th day settled, on a
// real event stream (docs/benchmarks.md#history): with no summary written
// (every event read, 90 days written), with the last day's missing (the
// daily case: the day's events read, its summary written), and with every
// one written (nothing due: what each site without new days costs).
func BenchmarkSummarize90Days(b *testing.B) {
	_, s := busyStream(b)
	sums := openSummaries(b, s)
	ctx := context.Background()
	x := runIndex(b, s, Config{Now: func() time.Time { return benchEnd.Add(SettleAfter + time.Minute) }, Summaries: DefaultSummaries})
	summarize := func(b *testing.B, reset func()) {
		for b.Loop() {
			b.StopTimer()
			if reset != nil {
				reset()
			}
			b.StartTimer()
			if err := x.Summarize(ctx, "acme"); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		info, err := sums.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs != benchDays || len(x.Sites()) != 0 {
			b.Fatalf("%d summaries, %d sites in memory; want %d, none", info.State.Msgs, len(x.Sites()), benchDays)
		}
	}
	b.Run("written=none", func(b *testing.B) {
		summarize(b, func() {
			if err := sums.Purge(ctx); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("written=all-but-the-last-day", func(b *testing.B) {
		summarize(b, func() {
			m, err := sums.GetLastMsgForSubject(ctx, summaryPrefix("acme")+">")
			if err == nil {
				err = sums.DeleteMsg(ctx, m.Sequence)
			}
			if err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("written=all", func(b *testing.B) { summarize(b, nil) })
}

// busyStream publishes the busy site's 90 days of events (benchEvents) to
// an event stream on a nats-server process of its own, and returns them
// and the stream.
func busyStream(b *testing.B) ([][]byte, *sitesStream) {
	b.Helper()
	encoded := benchEvents()
	s := openProcessStream(b)
	for _, e := range encoded {
		var ev events.Event
		json.Unmarshal(e, &ev)
		s.n++
		s.raw(ev.Subject(), e)
	}
	s.flush()
	return encoded, s
}
