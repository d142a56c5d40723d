package presence

import (
	"iter"
	"slices"
	"time"
)

// Evaluating a compiled Schedule: which instants its wall times stand for,
// and when it is open.

// lookAheadDays bounds how far past t (or the last exception) OpenAt looks.
const lookAheadDays = 400

// intervalsOn returns the intervals that start on day.
func (c *compiled) intervalsOn(day int64) []span {
	if spans, ok := c.exc[day]; ok {
		return spans
	}
	return c.weekly[weekdayOf(day)]
}

// weekShape tells whether the weekly intervals are empty, cover the whole
// week (wrapping from Sunday to Monday), or neither.
func weekShape(weekly *[7][]span) shape {
	const week = 7 * minutesPerDay
	var ivs [][2]int
	for wd, spans := range weekly {
		for _, s := range spans {
			start := ((wd+6)%7)*minutesPerDay + s.from // Monday = 0
			ivs = append(ivs, [2]int{start, start + s.to - s.from})
		}
	}
	if len(ivs) == 0 {
		return alwaysClosed
	}
	// Unroll the wrap: an interval past the week's end also covers the
	// week's start.
	for _, iv := range ivs {
		if iv[1] > week {
			ivs = append(ivs, [2]int{0, iv[1] - week})
		}
	}
	slices.SortFunc(ivs, func(a, b [2]int) int { return a[0] - b[0] })
	covered := 0
	for _, iv := range ivs {
		if iv[0] > covered {
			return varying
		}
		covered = max(covered, iv[1])
	}
	if covered >= week {
		return alwaysOpen
	}
	return varying
}

// resolve returns the instant wall time minute (which may exceed 1440) on
// day stands for: the first instant at which the zone's clock shows it or
// later (see the rules above).
func (c *compiled) resolve(day int64, minute int) time.Time {
	base := time.Unix(day*86400+int64(minute)*60, 0).UTC() // the wall time, written in UTC
	y, mo, d := base.Date()
	h, mi, _ := base.Clock()
	t := time.Date(y, mo, d, h, mi, 0, 0, c.loc)
	w := wallClock(t)
	switch {
	case w.Equal(base):
		// The wall time exists. In a fall-back overlap time.Date may have
		// picked the second occurrence: look in the zone period before.
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			_, off := start.Add(-time.Nanosecond).Zone()
			first := base.Add(-time.Duration(off) * time.Second).In(c.loc)
			if first.Before(start) && wallClock(first).Equal(base) {
				return first
			}
		}
		return t
	case w.After(base):
		// In a gap, and time.Date went past it: the gap ends where t's
		// zone period starts.
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			return start
		}
	default:
		// In a gap, and time.Date stayed before it.
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}

// wallClock returns t's wall clock in its location, written in UTC.
func wallClock(t time.Time) time.Time {
	_, off := t.Zone()
	return time.Unix(t.Unix()+int64(off), int64(t.Nanosecond())).UTC()
}

// run is a stretch of open time, [start, end), or [start, forever) when
// endless.
type run struct {
	start, end time.Time
	endless    bool
}

// runs yields the open intervals of the days from first on, in order of
// start, and sets *capped when it stops at the look-ahead limit rather than
// because nothing can follow.
func (c *compiled) runs(first int64, capped *bool) iter.Seq[run] {
	return func(yield func(run) bool) {
		limit := first + lookAheadDays
		if n := len(c.excDays); n > 0 {
			limit = max(limit, c.excDays[n-1]+lookAheadDays)
		}
		for day := first; ; day++ {
			if day > limit {
				*capped = true
				return
			}
			if _, ok := c.exc[day]; !ok && c.shape != varying {
				// A plain day of a constant week: skip to the day before
				// the next exception (its spill may reach the exception).
				i, _ := slices.BinarySearch(c.excDays, day)
				switch {
				case c.shape == alwaysClosed && i == len(c.excDays):
					return
				case c.shape == alwaysClosed:
					day = c.excDays[i]
				case i == len(c.excDays):
					yield(run{start: c.resolve(day, 0), endless: true})
					return
				case c.excDays[i] > day+1:
					if !yield(run{start: c.resolve(day, 0), end: c.resolve(c.excDays[i]-1, 0)}) {
						return
					}
					day = c.excDays[i] - 1
				}
			}
			for _, s := range c.intervalsOn(day) {
				if !yield(run{start: c.resolve(day, s.from), end: c.resolve(day, s.to)}) {
					return
				}
			}
		}
	}
}

func (c *compiled) openAt(t time.Time) (bool, time.Time) {
	t = t.Round(0) // drop any monotonic reading
	y, m, d := t.In(c.loc).Date()
	var (
		cur    run
		have   bool
		capped bool
	)
	// Start a day early for the previous day's spill.
	for r := range c.runs(civilDay(y, m, d)-1, &capped) {
		if !r.endless && !r.end.After(r.start) {
			continue // wholly inside a spring-forward gap
		}
		if have && (cur.endless || !r.start.After(cur.end)) {
			// Touches or overlaps the current run: join.
			if r.endless {
				cur.endless = true
			} else if !cur.endless && r.end.After(cur.end) {
				cur.end = r.end
			}
		} else {
			// cur, if any, is complete: nothing later starts before r.
			if have && t.Before(cur.end) {
				return true, cur.end // t >= cur.start, see below
			}
			if t.Before(r.start) {
				return false, r.start
			}
			cur, have = r, true
		}
		if cur.endless {
			return true, time.Time{}
		}
	}
	if have && t.Before(cur.end) {
		if capped {
			return true, time.Time{}
		}
		return true, cur.end
	}
	return false, time.Time{}
}
