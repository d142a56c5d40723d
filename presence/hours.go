package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"
	_ "time/tzdata" // zones work without system tz files

	"github.com/presencehub/presencehub/internal/strictjson"
)

// Schedule is a working-hours schedule for a site or a group; it is also
// the admin API's body. Outside its hours the widget shows offline with
// ReasonOutsideHours, whatever the agents do (see ApplyHours). Nothing here
// holds a timer: OpenAt reports the next instant the state changes, and the
// hub arms a timer for it.
//
// The rules:
//
//   - Wall times are in the schedule's zone. An interval runs from "from"
//     (inclusive) to "to" (exclusive); to < from means it ends the next day,
//     and "to": "24:00" is the end of the day (the next day's 00:00), as is
//     "to": "00:00". An interval is never empty and lasts at most 24 hours
//     of wall time.
//   - An interval belongs to the day it starts on, overnight part included.
//     An exception replaces its calendar day's weekly intervals, overnight
//     parts and all: a Friday 22:00-06:00 shift still runs until Saturday
//     06:00 when Saturday has a closed exception, and does not run at all
//     when Friday has one.
//   - Touching intervals (09:00-12:00 and 12:00-17:00, or Friday 20:00-24:00
//     and Saturday 00:00-02:00) join: the state does not change where they
//     meet. Validate rejects overlapping ones.
//   - Daylight saving time: a wall time stands for the first instant at
//     which the zone's clock shows it or a later time. So:
//   - A wall time skipped by a spring-forward gap stands for the first
//     instant after the gap: Europe/Prague skips 02:00-03:00 on 2026-03-29,
//     so 02:30 that day means 03:00 CEST, for "from" and "to" alike. An
//     interval wholly inside the gap is empty that day and does not open; a
//     closed stretch wholly inside it vanishes and its neighbours join.
//   - A wall time repeated by a fall-back overlap stands for its first
//     occurrence, for "from" and "to" alike: Prague repeats 02:00-03:00 on
//     2026-10-25, so 02:30 that day means 02:30 CEST (00:30 UTC), not
//     02:30 CET. An interval 01:00-03:00 that day lasts three real hours;
//     one ending at 02:30 ends before the repeated hour. In zones that
//     change at midnight, a day starts at its first 00:00.
//
// Go's time.Date alone does not give this: in a gap it moves Prague's 02:30
// to 03:30 but New York's 02:30 to 01:30, and in an overlap it picks
// Prague's second 02:30 but New York's first 01:30.
//
// Call Validate (or use ParseSchedule) before relying on a Schedule. It has
// no hidden state, so one that is not being modified is safe for
// concurrent use.
type Schedule struct {
	// Timezone is an IANA zone name such as "Europe/Prague".
	Timezone string `json:"timezone"`
	// Weekly maps a lower-case English weekday name ("monday") to that
	// day's intervals. A missing day is closed.
	Weekly map[string][]Interval `json:"weekly,omitempty"`
	// Exceptions replace the weekly intervals of single calendar days.
	Exceptions []Exception `json:"exceptions,omitempty"`
}

// Interval is a stretch of open hours: wall times "HH:MM" from 00:00 to
// 23:59, and "24:00" as To for the end of the day.
type Interval struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Exception replaces the weekly intervals of one calendar day: either
// Closed, or open during Hours.
type Exception struct {
	Date   string     `json:"date"` // YYYY-MM-DD in the schedule's zone
	Closed bool       `json:"closed,omitempty"`
	Hours  []Interval `json:"hours,omitempty"`
}

