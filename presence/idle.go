package presence

import "time"

// The idle rule (Settings.Idle) and activity: when an online agent none of
// whose devices showed activity for the rule's after gets the idle status,
// and when activity brings them back. The deadline is kept outside this
// package (the hub keeps it as the TTL of a key in NATS); these functions
// decide from what was stored.

// IdleClock is an agent's idle clock as last seen: started by the activity
// at Start, and Running until the idle deadline passes.
type IdleClock struct {
	Start   time.Time
	Running bool
}

// IdleCheck is what the idle rule reads at an agent's idle deadline.
type IdleCheck struct {
	// Active reports activity since the deadline: a new clock runs.
	Active bool
	// Exists reports that the agent has a status record; Status is its
	// status and Rev the order of its write among all writes, in which
	// the deadline has its place too.
	Exists bool
	Status Status
	Rev    uint64
}

// IdleAtDeadline returns the status the idle rule sets at an agent's idle
// deadline, the deadline-th write, and whether it sets one. It does for an
// agent online by a record written before the deadline who was not active
// since, while the rule is on. A record written after the deadline (the
// rule applied already, activity bringing the agent back, a status chosen
// by hand) is left alone, so that whoever comes late to the deadline does
// not apply the rule to it.
func (s Settings) IdleAtDeadline(c IdleCheck, deadline uint64) (Status, bool) {
	if s.IdleAfter() == 0 || c.Active || !c.Exists || c.Rev > deadline || c.Status != Online {
		return "", false
	}
	return s.Idle.Status, true
}

// IdleClockNeeded reports whether an agent's idle clock must be started
// although no activity came: the rule is on, the agent online, and no
// clock runs. That is so after the rule is turned on (the clock starts
// then, not at the agent's last status change) and after a clock ran out
// while nobody watched it.
func (s Settings) IdleClockNeeded(status Status, clock IdleClock) bool {
	return s.IdleAfter() > 0 && status == Online && !clock.Running
}

// ActivityWriteDue reports whether activity at now is to be written,
// restarting the agent's idle clock. While the rule is on it is, at most
// once per after/4 of its writer (written is the writer's last write), so
// that a burst of activity writes once: when no clock runs, or the one
// that runs started after/4 or more before now.
func (s Settings) ActivityWriteDue(now time.Time, clock IdleClock, written time.Time) bool {
	after := s.IdleAfter()
	if after == 0 || now.Sub(written) < after/4 {
		return false
	}
	return !clock.Running || now.Sub(clock.Start) >= after/4
}

// ActivityRestores reports whether activity brings an agent back online:
// the idle rule set their status (byIdle) and it is not online. A status
// chosen by hand, by an admin or at closing time is left alone.
func ActivityRestores(status Status, byIdle bool) bool {
	return byIdle && status != Online
}
