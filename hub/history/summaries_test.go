package history

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/presence"
)

// openSummaries creates the summaries' stream on s's server.
func openSummaries(tb testing.TB, s *sitesStream) jetstream.Stream {
	tb.Helper()
	st, err := OpenSummaries(context.Background(), s.js, events.StreamConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// history publishes days of events of site from t0 on: agents changing
// their status (sometimes only their availability, a device dropping, or
// only their chosen status), widgets changing, some events at the same
// instant as the one before, some a few seconds before it (out of order,
// as a retried event lands); it returns the events' instants in the order
// published.
func (s *sitesStream) history(site string, t0 time.Time, days, perDay int, seed uint64) []time.Time {
	rng := rand.New(rand.NewPCG(seed, 7))
	statuses := []presence.Status{presence.Online, presence.Busy, presence.Offline}
	chosen, eff := map[string]presence.Status{}, map[string]presence.Status{}
	var out []time.Time
	at := t0
	step := 24 * time.Hour / time.Duration(perDay)
	for range days * perDay {
		at = at.Add(time.Duration(rng.Int64N(int64(2 * step))))
		when := at
		switch rng.IntN(20) {
		case 0: // out of order
			when = at.Add(-time.Duration(rng.IntN(30_000)) * time.Millisecond)
		case 1: // the instant of the event before
			if len(out) > 0 {
				when = out[len(out)-1]
			}
		}
		a := fmt.Sprintf("a%d", rng.IntN(8))
		next := statuses[rng.IntN(3)]
		switch rng.IntN(6) {
		case 0: // availability only
			s.event(site, events.TypeAgentAvailability, when, events.AgentAvailabilityData{Agent: a, Status: next, Previous: eff[a], Cause: events.CauseGraceExpired})
			eff[a] = next
		case 1: // chosen only
			s.event(site, events.TypeAgentStatus, when, events.AgentStatusData{Agent: a, Status: next, Previous: chosen[a]})
			chosen[a] = next
		default:
			s.event(site, events.TypeAgentStatus, when, events.AgentStatusData{Agent: a, Status: next, Previous: chosen[a]})
			s.event(site, events.TypeAgentAvailability, when, events.AgentAvailabilityData{Agent: a, Status: next, Previous: eff[a], Cause: events.CauseStatusSet})
			chosen[a], eff[a] = next, next
			out = append(out, when)
		}
		out = append(out, when)
		if rng.IntN(3) == 0 {
			g := []string{"", "g1", "g2"}[rng.IntN(3)]
			w := []presence.Widget{{Status: presence.Online, Reason: presence.ReasonAgentsOnline}, {Status: presence.Busy, Reason: presence.ReasonAllBusy},
				{Status: presence.Offline, Reason: presence.ReasonNoAgents}, {Status: presence.Offline, Reason: presence.ReasonOutsideHours}}[rng.IntN(4)]
			s.event(site, events.TypeWidgetStatus, when, events.WidgetStatusData{Group: g, Status: w.Status, Reason: w.Reason})
			out = append(out, when)
		}
	}
	return out
}

// answers returns x's answers to timelines and reports of site over
// ranges that start and end mid-day, cross midnight, select an agent or a
// group, in three zones, as JSON.
func answers(t *testing.T, x *Index, site string, now time.Time) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	add := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(v)
		b.Write(j)
		b.WriteByte('\n')
	}
	day0 := now.Truncate(24*time.Hour).AddDate(0, 0, -6)
	g1 := "g1"
	for _, r := range []struct {
		from, to time.Time
		sel      Selection
	}{
		{day0, now, Selection{}},
		{day0.Add(37*time.Hour + 17*time.Minute + 5123*time.Millisecond), day0.Add(74*time.Hour + 3*time.Minute), Selection{}},
		{day0.Add(5*24*time.Hour - time.Hour), day0.Add(5*24*time.Hour + time.Hour), Selection{}},
		{day0.Add(2 * time.Hour), now.Add(-3 * time.Hour), Selection{Agent: func(id string) bool { return id == "a3" }, Group: &g1}},
	} {
		add(x.Timeline(ctx, site, r.from, r.to, r.sel))
	}
	for _, zone := range []string{"UTC", "Europe/Prague", "America/New_York"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		first := time.Date(day0.Year(), day0.Month(), day0.Day(), 0, 0, 0, 0, loc)
		add(x.Report(ctx, site, first, now.In(loc), loc, Selection{}))
		add(x.Report(ctx, site, first.AddDate(0, 0, 2), first.AddDate(0, 0, 3), loc, Selection{Group: &g1}))
	}
	return b.String()
}

