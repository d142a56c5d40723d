package presence

import (
	"testing"
	"time"
)

// The widgets wOnline, wBusy, wNone and wOutside are history_test.go's.

// TestUncovered: a widget is uncovered when it is not online, unless its
// hours are closed.
func TestUncovered(t *testing.T) {
	for _, tt := range []struct {
		w    Widget
		want bool
	}{
		{wOnline, false},
		{wBusy, true},
		{wNone, true},
		{wOutside, false},
	} {
		if got := Uncovered(tt.w); got != tt.want {
			t.Errorf("Uncovered(%+v) = %v, want %v", tt.w, got, tt.want)
		}
	}
}

// TestCheckCoverage: when a widget's uncovered clock starts and stops, and
// when its loss is over.
func TestCheckCoverage(t *testing.T) {
	const alert = 5 * time.Minute
	var (
		none  = CoverageState{}
		clock = CoverageState{Clock: true}
		lost  = CoverageState{Lost: true}
		both  = CoverageState{Clock: true, Lost: true}
		start = CoverageAction{StartClock: true}
		stop  = CoverageAction{StopClock: true}
		rest  = CoverageAction{Restore: true}
		idle  = CoverageAction{}
	)
	tests := []struct {
		name  string
		alert time.Duration
		w     Widget
		c     CoverageState
		want  CoverageAction
	}{
		{"busy: the clock starts", alert, wBusy, none, start},
		{"nobody there: the clock starts", alert, wNone, none, start},
		{"busy, clock running", alert, wBusy, clock, idle},
		{"busy, loss marked: no new clock", alert, wBusy, lost, idle},
		{"alert off: no clock", 0, wBusy, none, idle},
		{"online: nothing to do", alert, wOnline, none, idle},
		{"outside hours: no clock", alert, wOutside, none, idle},

		{"online again: the clock stops", alert, wOnline, clock, stop},
		{"hours closed: the clock stops", alert, wOutside, clock, stop},
		{"alert turned off: the clock stops", 0, wBusy, clock, stop},

		{"online again after a loss: restored", alert, wOnline, lost, rest},
		{"online again, clock and loss", alert, wOnline, both, CoverageAction{StopClock: true, Restore: true}},
		{"restored with the alert off", 0, wOnline, lost, rest},
		{"hours closed after a loss: not restored", alert, wOutside, lost, idle},
		{"busy after a loss: not restored", 0, wBusy, lost, idle},
	}
	for _, tt := range tests {
		if got := CheckCoverage(tt.alert, tt.w, tt.c); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestCoverageLost: a clock that ran out is a loss only for a widget still
// uncovered, with the alert on, not lost already.
func TestCoverageLost(t *testing.T) {
	const alert = time.Minute
	tests := []struct {
		name  string
		alert time.Duration
		w     Widget
		c     CoverageState
		want  bool
	}{
		{"still busy", alert, wBusy, CoverageState{}, true},
		{"still nobody", alert, wNone, CoverageState{Clock: true}, true},
		{"online meanwhile", alert, wOnline, CoverageState{}, false},
		{"hours closed meanwhile", alert, wOutside, CoverageState{}, false},
		{"alert turned off meanwhile", 0, wBusy, CoverageState{}, false},
		{"lost already", alert, wBusy, CoverageState{Lost: true}, false},
	}
	for _, tt := range tests {
		if got := CoverageLost(tt.alert, tt.w, tt.c); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestLostFor: seconds, to the millisecond.
func TestLostFor(t *testing.T) {
	since := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want float64
	}{
		{5 * time.Minute, 300},
		{1500 * time.Millisecond, 1.5},
		{1234567 * time.Microsecond, 1.235},
		{0, 0},
	} {
		if got := LostFor(since, since.Add(tt.d)); got != tt.want {
			t.Errorf("LostFor(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
