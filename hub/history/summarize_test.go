package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestSummarizeWithoutQuery: Summarize writes the summaries of a site
// nobody asked about, the days that are over, without taking the site into
// memory (a site queries keep stays); a second Summarize writes nothing; a
// new replica's first query applies them and reads only today's events
// from the event stream, answering as the events alone; and the summaries
// are the bytes a query's load writes. A site with events of today only
// gets none. Parts of 256 KiB and of 60 bytes.
func TestSummarizeWithoutQuery(t *testing.T) {
	for _, size := range []int{partBytes, 60} {
		t.Run(fmt.Sprintf("part=%d", size), func(t *testing.T) { testSummarize(t, size) })
	}
}

func testSummarize(t *testing.T, size int) {
	s := openSitesStream(t)
	sums := openSummaries(t, s)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	day0 := now.AddDate(0, 0, -6).Truncate(24 * time.Hour)
	s.history("acme", day0.Add(3*time.Hour), 5, 150, 1)
	s.history("beta", day0, 2, 100, 2)
	today := s.history("acme", now.Add(-9*time.Hour), 1, 100, 3)
	s.history("gamma", now.Add(-3*time.Hour), 1, 50, 4)
	s.flush()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	index := func(summaries string, sites int) *Index {
		x := runIndex(t, s, Config{Now: func() time.Time { return now }, Summaries: summaries, Sites: sites})
		x.partBytes = size
		return x
	}

	x := index(DefaultSummaries, 1)
	if _, err := x.Timeline(ctx, "beta", day0, now, Selection{}); err != nil {
		t.Fatal(err)
	}
	for _, site := range []string{"acme", "gamma"} {
		if err := x.Summarize(ctx, site); err != nil {
			t.Fatalf("Summarize(%s): %v", site, err)
		}
	}
	if got := x.Sites(); fmt.Sprint(got) != "[beta]" {
		t.Fatalf("sites in memory after Summarize: %v, want [beta], the one queried", got)
	}
	written := siteSummaries(t, sums, "acme")
	if len(written) < 5 {
		t.Fatalf("Summarize wrote %v; want acme's days before 2026-12-01", slices.Sorted(maps.Keys(written)))
	}
	for subj := range written {
		if size == partBytes && strings.Contains(subj, "2026-12-01") {
			t.Fatalf("Summarize wrote %s: 2026-12-01 is not over", subj)
		}
	}
	if g := siteSummaries(t, sums, "gamma"); len(g) != 0 {
		t.Fatalf("Summarize wrote %v for a site with events of today only", slices.Sorted(maps.Keys(g)))
	}
	if err := x.Summarize(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if again := siteSummaries(t, sums, "acme"); len(again) != len(written) {
		t.Fatalf("a second Summarize wrote %d summaries more", len(again)-len(written))
	}

	// A new replica's first query reads the summaries and today's events
	// after them, and answers as the events alone.
	y := index(DefaultSummaries, 0)
	if got, want := answers(t, y, "acme", now), answers(t, index("", 0), "acme", now); got != want {
		t.Fatalf("with the summaries Summarize wrote:\n%s\nfrom the events alone:\n%s", got, want)
	}
	e := y.sites["acme"]
	if got := e.summaries.Load(); got != int64(len(written)) {
		t.Fatalf("the first query applied %d summaries, want the %d written", got, len(written))
	}
	if got := e.read.Load(); got > int64(len(today)) || size == partBytes && got != int64(len(today)) {
		t.Fatalf("the first query read %d events after the summaries, want today's %d (fewer with small parts: today's full parts are summaries)", got, len(today))
	}

	// A query's load writes the same summaries, byte for byte.
	if err := sums.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := index(DefaultSummaries, 0).Timeline(ctx, "acme", day0, now, Selection{}); err != nil {
		t.Fatal(err)
	}
	if byQuery := siteSummaries(t, sums, "acme"); !maps.EqualFunc(byQuery, written, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("a query wrote %v, Summarize %v: not the same summaries", slices.Sorted(maps.Keys(byQuery)), slices.Sorted(maps.Keys(written)))
	}
}

// siteSummaries returns site's summaries stored, by subject.
func siteSummaries(t *testing.T, sums jetstream.Stream, site string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	info, err := sums.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := sums.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.Subject, summaryPrefix(site)) {
			out[m.Subject] = m.Data
		}
	}
	return out
}