// TestSummariesAnswerAsTheEvents: a site read from its summaries and the
// events after them answers every timeline and report exactly as the site
// read from its events alone: after the summaries of the days over are
// written by the first replica that reads the site, with events that come
// after their day's summary was written (a late retried event), after the
// next day's summary was written by the replica that still follows the
// site (at its first query once an event of the day after came), and once
// the stream's oldest events are gone. Parts of 256 KiB (one a day) and of
// 60 bytes (many a day, more summaries than one fetch of them brings).
func TestSummariesAnswerAsTheEvents(t *testing.T) {
	for _, size := range []int{partBytes, 60} {
		t.Run(fmt.Sprintf("part=%d", size), func(t *testing.T) { testSummariesAnswer(t, size) })
	}
}

func testSummariesAnswer(t *testing.T, size int) {
	s := openSitesStream(t)
	sums := openSummaries(t, s)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	day0 := now.AddDate(0, 0, -6).Truncate(24 * time.Hour)
	published := s.history("acme", day0.Add(3*time.Hour), 5, 150, 1)
	s.history("beta", day0, 2, 100, 2)
	s.raw(events.SubjectPrefix+"acme."+events.TypeWidgetStatus, []byte("not an event"))
	published = append(published, s.history("acme", now.Add(-9*time.Hour), 1, 100, 3)...)
	s.flush()
	index := func(now time.Time, summaries string) *Index {
		x := runIndex(t, s, Config{Now: func() time.Time { return now }, Summaries: summaries})
		x.partBytes = size
		return x
	}
	compare := func(phase string, now time.Time) (*siteEntry, *Index) {
		t.Helper()
		raw, sum := index(now, ""), index(now, DefaultSummaries)
		want, got := answers(t, raw, "acme", now), answers(t, sum, "acme", now)
		if got != want {
			t.Fatalf("%s: with summaries:\n%s\nfrom the events alone:\n%s", phase, got, want)
		}
		return sum.sites["acme"], sum
	}

	// The first replica reads the site from the events and writes the
	// days that ended more than SettleAfter ago: all but today, of which
	// only full parts.
	first, following := compare("the first read", now)
	if n := first.summaries.Load(); n != 0 {
		t.Fatalf("the first read applied %d summaries, want none", n)
	}
	subjects := summarySubjects(t, sums)
	if len(subjects) < 6 || !strings.Contains(fmt.Sprint(subjects), "acme.2026-11-30.") {
		t.Fatalf("summaries written: %v; want the six days before 2026-12-01", subjects)
	}
	for _, subj := range subjects {
		if !strings.HasPrefix(subj, "presence.history.v1.acme.2026-1") || (size == partBytes && strings.Contains(subj, "2026-12-01")) {
			t.Fatalf("summary %s: only acme's days before 2026-12-01 are over", subj)
		}
	}

	// The next replica reads them, and the events of today after them.
	next, _ := compare("with summaries", now)
	tail := 0
	for i, at := range published {
		if at.After(now.Truncate(24 * time.Hour)) {
			tail = len(published) - i
			break
		}
	}
	if got, want := next.summaries.Load(), int64(len(subjects)); got != want || size < partBytes && want <= 256 {
		t.Fatalf("applied %d summaries, want %d (more than 256 with small parts)", got, want)
	}
	// Today's events, and the message that does not decode, after the
	// last event summarised; with small parts, today's full parts are
	// summaries too.
	if got := next.read.Load(); got != int64(tail+1) && (size == partBytes || got > int64(tail+1)) {
		t.Fatalf("read %d messages after the summaries, want today's %d and one that does not decode", got, tail)
	}

	// Events of 2026-11-30 come after its summary was written (a replica
	// would not publish them, MaxRetryAge; still they are answered alike).
	s.event("acme", events.TypeAgentStatus, now.Truncate(24*time.Hour).Add(-time.Second), events.AgentStatusData{Agent: "a1", Status: presence.Busy, Previous: presence.Online})
	s.widget("acme", now.Truncate(24*time.Hour).Add(-2*time.Hour), presence.Busy, presence.ReasonAllBusy)
	s.event("acme", events.TypeAgentAvailability, now.Add(-time.Minute), events.AgentAvailabilityData{Agent: "new", Status: presence.Online, Previous: presence.Offline})
	s.flush()
	compare("late events", now)

	// The first replica still follows the site: once an event of the
	// next day came, its next query writes 2026-12-01 (with the late
	// events in it); a new replica reads no event of that day.
	s.widget("acme", now.Add(20*time.Hour), presence.Online, presence.ReasonAgentsOnline)
	s.flush()
	tomorrow := dayOf(now.Add(20 * time.Hour).UnixMilli())
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := following.Timeline(context.Background(), "acme", day0, now, Selection{}); err != nil {
			t.Fatal(err)
		}
		following.mu.RLock()
		done := first.b != nil && len(first.b.parts) == 1 && first.b.parts[0].day == tomorrow
		following.mu.RUnlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica that follows the site did not write 2026-12-01")
		}
		<-tick.C // the site's consumer, a NATS goroutine, reads the new event
	}
	if written := summarySubjects(t, sums); !strings.Contains(written[len(written)-1], ".acme.2026-12-01.") {
		t.Fatalf("the last summary written is %s, want 2026-12-01's", written[len(written)-1])
	}
	later := now.Add(24 * time.Hour)
	compare("the next day's first read", later)
	if e, _ := compare("the next day", later); e.read.Load() != 1 {
		t.Fatalf("the next day: read %d events after the summaries, want the next day's one", e.read.Load())
	}
	if n := len(summarySubjects(t, sums)); n <= len(subjects) {
		t.Fatalf("%d summaries after the next day, want more than %d", n, len(subjects))
	}

	// The stream drops its oldest events (retention): what summaries hold
	// of them is not applied.
	stream, err := s.js.Stream(context.Background(), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(context.Background(), jetstream.WithPurgeSequence(info.State.LastSeq/3)); err != nil {
		t.Fatal(err)
	}
	compare("the oldest events gone", later)
}

