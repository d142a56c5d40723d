package presence

import (
	"time"
)

// History: the pure computations behind the timeline and the availability
// report (docs/protocol.md#history). A history is a step function: a value
// before the first change, then a value from each change on. Nothing here
// knows where the changes come from (package hub/history reads them from
// the event stream).

// AgentState is what an agent's history records: its chosen status and its
// effective status (what widgets counted).
type AgentState struct {
	Status    Status
	Effective Status
}

// Step is a value taking effect at an instant.
type Step[T comparable] struct {
	At    time.Time
	Value T
}

// Span is a value holding over [From, To).
type Span[T comparable] struct {
	From, To time.Time
	Value    T
}

// Spans returns the value over [from, to) as spans with no gap and no
// overlap, ordered, each at least a nanosecond long, adjacent spans with
// different values: initial holds until the first change, each change from
// its instant on. changes must be ordered by instant; of changes at the
// same instant the last counts. It returns nil when from is not before to.
func Spans[T comparable](initial T, changes []Step[T], from, to time.Time) []Span[T] {
	if !from.Before(to) {
		return nil
	}
	cur := initial
	i := 0
	for ; i < len(changes) && !changes[i].At.After(from); i++ {
		cur = changes[i].Value
	}
	out := []Span[T]{{From: from, Value: cur}}
	for ; i < len(changes) && changes[i].At.Before(to); i++ {
		c := changes[i]
		last := &out[len(out)-1]
		if c.Value == last.Value {
			continue
		}
		if c.At.Equal(last.From) { // a later change at the same instant
			last.Value = c.Value
			if n := len(out); n > 1 && out[n-2].Value == c.Value {
				out = out[:n-1]
			}
			continue
		}
		last.To = c.At
		out = append(out, Span[T]{From: c.At, Value: c.Value})
	}
	out[len(out)-1].To = to
	return out
}

// Clip returns the parts of spans inside [from, to), in order.
func Clip[T comparable](spans []Span[T], from, to time.Time) []Span[T] {
	var out []Span[T]
	for _, s := range spans {
		if !s.To.After(from) || !s.From.Before(to) {
			continue
		}
		if s.From.Before(from) {
			s.From = from
		}
		if s.To.After(to) {
			s.To = to
		}
		out = append(out, s)
	}
	return out
}

// Day is one calendar day of a zone: [Start, End), 23 or 25 hours long on
// the days daylight saving time begins or ends.
type Day struct {
	Date       string // YYYY-MM-DD
	Start, End time.Time
}

// Days returns the calendar days of loc from the date of first to the date
// of last, both included; each day starts at its midnight as time.Date
// gives it, never 24 hours after the previous one.
func Days(first, last time.Time, loc *time.Location) []Day {
	y, m, d := first.Date()
	ly, lm, ld := last.Date()
	end := time.Date(ly, lm, ld, 0, 0, 0, 0, time.UTC)
	var out []Day
	for i := 0; ; i++ {
		civil := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC)
		if civil.After(end) {
			return out
		}
		start := time.Date(y, m, d+i, 0, 0, 0, 0, loc)
		next := time.Date(y, m, d+i+1, 0, 0, 0, 0, loc)
		out = append(out, Day{Date: civil.Format(time.DateOnly), Start: start, End: next})
	}
}

// AgentTotals is how long an agent was effectively online, busy and
// offline.
type AgentTotals struct {
	Online, Busy, Offline time.Duration
}

// SumAgent adds up the effective statuses of spans inside [from, to).
func SumAgent(spans []Span[AgentState], from, to time.Time) AgentTotals {
	var t AgentTotals
	for _, s := range Clip(spans, from, to) {
		d := s.To.Sub(s.From)
		switch s.Value.Effective {
		case Online:
			t.Online += d
		case Busy:
			t.Busy += d
		default:
			t.Offline += d
		}
	}
	return t
}

// WidgetTotals is what a widget did inside working hours: Inside is the
// time its reason was not outside_hours, Online the part of that it showed
// online, and LongestGap the longest contiguous stretch inside hours it did
// not show online, starting at LongestGapFrom (zero when there was none).
type WidgetTotals struct {
	Inside, Online time.Duration
	LongestGap     time.Duration
	LongestGapFrom time.Time
}

// Coverage is Online over Inside; ok is false when Inside is zero.
func (t WidgetTotals) Coverage() (coverage float64, ok bool) {
	if t.Inside <= 0 {
		return 0, false
	}
	return float64(t.Online) / float64(t.Inside), true
}

// SumWidget adds up spans of a widget inside [from, to). A stretch without
// online is ended by online and by outside hours, and cut at from and to.
func SumWidget(spans []Span[Widget], from, to time.Time) WidgetTotals {
	var t WidgetTotals
	var gapFrom time.Time
	var gap time.Duration
	endGap := func() {
		if gap > t.LongestGap {
			t.LongestGap, t.LongestGapFrom = gap, gapFrom
		}
		gap = 0
	}
	for _, s := range Clip(spans, from, to) {
		d := s.To.Sub(s.From)
		switch {
		case s.Value.Reason == ReasonOutsideHours:
			endGap()
		case s.Value.Status == Online:
			t.Inside += d
			t.Online += d
			endGap()
		default:
			t.Inside += d
			if gap == 0 {
				gapFrom = s.From
			}
			gap += d
		}
	}
	endGap()
	return t
}