// TestSummarizeSitesPaced (on synctest's clock, from 2000-01-01 00:00
// UTC): the walk summarises each site listed once a day, one every
// 1/Rate at most; a site listed later, and one whose Summarize failed, at
// the next listing; every site again once the day that ended did so
// SettleAfter ago (00:10), and not before.
func TestSummarizeSitesPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		listed := []string{"a", "b", "c"}
		var calls []string // site@seconds since start
		failures := map[string]int{"c": 1}
		summarize := func(_ context.Context, site string) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, fmt.Sprintf("%s@%v", site, time.Since(start).Seconds()))
			if failures[site] > 0 {
				failures[site]--
				return errors.New("NATS is down")
			}
			return nil
		}
		sites := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(listed)
		}
		took := func() string {
			mu.Lock()
			defer mu.Unlock()
			out := strings.Join(calls, " ")
			calls = nil
			return out
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			summarizeSites(ctx, SummarizeConfig{Sites: sites, Rate: 2, Every: time.Minute}, time.Now, summarize, slog.New(slog.DiscardHandler))
		}()
		defer func() {
			cancel()
			<-done
		}()

		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := took(); got != "a@0 b@0.5 c@1" {
			t.Fatalf("first walk: %s; want a, b and c, half a second apart", got)
		}
		mu.Lock()
		listed = append(listed, "d")
		mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := took(); got != "c@61 d@61.5" {
			t.Fatalf("next listing: %s; want c (it failed) and d (new) at the minute", got)
		}
		// 2000-01-01 00:10 is when 1999-12-31 is complete (SettleAfter).
		next := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(SettleAfter)
		time.Sleep(time.Until(next) - time.Second)
		synctest.Wait()
		if got := took(); got != "" {
			t.Fatalf("before the day that ended was settled: %s", got)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if got := took(); len(strings.Fields(got)) != 4 {
			t.Fatalf("after the day that ended was settled: %s; want each of the 4 sites once", got)
		}
	})
}

// TestSummarizeSiteInMemory: Summarize of a site a query loaded writes,
// without reading anything, the day that was not over at the load once it
// is (SettleAfter after midnight), though no event of the next day came.
func TestSummarizeSiteInMemory(t *testing.T) {
	s := openSitesStream(t)
	sums := openSummaries(t, s)
	var clock atomic.Int64
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock.Store(now.UnixNano())
	s.history("acme", now.AddDate(0, 0, -3).Truncate(24*time.Hour), 3, 100, 1)
	s.history("acme", now.Add(-5*time.Hour), 1, 20, 2)
	s.flush()
	x := runIndex(t, s, Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }, Summaries: DefaultSummaries})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := x.Timeline(ctx, "acme", now.AddDate(0, 0, -1), now, Selection{}); err != nil {
		t.Fatal(err)
	}
	today := summaryPrefix("acme") + "2026-12-01.0"
	if written := siteSummaries(t, sums, "acme"); len(written) != 3 || written[today] != nil {
		t.Fatalf("the query wrote %v; want the 3 days before 2026-12-01", slices.Sorted(maps.Keys(written)))
	}
	read := x.sites["acme"].read.Load()
	clock.Store(now.Truncate(24 * time.Hour).Add(24*time.Hour + SettleAfter + time.Minute).UnixNano())
	if err := x.Summarize(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if written := siteSummaries(t, sums, "acme"); len(written) != 4 || written[today] == nil {
		t.Fatalf("Summarize wrote %v; want 2026-12-01 too", slices.Sorted(maps.Keys(written)))
	}
	if got := x.sites["acme"].read.Load(); got != read {
		t.Fatalf("Summarize of a site in memory read %d events", got-read)
	}
}