// summarySubjects returns the subjects of the summaries stored, in the
// order written.
func summarySubjects(t *testing.T, sums jetstream.Stream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	info, err := sums.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := sums.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Subject)
	}
	return out
}

// TestSummariesWrittenOnce: two replicas that read a site at once write
// each summary once between them, and a third writes nothing; a summary
// that differs from what the events make (another writer's, another
// version's, garbage) stops the summaries at it, and the events after the
// one before it are read instead, as does a summary whose last event the
// stream no longer holds; summaries of an event stream deleted and created
// again are not applied. Every answer is the events' own.
func TestSummariesWrittenOnce(t *testing.T) {
	s := openSitesStream(t)
	sums := openSummaries(t, s)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	day0 := now.AddDate(0, 0, -5).Truncate(24 * time.Hour)
	s.history("acme", day0, 5, 100, 4)
	// Garbage where 2026-11-29's summary goes, before any is written.
	if _, err := s.js.Publish(context.Background(), "presence.history.v1.acme.2026-11-29.0", []byte{summaryVersion, 1, 2}); err != nil {
		t.Fatal(err)
	}
	s.flush()
	index := func(summaries string) *Index {
		return runIndex(t, s, Config{Now: func() time.Time { return now }, Summaries: summaries})
	}
	// check compares a new index's answers with summaries to the events'
	// alone, and counts the summaries it applied.
	check := func(phase string, summaries int64) {
		t.Helper()
		want := answers(t, index(""), "acme", now)
		x := index(DefaultSummaries)
		if answers(t, x, "acme", now) != want {
			t.Fatalf("%s: the answers differ from the events'", phase)
		}
		if n := x.sites["acme"].summaries.Load(); n != summaries {
			t.Fatalf("%s: applied %d summaries, want %d", phase, n, summaries)
		}
	}
	a, b := index(DefaultSummaries), index(DefaultSummaries)
	got := make(chan string, 2)
	for _, x := range []*Index{a, b} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tl, err := x.Timeline(ctx, "acme", day0, now, Selection{})
			j, _ := json.Marshal(tl)
			got <- fmt.Sprint(string(j), err)
		}()
	}
	if g1, g2 := <-got, <-got; g1 != g2 {
		t.Fatalf("two replicas at once: %s\n%s", g1, g2)
	}
	stored := summarySubjects(t, sums)
	if fmt.Sprint(stored) != "[presence.history.v1.acme.2026-11-29.0 presence.history.v1.acme.2026-11-26.0 presence.history.v1.acme.2026-11-27.0 presence.history.v1.acme.2026-11-28.0]" {
		t.Fatalf("summaries stored: %v; want each day before the garbage once", stored)
	}
	check("summaries up to the garbage", 3)
	if after := summarySubjects(t, sums); len(after) != len(stored) {
		t.Fatalf("a third replica wrote %v", after[len(stored):])
	}

	// The event stream no longer holds the last event of 2026-11-28's
	// summary (as after a restore of the stream from an older backup):
	// that summary is not applied, the events after 2026-11-27's are read.
	m, err := sums.GetLastMsgForSubject(context.Background(), "presence.history.v1.acme.2026-11-28.0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := summaryHeader(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.js.Stream(context.Background(), events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := evs.DeleteMsg(context.Background(), h.to); err != nil {
		t.Fatal(err)
	}
	check("without the last event of a summary", 2)

	// The event stream is deleted and created again, with other events:
	// its sequences start again, and the summaries of the old one are not
	// applied.
	if err := s.js.DeleteStream(context.Background(), events.DefaultStream); err != nil {
		t.Fatal(err)
	}
	if _, err := events.OpenStream(context.Background(), s.js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	s.history("acme", day0, 3, 50, 5)
	s.flush()
	check("after the event stream was created again", 0)
}