// ParseSchedule decodes a JSON schedule strictly (unknown fields, keys in
// another case than the field's, duplicate keys and trailing data are
// errors) and validates it.
func ParseSchedule(data []byte) (*Schedule, error) {
	// Decode in steps so that a type error names the weekday or the
	// exception it is in: encoding/json leaves out map keys and indexes.
	var raw struct {
		Timezone   string                     `json:"timezone"`
		Weekly     map[string]json.RawMessage `json:"weekly"`
		Exceptions []json.RawMessage          `json:"exceptions"`
	}
	if err := strictjson.Decode(data, &raw); err != nil {
		return nil, fmt.Errorf("invalid schedule JSON: %w", err)
	}
	s := Schedule{Timezone: raw.Timezone}
	if raw.Weekly != nil {
		s.Weekly = make(map[string][]Interval, len(raw.Weekly))
	}
	for day, msg := range raw.Weekly {
		var ivs []Interval
		if err := strictjson.Decode(msg, &ivs); err != nil {
			return nil, fmt.Errorf("invalid schedule JSON: weekly.%s: %w", truncate(day, 70), err)
		}
		s.Weekly[day] = ivs
	}
	if raw.Exceptions != nil {
		s.Exceptions = make([]Exception, len(raw.Exceptions))
	}
	for i, msg := range raw.Exceptions {
		if err := strictjson.Decode(msg, &s.Exceptions[i]); err != nil {
			return nil, fmt.Errorf("invalid schedule JSON: exceptions[%d]: %w", i, err)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate reports the first problem with s, naming the bad field, as in
// `weekly.monday[1].from: invalid time "25:00" (want HH:MM, 00:00 to 23:59)`.
func (s *Schedule) Validate() error {
	_, err := s.compile()
	return err
}

// OpenAt reports whether s's hours are open at instant t, and the next
// instant after t at which that changes (closed to open, or open to
// closed), in the schedule's zone. The boundary instant itself has the new
// state. next is zero when the state never changes again. OpenAt looks
// about 400 days beyond t and the last exception date; a schedule whose
// weekly hours are constant (empty, or open around the clock) is answered
// exactly however far its exceptions lie.
//
// An invalid schedule (one Validate rejects) restricts nothing: OpenAt
// reports open with zero next, as if there were no schedule.
func (s *Schedule) OpenAt(t time.Time) (open bool, next time.Time) {
	c, err := s.compile()
	if err != nil {
		return true, time.Time{}
	}
	return c.openAt(t)
}

// LastClose returns the latest instant in (t-within, t] at which the
// schedule closed (went from open to closed), or zero if it did not close
// then. It answers which closing time a sign-off that nobody carried out
// belonged to.
func (s *Schedule) LastClose(t time.Time, within time.Duration) time.Time {
	var last time.Time
	open, next := s.OpenAt(t.Add(-within))
	for !next.IsZero() && !next.After(t) {
		if open {
			last = next
		}
		open, next = s.OpenAt(next)
	}
	return last
}

// EffectiveSchedule returns the schedule that governs a widget: the group's
// if it has one, else the site's (possibly nil: no working hours).
func EffectiveSchedule(site, group *Schedule) *Schedule {
	if group != nil {
		return group
	}
	return site
}

// ApplyHours returns the widget shown at now under schedule s: offline
// because of the hours when they are closed, w unchanged when open. next is
// when that may change (see OpenAt); a nil s leaves w unchanged with zero
// next.
func ApplyHours(w Widget, s *Schedule, now time.Time) (Widget, time.Time) {
	if s == nil {
		return w, time.Time{}
	}
	open, next := s.OpenAt(now)
	if !open {
		return Widget{Status: Offline, Reason: ReasonOutsideHours}, next
	}
	return w, next
}

// lookAheadDays bounds how far past t (or the last exception) OpenAt looks.
const lookAheadDays = 400

const minutesPerDay = 24 * 60

var weekdayNames = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// weekOrder is the order days are checked and reported in.
var weekOrder = [7]time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

// span is a parsed Interval: minutes from the start of its day, from in
// [0, 1440), from < to <= from+1440; to > 1440 spills into the next day.
type span struct {
	from, to int
	idx      int    // index in its list
	path     string // e.g. weekly.monday[1], for errors
	text     string // e.g. 22:00-06:00, for errors
}

type shape int

const (
	varying      shape = iota
	alwaysClosed       // no weekly intervals at all
	alwaysOpen         // the weekly intervals cover the whole week
)

// compiled is a validated schedule ready for OpenAt.
type compiled struct {
	loc     *time.Location
	weekly  [7][]span // by time.Weekday, sorted by from
	exc     map[int64][]span
	excDays []int64 // sorted
	shape   shape
}

// locations caches loaded zones: time.LoadLocation reads the tz database
// each time. Only zones that loaded are stored, so it stays small.
var locations sync.Map // string -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

func (s *Schedule) compile() (*compiled, error) {
	if s == nil {
		return nil, errors.New("no schedule")
	}
	c := &compiled{}
	switch s.Timezone {
	case "":
		return nil, errors.New(`timezone: required, an IANA zone name such as "Europe/Prague"`)
	case "Local":
		return nil, errors.New(`timezone: "Local" is not allowed, name an IANA zone such as "Europe/Prague"`)
	}
	loc, err := loadLocation(s.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone: unknown time zone %q", truncate(s.Timezone, 70))
	}
	c.loc = loc

	var unknown []string
	for k := range s.Weekly {
		if !slices.Contains(weekdayNames[:], k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("weekly: unknown weekday %q (want monday, tuesday, wednesday, thursday, friday, saturday or sunday)", truncate(unknown[0], 70))
	}
	for _, wd := range weekOrder {
		name := weekdayNames[wd]
		spans, err := parseSpans("weekly."+name, s.Weekly[name])
		if err != nil {
			return nil, err
		}
		c.weekly[wd] = spans
	}
	for _, wd := range weekOrder {
		prev := (wd + 6) % 7
		if err := checkSpill(c.weekly[prev], c.weekly[wd], " into "+weekdayNames[wd]); err != nil {
			return nil, err
		}
	}

	c.exc = make(map[int64][]span, len(s.Exceptions))
	where := make(map[int64]int, len(s.Exceptions))
	for i, e := range s.Exceptions {
		path := fmt.Sprintf("exceptions[%d]", i)
		day, err := parseDate(e.Date)
		if err != nil {
			return nil, fmt.Errorf("%s.date: invalid date %q (want YYYY-MM-DD)", path, truncate(e.Date, 70))
		}
		if j, dup := where[day]; dup {
			return nil, fmt.Errorf("%s.date: duplicate date %q (also exceptions[%d])", path, e.Date, j)
		}
		where[day] = i
		switch {
		case e.Closed && len(e.Hours) > 0:
			return nil, fmt.Errorf("%s: both closed and hours given, want one or the other", path)
		case !e.Closed && len(e.Hours) == 0:
			return nil, fmt.Errorf(`%s: want "closed": true or non-empty "hours"`, path)
		}
		spans, err := parseSpans(path+".hours", e.Hours)
		if err != nil {
			return nil, err
		}
		c.exc[day] = spans
		c.excDays = append(c.excDays, day)
	}
	slices.Sort(c.excDays)
	// An exception's hours must not overlap the previous day's spill, nor
	// spill into the next day's intervals. Exception-to-exception pairs are
	// checked once, from the later day.
	for _, day := range c.excDays {
		if err := checkSpill(c.intervalsOn(day-1), c.exc[day], " into "+formatDay(day)); err != nil {
			return nil, err
		}
		if _, ok := c.exc[day+1]; !ok {
			if err := checkSpill(c.exc[day], c.intervalsOn(day+1), " into "+formatDay(day+1)); err != nil {
				return nil, err
			}
		}
	}
	c.shape = weekShape(&c.weekly)
	return c, nil
}

func parseSpans(path string, ivs []Interval) ([]span, error) {
	spans := make([]span, 0, len(ivs))
	for i, iv := range ivs {
		p := fmt.Sprintf("%s[%d]", path, i)
		from, ok := parseClock(iv.From, false)
		if !ok {
			return nil, fmt.Errorf("%s.from: invalid time %q (want HH:MM, 00:00 to 23:59)", p, truncate(iv.From, 70))
		}
		to, ok := parseClock(iv.To, true)
		if !ok {
			return nil, fmt.Errorf("%s.to: invalid time %q (want HH:MM, 00:00 to 24:00)", p, truncate(iv.To, 70))
		}
		if to == from {
			return nil, fmt.Errorf("%s: from and to are both %q, want a non-empty interval", p, iv.From)
		}
		if to < from {
			to += minutesPerDay // ends the next day
		}
		spans = append(spans, span{from: from, to: to, idx: i, path: p, text: iv.From + "-" + iv.To})
	}
	slices.SortStableFunc(spans, func(a, b span) int { return a.from - b.from })
	for i := 1; i < len(spans); i++ {
		if a, b := spans[i-1], spans[i]; b.from < a.to {
			if b.idx < a.idx {
				a, b = b, a // name the one listed later first
			}
			return nil, overlapError(a, b, "")
		}
	}
	return spans, nil
}

// checkSpill reports an interval of day that overlaps the part of an
// interval of the previous day that runs past midnight.
func checkSpill(prev, day []span, into string) error {
	for _, p := range prev {
		end := p.to - minutesPerDay
		if end <= 0 {
			continue
		}
		for _, d := range day {
			if d.from < end {
				return overlapError(p, d, " running past midnight"+into)
			}
		}
	}
	return nil
}

// overlapError reports that b overlaps a, naming b's field first.
func overlapError(a, b span, note string) error {
	return fmt.Errorf("%s: %s overlaps %s (%s)%s", b.path, b.text, a.path, a.text, note)
}

// parseClock parses "HH:MM" into minutes after midnight; "24:00" only when
// allow24.
func parseClock(s string, allow24 bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	d := func(c byte) int {
		if c < '0' || c > '9' {
			return -100
		}
		return int(c - '0')
	}
	h, m := d(s[0])*10+d(s[1]), d(s[3])*10+d(s[4])
	switch {
	case h < 0 || m < 0 || m > 59:
		return 0, false
	case h < 24:
		return h*60 + m, true
	case h == 24 && m == 0 && allow24:
		return minutesPerDay, true
	}
	return 0, false
}

// A day is a civil date counted in days since 1970-01-01.

func parseDate(s string) (int64, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	return civilDay(t.Date()), nil
}

func civilDay(y int, m time.Month, d int) int64 {
	u := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
	day := u / 86400
	if u%86400 < 0 {
		day--
	}
	return day
}

func formatDay(day int64) string { return time.Unix(day*86400, 0).UTC().Format(time.DateOnly) }

func weekdayOf(day int64) time.Weekday { return time.Weekday(((day % 7) + 7 + 4) % 7) } // 1970-01-01 was a Thursday

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

// SignOffAt lists, sorted, the agents to sign off when the working hours of
// hoursGroup ("" for the site's) close at t: the agents those hours govern
// (members of hoursGroup; for the site's hours, agents in no group and
// members of groups without hours of their own) whose chosen status is
// online or busy and none of whose groups' hours is open at t. An agent in
// a group whose own hours are still open keeps working.
func (s *Site) SignOffAt(hoursGroup string, t time.Time) []string {
	var out []string
	for _, a := range s.Agents() {
		if a.Status != Online && a.Status != Busy {
			continue
		}
		governed, open := false, false
		groups := a.Groups
		if len(groups) == 0 {
			groups = []string{""}
		}
		for _, g := range groups {
			sched := s.ScheduleFor(g)
			if sched == nil {
				open = true // no hours: always open
				continue
			}
			if s.GovernedBy(g, hoursGroup) {
				governed = true
			}
			if o, _ := sched.OpenAt(t); o {
				open = true
			}
		}
		if governed && !open {
			out = append(out, a.ID)
		}
	}
	return out
}
