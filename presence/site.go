package presence

import (
	"slices"
	"time"
)

// DeviceState says whether a device's session is up or only its lease is
// left, running out the grace period.
type DeviceState string

// The device states.
const (
	// Live: a session is connected and keeps the lease fresh.
	Live DeviceState = "live"
	// Lingering: the session dropped without bye; the lease runs out the grace.
	Lingering DeviceState = "grace"
	// Background: a mobile app in the background; its lease lasts the
	// site's background max, so it counts as live while the app sleeps.
	Background DeviceState = "background"
)

// Up reports whether the device counts as live: its session is connected,
// or its app is in the background.
func (s DeviceState) Up() bool { return s == Live || s == Background }

// Device is one of an agent's devices that holds a lease.
type Device struct {
	ID      string
	Kind    DeviceKind
	Since   time.Time // when the device's current run of sessions began
	Session string
	State   DeviceState
}

// Agent is one agent of a site as the rules see them.
type Agent struct {
	ID string
	// Status is the status the agent last chose; an agent with no stored
	// record yet counts as Online (signing in means being available).
	Status Status
	Groups []string
	// devices are the agent's devices, in no order: a few (the hub caps
	// them), so a slice, far smaller than a map for one or two.
	devices []Device
	// stored reports whether the agent's record exists; an agent known only
	// from device leases is kept until its last lease goes.
	stored bool
}

// Connected reports whether any device holds a lease, live or lingering.
func (a *Agent) Connected() bool { return len(a.devices) > 0 }

// Effective is the status the world sees: the chosen status while the agent
// is connected, offline otherwise.
func (a *Agent) Effective() Status {
	if !a.Connected() {
		return Offline
	}
	return a.Status
}

// Lingering reports whether the agent is inside a grace period: connected,
// but with no live session.
func (a *Agent) Lingering() bool {
	if !a.Connected() {
		return false
	}
	for _, d := range a.devices {
		if d.State.Up() {
			return false
		}
	}
	return true
}

// Device returns the agent's device with the given id.
func (a *Agent) Device(id string) (Device, bool) {
	if i := a.deviceIndex(id); i >= 0 {
		return a.devices[i], true
	}
	return Device{}, false
}

// deviceIndex returns the index of the device with id in a.devices, or -1.
func (a *Agent) deviceIndex(id string) int {
	for i := range a.devices {
		if a.devices[i].ID == id {
			return i
		}
	}
	return -1
}

// setDevice adds d or replaces the device with its id.
func (a *Agent) setDevice(d Device) {
	if i := a.deviceIndex(d.ID); i >= 0 {
		a.devices[i] = d
		return
	}
	a.devices = append(a.devices, d)
}

// removeDevice forgets the device with id; the storage goes with the last.
func (a *Agent) removeDevice(id string) {
	i := a.deviceIndex(id)
	if i < 0 {
		return
	}
	a.devices = slices.Delete(a.devices, i, i+1)
	if len(a.devices) == 0 {
		a.devices = nil
	}
}

