package presence

import (
	"slices"
	"testing"
	"time"
)

var (
	wOnline  = Widget{Status: Online, Reason: ReasonAgentsOnline}
	wBusy    = Widget{Status: Busy, Reason: ReasonAllBusy}
	wNone    = Widget{Status: Offline, Reason: ReasonNoAgents}
	wOutside = Widget{Status: Offline, Reason: ReasonOutsideHours}
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSpansExactBoundaries(t *testing.T) {
	on := AgentState{Online, Online}
	busy := AgentState{Busy, Busy}
	off := AgentState{Online, Offline}
	changes := []Step[AgentState]{
		{utc("2026-12-01T08:00:00Z"), on},
		{utc("2026-12-01T09:00:00Z"), busy},
		{utc("2026-12-01T09:00:00Z"), on},  // same instant: the last counts, and merges with the previous
		{utc("2026-12-01T10:00:00Z"), on},  // no change
		{utc("2026-12-01T10:30:00Z"), off}, // device dropped
		{utc("2026-12-01T12:00:00Z"), busy},
	}
	got := Spans(AgentState{Offline, Offline}, changes, utc("2026-12-01T07:00:00Z"), utc("2026-12-01T11:00:00Z"))
	want := []Span[AgentState]{
		{utc("2026-12-01T07:00:00Z"), utc("2026-12-01T08:00:00Z"), AgentState{Offline, Offline}},
		{utc("2026-12-01T08:00:00Z"), utc("2026-12-01T10:30:00Z"), on},
		{utc("2026-12-01T10:30:00Z"), utc("2026-12-01T11:00:00Z"), off},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// A range starting at a change and inside a span.
	got = Spans(AgentState{Offline, Offline}, changes, utc("2026-12-01T09:00:00Z"), utc("2026-12-01T09:10:00Z"))
	want = []Span[AgentState]{{utc("2026-12-01T09:00:00Z"), utc("2026-12-01T09:10:00Z"), on}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if got := Spans(on, changes, utc("2026-12-01T09:00:00Z"), utc("2026-12-01T09:00:00Z")); got != nil {
		t.Fatalf("empty range: got %v", got)
	}
	totals := SumAgent(Spans(AgentState{Offline, Offline}, changes, utc("2026-12-01T00:00:00Z"), utc("2026-12-02T00:00:00Z")),
		utc("2026-12-01T00:00:00Z"), utc("2026-12-02T00:00:00Z"))
	// online 08:00-10:30, offline 00:00-08:00 and 10:30-12:00, busy 12:00-24:00
	if want := (AgentTotals{Online: 150 * time.Minute, Busy: 12 * time.Hour, Offline: 9*time.Hour + 30*time.Minute}); totals != want {
		t.Fatalf("got %+v, want %+v", totals, want)
	}
}

func TestDaysPragueDST(t *testing.T) {
	prague, err := time.LoadLocation("Europe/Prague")
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 3, 28, 0, 0, 0, 0, prague)
	days := Days(first, time.Date(2026, 3, 30, 0, 0, 0, 0, prague), prague)
	var lens []time.Duration
	for _, d := range days {
		lens = append(lens, d.End.Sub(d.Start))
	}
	if want := []time.Duration{24 * time.Hour, 23 * time.Hour, 24 * time.Hour}; !slices.Equal(lens, want) {
		t.Fatalf("March: got %v, want %v", lens, want)
	}
	if days[1].Date != "2026-03-29" || !days[1].Start.Equal(utc("2026-03-28T23:00:00Z")) || !days[1].End.Equal(utc("2026-03-29T22:00:00Z")) {
		t.Fatalf("2026-03-29: got %+v", days[1])
	}
	days = Days(time.Date(2026, 10, 25, 0, 0, 0, 0, prague), time.Date(2026, 10, 25, 0, 0, 0, 0, prague), prague)
	if len(days) != 1 || days[0].End.Sub(days[0].Start) != 25*time.Hour || !days[0].Start.Equal(utc("2026-10-24T22:00:00Z")) {
		t.Fatalf("October: got %+v", days)
	}
	// A widget online all of the 25-hour day counts 25 hours.
	spans := Spans(wOnline, nil, days[0].Start, days[0].End)
	if got := SumWidget(spans, days[0].Start, days[0].End); got.Inside != 25*time.Hour || got.Online != 25*time.Hour || got.LongestGap != 0 {
		t.Fatalf("got %+v", got)
	}
}

// An overnight schedule, 22:00-06:00 (UTC here), open across midnight: each
// day counts its own parts, 00:00-06:00 and 22:00-24:00.
func TestSumWidgetOvernight(t *testing.T) {
	changes := []Step[Widget]{
		{utc("2026-12-01T06:00:00Z"), wOutside},
		{utc("2026-12-01T22:00:00Z"), wNone},   // opens, nobody there
		{utc("2026-12-01T22:30:00Z"), wOnline}, // 30 min gap
		{utc("2026-12-02T01:00:00Z"), wBusy},   // gap 01:00-02:00 ...
		{utc("2026-12-02T01:20:00Z"), wNone},   // ... busy then nobody: one stretch
		{utc("2026-12-02T02:00:00Z"), wOnline},
		{utc("2026-12-02T05:00:00Z"), wNone}, // gap 05:00-06:00, ended by closing
		{utc("2026-12-02T06:00:00Z"), wOutside},
		{utc("2026-12-02T22:00:00Z"), wNone}, // open with nobody till the end of the range
	}
	from, to := utc("2026-12-01T00:00:00Z"), utc("2026-12-03T00:00:00Z")
	spans := Spans(wOnline, changes, from, to)
	day1 := SumWidget(spans, from, utc("2026-12-02T00:00:00Z"))
	// 00:00-06:00 online, 22:00-22:30 nobody, 22:30-24:00 online.
	if want := (WidgetTotals{Inside: 8 * time.Hour, Online: 7*time.Hour + 30*time.Minute, LongestGap: 30 * time.Minute, LongestGapFrom: utc("2026-12-01T22:00:00Z")}); day1 != want {
		t.Fatalf("day 1: got %+v, want %+v", day1, want)
	}
	if c, ok := day1.Coverage(); !ok || c != 7.5/8 {
		t.Fatalf("day 1 coverage %v %v", c, ok)
	}
	day2 := SumWidget(spans, utc("2026-12-02T00:00:00Z"), to)
	// 00:00-01:00 online, 01:00-02:00 gap, 02:00-05:00 online, 05:00-06:00
	// gap, 22:00-24:00 gap (cut at the day's end).
	if want := (WidgetTotals{Inside: 8 * time.Hour, Online: 4 * time.Hour, LongestGap: 2 * time.Hour, LongestGapFrom: utc("2026-12-02T22:00:00Z")}); day2 != want {
		t.Fatalf("day 2: got %+v, want %+v", day2, want)
	}
	closed := SumWidget(Spans(wOutside, nil, from, to), from, to)
	if _, ok := closed.Coverage(); ok || closed.Inside != 0 || closed.LongestGap != 0 {
		t.Fatalf("closed all day: got %+v", closed)
	}
}

func TestMemberGroups(t *testing.T) {
	s := NewSite()
	s.SetAgent("alice", Offline, []string{"sales", "support"})
	s.SetAgent("bob", Online, []string{"sales"})
	s.SetAgent("dave", Online, nil)
	if got := s.MemberGroups(); !slices.Equal(got, []string{"sales", "support"}) {
		t.Fatalf("got %v", got)
	}
	if got := NewSite().MemberGroups(); len(got) != 0 {
		t.Fatalf("empty site: got %v", got)
	}
}
