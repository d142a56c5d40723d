package presence

import (
	"testing"
	"time"
)

var idleBusy = Settings{Idle: &IdleSettings{After: "20m", Status: Busy}}

// TestIdleAtDeadline: the rule applies to an agent online by a record
// older than the deadline and not active since, and to nobody else; each
// case differs from the first in one thing.
func TestIdleAtDeadline(t *testing.T) {
	const deadline = 100
	applies := IdleCheck{Exists: true, Status: Online, Rev: 99}
	tests := []struct {
		name     string
		settings Settings
		c        IdleCheck
		want     Status // "" when the rule does not apply
	}{
		{"online before the deadline", idleBusy, applies, Busy},
		{"idle status offline", Settings{Idle: &IdleSettings{After: "20m", Status: Offline}}, applies, Offline},
		{"rule off", Settings{}, applies, ""},
		{"active since", idleBusy, IdleCheck{Active: true, Exists: true, Status: Online, Rev: 99}, ""},
		{"no record", idleBusy, IdleCheck{Status: Online, Rev: 99}, ""},
		{"record written after the deadline", idleBusy, IdleCheck{Exists: true, Status: Online, Rev: 101}, ""},
		{"busy", idleBusy, IdleCheck{Exists: true, Status: Busy, Rev: 99}, ""},
		{"offline", idleBusy, IdleCheck{Exists: true, Status: Offline, Rev: 99}, ""},
	}
	for _, tt := range tests {
		got, ok := tt.settings.IdleAtDeadline(tt.c, deadline)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.want != "")
		}
	}
}

// TestIdleClockNeeded: a clock is started for an online agent without one
// while the rule is on.
func TestIdleClockNeeded(t *testing.T) {
	running := IdleClock{Start: time.Unix(0, 0), Running: true}
	tests := []struct {
		name     string
		settings Settings
		status   Status
		clock    IdleClock
		want     bool
	}{
		{"online without a clock", idleBusy, Online, IdleClock{}, true},
		{"online whose clock ran out", idleBusy, Online, IdleClock{Start: time.Unix(0, 0)}, true},
		{"online with a clock", idleBusy, Online, running, false},
		{"busy", idleBusy, Busy, IdleClock{}, false},
		{"offline", idleBusy, Offline, IdleClock{}, false},
		{"rule off", Settings{}, Online, IdleClock{}, false},
	}
	for _, tt := range tests {
		if got := tt.settings.IdleClockNeeded(tt.status, tt.clock); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestActivityWriteDue: with after 20m, activity is written at most once
// per 5m of its writer, and not while a clock started less than 5m ago
// runs.
func TestActivityWriteDue(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name     string
		settings Settings
		clock    IdleClock
		written  time.Time
		want     bool
	}{
		{"first activity", idleBusy, IdleClock{}, time.Time{}, true},
		{"clock started 5m ago", idleBusy, IdleClock{Start: ago(5 * time.Minute), Running: true}, ago(5 * time.Minute), true},
		{"clock started under 5m ago", idleBusy, IdleClock{Start: ago(5*time.Minute - time.Second), Running: true}, ago(time.Hour), false},
		{"clock ran out, started a moment ago", idleBusy, IdleClock{Start: ago(time.Second)}, ago(time.Hour), true},
		{"written under 5m ago, clock old", idleBusy, IdleClock{Start: ago(time.Hour), Running: true}, ago(5*time.Minute - time.Second), false},
		{"written under 5m ago, no clock", idleBusy, IdleClock{}, ago(time.Second), false},
		{"rule off", Settings{}, IdleClock{}, time.Time{}, false},
	}
	for _, tt := range tests {
		if got := tt.settings.ActivityWriteDue(now, tt.clock, tt.written); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestActivityRestores: activity brings back only an agent the idle rule
// set away.
func TestActivityRestores(t *testing.T) {
	tests := []struct {
		status Status
		byIdle bool
		want   bool
	}{
		{Busy, true, true},
		{Offline, true, true},
		{Online, true, false},
		{Busy, false, false},
		{Offline, false, false},
	}
	for _, tt := range tests {
		if got := ActivityRestores(tt.status, tt.byIdle); got != tt.want {
			t.Errorf("ActivityRestores(%s, by idle %v) = %v, want %v", tt.status, tt.byIdle, got, tt.want)
		}
	}
}