// LiveDevices returns the devices with a live session or in the
// background, oldest first.
func (a *Agent) LiveDevices() []Device {
	var out []Device
	for _, d := range a.devices {
		if d.State.Up() {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(x, y Device) int {
		if c := x.Since.Compare(y.Since); c != 0 {
			return c
		}
		return compareStrings(x.ID, y.ID)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// liveIDs returns "id/state" of the live and background devices, sorted:
// a device going to the background changes what its agent's devices are
// told.
func (a *Agent) liveIDs() []string {
	var ids []string
	for _, d := range a.devices {
		if d.State.Up() {
			ids = append(ids, d.ID+"/"+string(d.State))
		}
	}
	slices.Sort(ids)
	return ids
}

// Change describes what one update did to one agent.
type Change struct {
	Agent                     string
	Before, After             Status // effective statuses
	BeforeGroups, AfterGroups []string
	// DevicesChanged reports that the set of live devices changed.
	DevicesChanged bool
}

// EffectiveChanged reports whether the agent's effective status changed.
func (c Change) EffectiveChanged() bool { return c.Before != c.After }

// GroupsChanged reports whether the agent's groups changed.
func (c Change) GroupsChanged() bool { return !slices.Equal(c.BeforeGroups, c.AfterGroups) }

// Touches reports whether the change can alter the widget of group ("" is
// the site-wide widget).
func (c Change) Touches(group string) bool {
	if !c.EffectiveChanged() && !c.GroupsChanged() {
		return false
	}
	if group == "" {
		return c.EffectiveChanged()
	}
	return relevant(c.BeforeGroups, group) || relevant(c.AfterGroups, group)
}

// relevant reports whether an agent in groups counts for group's widget: a
// member does, and so does an agent in no group at all.
func relevant(groups []string, group string) bool {
	return len(groups) == 0 || slices.Contains(groups, group)
}

// Widget is what a site's or group's chat window shows.
type Widget struct {
	Status Status
	Reason Reason
}

type tally struct{ online, busy int }

func (t *tally) add(s Status, n int) {
	switch s {
	case Online:
		t.online += n
	case Busy:
		t.busy += n
	}
}

// Site is the presence state of one site: its agents, their devices, its
// working hours, and running tallies that make a widget's status O(1) to
// compute. It answers the whole widget question (WidgetAt).
type Site struct {
	agents    map[string]*Agent // nil until the first agent
	all       tally
	ungrouped tally
	groups    map[string]*tally // nil until an agent in a group counts
	lingering int               // agents inside a grace period
	// hours maps a group ("" for the site) to its own working hours; nil
	// until the site has some.
	hours map[string]*Schedule
}

// NewSite returns an empty site.
func NewSite() *Site {
	return &Site{}
}

// Counts counts a site's agents by effective status.
type Counts struct {
	Online, Busy, Offline int
	// Lingering counts the agents inside a grace period.
	Lingering int
}

// Total is the number of agents counted.
func (c Counts) Total() int { return c.Online + c.Busy + c.Offline }

// Counts returns the site's agents counted by effective status, in O(1).
func (s *Site) Counts() Counts {
	return Counts{Online: s.all.online, Busy: s.all.busy, Offline: len(s.agents) - s.all.online - s.all.busy, Lingering: s.lingering}
}

// Agent returns the agent with the given id.
func (s *Site) Agent(id string) (*Agent, bool) {
	a, ok := s.agents[id]
	return a, ok
}

// Agents returns every agent of the site, sorted by id.
func (s *Site) Agents() []*Agent {
	out := make([]*Agent, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *Agent) int { return compareStrings(x.ID, y.ID) })
	return out
}

// Empty reports whether the site has no agents and no working hours left.
func (s *Site) Empty() bool { return len(s.agents) == 0 && len(s.hours) == 0 }

// SetAgent stores an agent's chosen status and groups.
func (s *Site) SetAgent(id string, status Status, groups []string) Change {
	return s.update(id, func(a *Agent) {
		a.Status = status
		a.Groups = normalizeGroups(groups)
		a.stored = true
	})
}

// RemoveAgent forgets an agent's stored record. An agent who still holds
// device leases stays, counted with the default status, until they go.
func (s *Site) RemoveAgent(id string) Change {
	return s.update(id, func(a *Agent) {
		a.Status = Online
		a.Groups = nil
		a.stored = false
	})
}

// SetDevice records a device's lease, adding or replacing it.
func (s *Site) SetDevice(agentID string, d Device) Change {
	return s.update(agentID, func(a *Agent) { a.setDevice(d) })
}

// RemoveDevice records that a device's lease is gone.
func (s *Site) RemoveDevice(agentID, deviceID string) Change {
	if _, ok := s.agents[agentID]; !ok {
		return Change{Agent: agentID, Before: Offline, After: Offline}
	}
	return s.update(agentID, func(a *Agent) { a.removeDevice(deviceID) })
}

// update applies fn to the agent, keeping the tallies right, and reports
// what changed.
func (s *Site) update(id string, fn func(*Agent)) Change {
	a, ok := s.agents[id]
	if !ok {
		if s.agents == nil {
			s.agents = make(map[string]*Agent)
		}
		a = &Agent{ID: id, Status: Online}
		s.agents[id] = a
	}
	before, beforeGroups, beforeLive := a.Effective(), a.Groups, a.liveIDs()
	s.count(a, -1)
	fn(a)
	s.count(a, +1)
	if !a.stored && !a.Connected() {
		delete(s.agents, id)
	}
	return Change{
		Agent:          id,
		Before:         before,
		After:          a.Effective(),
		BeforeGroups:   beforeGroups,
		AfterGroups:    a.Groups,
		DevicesChanged: !slices.Equal(beforeLive, a.liveIDs()),
	}
}

func (s *Site) count(a *Agent, n int) {
	if a.Lingering() {
		s.lingering += n
	}
	st := a.Effective()
	if st == Offline {
		return
	}
	s.all.add(st, n)
	if len(a.Groups) == 0 {
		s.ungrouped.add(st, n)
		return
	}
	for _, g := range a.Groups {
		t := s.groups[g]
		if t == nil {
			if s.groups == nil {
				s.groups = make(map[string]*tally)
			}
			t = &tally{}
			s.groups[g] = t
		}
		t.add(st, n)
		if *t == (tally{}) {
			delete(s.groups, g)
		}
	}
}

// WidgetAt returns what the widget of group ("" for the whole site) shows at
// now: what the agents make it, forced offline outside the working hours
// that govern it (see ScheduleFor). next is when the hours next change that
// (zero when no schedule applies or it never changes).
func (s *Site) WidgetAt(group string, now time.Time) (w Widget, next time.Time) {
	return ApplyHours(s.Widget(group), s.ScheduleFor(group), now)
}

// SetHours sets the working hours of group ("" for the site's own); a nil
// schedule removes them.
func (s *Site) SetHours(group string, sched *Schedule) {
	if sched == nil {
		delete(s.hours, group)
		return
	}
	if s.hours == nil {
		s.hours = make(map[string]*Schedule)
	}
	s.hours[group] = sched
}

// Hours returns group's own working hours ("" for the site's), if it has
// any.
func (s *Site) Hours(group string) (*Schedule, bool) {
	sched, ok := s.hours[group]
	return sched, ok
}

// HoursGroups lists the groups ("" for the site) that have their own
// working hours, sorted.
func (s *Site) HoursGroups() []string {
	out := make([]string, 0, len(s.hours))
	for g := range s.hours {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Groups lists the groups that have online or busy members or working
// hours of their own, sorted, without "" (the site): with the groups of an
// agent that changed, the widgets that a change of the agent can move.
func (s *Site) Groups() []string {
	out := make([]string, 0, len(s.groups)+len(s.hours))
	for g := range s.groups {
		out = append(out, g)
	}
	for g := range s.hours {
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// MemberGroups lists, sorted, the groups any agent of the site is in,
// whatever its status: with Groups, the widgets a change of an agent in no
// group (who counts for every group) can move.
func (s *Site) MemberGroups() []string {
	var seen map[string]bool
	for _, a := range s.agents {
		for _, g := range a.Groups {
			if seen == nil {
				seen = make(map[string]bool)
			}
			seen[g] = true
		}
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// ScheduleFor returns the working hours that govern group's widget: the
// group's own if it has them, else the site's; nil when neither has any.
// The site-wide widget ("") follows the site's own hours.
func (s *Site) ScheduleFor(group string) *Schedule {
	if group == "" {
		return s.hours[""]
	}
	return EffectiveSchedule(s.hours[""], s.hours[group])
}

// GovernedBy reports whether the widget of group follows the working hours
// of hoursGroup ("" for the site's), so that a change to those hours can
// change it: a group without hours of its own follows the site's.
func (s *Site) GovernedBy(group, hoursGroup string) bool {
	if hoursGroup == "" {
		return group == "" || s.hours[group] == nil
	}
	return group == hoursGroup
}

// OpenAt reports whether the site's own working hours are open at now and
// when that next changes; a site without hours is always open.
func (s *Site) OpenAt(now time.Time) (open bool, next time.Time) {
	sched := s.hours[""]
	if sched == nil {
		return true, time.Time{}
	}
	return sched.OpenAt(now)
}

// Widget returns the status of the widget for group ("" for the whole site)
// as the agents make it, working hours aside (see WidgetAt).
func (s *Site) Widget(group string) Widget {
	t := s.all
	if group != "" {
		t = s.ungrouped
		if g := s.groups[group]; g != nil {
			t.online += g.online
			t.busy += g.busy
		}
	}
	switch {
	case t.online > 0:
		return Widget{Status: Online, Reason: ReasonAgentsOnline}
	case t.busy > 0:
		return Widget{Status: Busy, Reason: ReasonAllBusy}
	}
	return Widget{Status: Offline, Reason: ReasonNoAgents}
}

// normalizeGroups sorts and de-duplicates groups so that equal sets compare
// equal.
func normalizeGroups(groups []string) []string {
	if len(groups) == 0 {
		return nil
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Compact(out)
}
