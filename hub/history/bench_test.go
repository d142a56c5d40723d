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
