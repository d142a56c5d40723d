package presence

import "time"

// Sign-off at closing time: which agents a close of working hours sets
// offline, for a site whose settings say sign_off_at_close.

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
