package presence

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Compiling a Schedule: its wall times parsed and validated into spans of
// minutes per day, the form OpenAt evaluates (hours_open.go).

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
