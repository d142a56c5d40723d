package presence

import "time"

// Sign-off at closing time (Settings.SignOffAtClose): which agents a close
// of working hours sets offline, and which closes a view that (re)loads
// catches up on because nobody carried out their sign-off. The boundaries'
// timers and the writes are the hub's; these functions decide.

// SignOffCatchUp is how far back a catch-up looks for a close whose
// sign-off nobody carried out: a week and a day, so that a close of every
// weekly schedule is in reach.
const SignOffCatchUp = 8 * 24 * time.Hour

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

// ClosingSignOffs lists the agents to sign off at boundary, a boundary of
// hoursGroup's own working hours: those SignOffAt lists, if the site signs
// off at close and the hours close there; nobody at an opening.
func (s *Site) ClosingSignOffs(settings Settings, hoursGroup string, boundary time.Time) []string {
	if !settings.SignOffAtClose {
		return nil
	}
	sched, ok := s.Hours(hoursGroup)
	if !ok {
		return nil
	}
	if open, _ := sched.OpenAt(boundary); open {
		return nil
	}
	return s.SignOffAt(hoursGroup, boundary)
}

// SignOffApplies reports whether the sign-off of a close sets an agent
// offline at the close at closedAt, by their status record as it is when
// written: online or busy, by a record written before the close. A status chosen after the close
// is kept, and a sign-off tried again finds its own write newer.
func SignOffApplies(status Status, writtenAt, closedAt time.Time) bool {
	return (status == Online || status == Busy) && writtenAt.Before(closedAt)
}

// MissedSignOff is a close of HoursGroup's hours whose sign-off of Agents
// nobody carried out.
type MissedSignOff struct {
	HoursGroup string
	Close      time.Time
	Agents     []string
}

// StoredAt says when the records that a catch-up of sign-offs weighs were
// written.
type StoredAt struct {
	Settings time.Time            // the site's settings
	Hours    map[string]time.Time // each schedule, by group ("" for the site's)
	// Status returns when an agent's status record was written; zero for
	// an agent without one.
	Status func(agent string) time.Time
}

// MissedSignOffs lists, for each schedule of a site that signs off at
// close, the agents its last close within SignOffCatchUp before now should
// have signed off and did not: those SignOffAt lists for that close, by
// records written before it (SignOffApplies). Only a close after the
// settings and the schedule were stored counts, so a view that (re)loads
// does what the running ones did, never more: sign_off_at_close turned on
// after a close leaves that close alone.
func (s *Site) MissedSignOffs(settings Settings, stored StoredAt, now time.Time) []MissedSignOff {
	if !settings.SignOffAtClose {
		return nil
	}
	var out []MissedSignOff
	for _, group := range s.HoursGroups() {
		sched, _ := s.Hours(group)
		last := sched.LastClose(now, SignOffCatchUp)
		if last.IsZero() || !stored.Settings.Before(last) || !stored.Hours[group].Before(last) {
			continue
		}
		var agents []string
		for _, id := range s.SignOffAt(group, last) {
			a, _ := s.Agent(id)
			if SignOffApplies(a.Status, stored.Status(id), last) {
				agents = append(agents, id)
			}
		}
		if len(agents) > 0 {
			out = append(out, MissedSignOff{HoursGroup: group, Close: last, Agents: agents})
		}
	}
	return out
}