// TestSummaryFormat: a part's bytes give back its ops, the same ops make
// the same bytes, and bytes cut short or of another version are refused.
// Days follow the events' timestamps but never go back: a late event of a
// day belongs to the next day once that began.
func TestSummaryFormat(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC).UnixMilli()
	ops := []op{
		{seq: 3, at: t0, kind: opStatus, id: "alice", v: 2, w: 0},
		{seq: 4, at: t0, kind: opAvailability, id: "alice", v: 2, w: 0, chosen: true},
		{seq: 9, at: t0 + 2000, kind: opWidget, id: "", v: 1, w: 3},
		{seq: 10, at: t0 + 1000, kind: opAvailability, id: "bob", v: 0, w: 1}, // late: 2026-11-30
		{seq: 12, at: t0 + 5000, kind: opOther, stored: 77},
	}
	build := func() *builder {
		b := &builder{day: -1 << 62, limit: partBytes, epoch: 42}
		for _, o := range ops {
			b.add(o)
		}
		return b
	}
	b := build()
	if len(b.parts) != 2 || b.parts[0].day != dayOf(t0) || b.parts[1].day != dayOf(t0)+1 || b.parts[1].from != 4 || b.parts[1].to != 12 {
		t.Fatalf("parts: %+v; want 2026-11-30 up to seq 4, then 2026-12-01 with the late event", b.parts)
	}
	var got []op
	enc := b.parts[1].encode()
	want := append([]op(nil), ops[2:]...)
	want[len(want)-1].stored = 0 // a part keeps its last event's only
	if err := decodeSummary(enc, func(o op) { got = append(got, o) }); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("decoded %v, %v; want %v", got, err, want)
	}
	if h, err := summaryHeader(enc); h != (header{epoch: 42, from: 4, to: 12, stored: 77}) || err != nil {
		t.Fatalf("header: %+v, %v", h, err)
	}
	if again := build().parts[1].encode(); string(again) != string(enc) {
		t.Fatal("the same ops made other bytes")
	}
	for i := range enc {
		if err := decodeSummary(enc[:i], func(op) {}); err == nil {
			t.Fatalf("%d bytes of %d decoded", i, len(enc))
		}
	}
	other := append([]byte{summaryVersion + 1}, enc[1:]...)
	if err := decodeSummary(other, func(op) {}); err == nil {
		t.Fatal("another version decoded")
	}
	// Only the parts before the last are complete, and the last once its
	// day is settled.
	if r := b.ready(); len(r) != 1 || r[0] != b.parts[0] {
		t.Fatalf("ready: %v", r)
	}
	b.written(1)
	b.settled = dayOf(t0) + 2
	if r := b.ready(); len(r) != 1 || !r[0].sealed {
		t.Fatalf("ready once settled: %v", r)
	}
	b.add(op{seq: 13, at: t0 + 6000, kind: opOther})
	if len(b.parts) != 2 || b.parts[1].n != 1 || b.parts[1].from != 12 {
		t.Fatalf("after a sealed part: %+v; want part 1 from 12", b.parts[1])
	}
	if SettleAfter < 2*events.MaxRetryAge {
		t.Fatalf("SettleAfter %v leaves no room for events.MaxRetryAge %v", SettleAfter, events.MaxRetryAge)
	}
}
