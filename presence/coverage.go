package presence

import (
	"math"
	"time"
)

// Coverage, the uncovered alert (Settings.UncoveredAlert): a widget (the
// site's or a group's) that stays uncovered for the alert's delay has lost
// its coverage until it is online again. The delay is kept outside this
// package (the hub keeps it as the TTL of a key in NATS); these functions
// decide from what the widget shows and what is stored of its coverage.

// Uncovered reports whether a widget shows that nobody answers inside its
// working hours: it is not online, for a reason other than outside_hours.
func Uncovered(w Widget) bool {
	return w.Status != Online && w.Reason != ReasonOutsideHours
}

// CoverageState is what is stored of a widget's coverage.
type CoverageState struct {
	// Clock reports that its uncovered clock runs (or is being started):
	// it was found uncovered, and the alert's delay is counting.
	Clock bool
	// Lost reports that its loss is marked (or being marked).
	Lost bool
}

// CoverageAction is what a widget's coverage calls for.
type CoverageAction struct {
	// StartClock: the widget is uncovered with the alert on, and neither
	// a clock runs nor a loss is marked (a lost widget gets no new clock
	// until it is restored).
	StartClock bool
	// StopClock: a clock runs for a widget that is covered, outside its
	// hours, or whose alert is off.
	StopClock bool
	// Restore: the widget's loss is marked and it is online again.
	Restore bool
}

// CheckCoverage returns what a widget's coverage calls for now, given the
// alert's delay (0: off), what the widget shows and what is stored.
func CheckCoverage(alert time.Duration, w Widget, c CoverageState) CoverageAction {
	counting := alert > 0 && Uncovered(w)
	return CoverageAction{
		StartClock: counting && !c.Clock && !c.Lost,
		StopClock:  c.Clock && !counting,
		Restore:    c.Lost && w.Status == Online,
	}
}

// CoverageLost reports whether a widget whose uncovered clock ran out has
// lost its coverage: it is uncovered still, the alert is still on, and no
// loss is marked already.
func CoverageLost(alert time.Duration, w Widget, c CoverageState) bool {
	return alert > 0 && Uncovered(w) && !c.Lost
}

// LostFor is how long a widget was not online, in seconds rounded to the
// millisecond: from the since of its loss (when it was found uncovered) to
// its restoring.
func LostFor(since, restored time.Time) float64 {
	return math.Round(restored.Sub(since).Seconds()*1000) / 1000
}
