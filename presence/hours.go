package presence

import (
	"time"
	_ "time/tzdata" // zones work without system tz files
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
// Call Validate (protocol.ParseSchedule, which decodes one from JSON,
// does) before relying on a Schedule. It has no hidden state, so one that
// is not being modified is safe for concurrent use.
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
