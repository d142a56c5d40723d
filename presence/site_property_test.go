package presence

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// model is an independent, deliberately naive statement of the rules, used
// to check Site after random operations.
type model struct {
	agents map[string]*modelAgent
}

type modelAgent struct {
	stored  bool
	status  Status
	groups  map[string]bool
	devices map[string]DeviceState
}

func (m *model) get(id string) *modelAgent {
	a := m.agents[id]
	if a == nil {
		a = &modelAgent{status: Online, groups: map[string]bool{}, devices: map[string]DeviceState{}}
		m.agents[id] = a
	}
	return a
}

func (m *model) gc(id string) {
	if a := m.agents[id]; a != nil && !a.stored && len(a.devices) == 0 {
		delete(m.agents, id)
	}
}

func (m *model) effective(id string) Status {
	a := m.agents[id]
	if a == nil || len(a.devices) == 0 {
		return Offline
	}
	return a.status
}

func (m *model) groupsOf(id string) []string {
	a := m.agents[id]
	if a == nil || len(a.groups) == 0 {
		return nil
	}
	var out []string
	for g := range a.groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (m *model) liveSet(id string) []string {
	a := m.agents[id]
	if a == nil {
		return nil
	}
	var out []string
	for d, st := range a.devices {
		if st == Live {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) ids() []string {
	var out []string
	for id := range m.agents {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// widgetFrom computes a widget by brute force from (effective status,
// groups) pairs, straight from the product rule.
func widgetFrom(group string, agents []struct {
	eff    Status
	groups []string
}) Widget {
	online, busy := false, false
	for _, a := range agents {
		relevant := group == "" || len(a.groups) == 0 || slices.Contains(a.groups, group)
		if !relevant {
			continue
		}
		switch a.eff {
		case Online:
			online = true
		case Busy:
			busy = true
		}
	}
	switch {
	case online:
		return Widget{Status: Online, Reason: ReasonAgentsOnline}
	case busy:
		return Widget{Status: Busy, Reason: ReasonAllBusy}
	}
	return Widget{Status: Offline, Reason: ReasonNoAgents}
}

type effGroups = struct {
	eff    Status
	groups []string
}

func bruteFromSite(s *Site, group string) Widget {
	var in []effGroups
	for _, a := range s.Agents() {
		in = append(in, effGroups{a.Effective(), a.Groups})
	}
	return widgetFrom(group, in)
}

func (m *model) widget(group string) Widget {
	var in []effGroups
	for _, id := range m.ids() {
		in = append(in, effGroups{m.effective(id), m.groupsOf(id)})
	}
	return widgetFrom(group, in)
}

var (
	propAgents  = []string{"a1", "a2", "a3", "a4", "a5", "a6"}
	propDevices = []string{"desk", "phone", "tab"}
	propGroups  = []string{"sales", "support", "billing", "vip"}
	// Widgets checked after every operation: the site, every group in
	// use, and one group no agent is ever in.
	propWidgets = []string{"", "sales", "support", "billing", "vip", "nobody"}
)

// TestRandomOperations applies thousands of random operations with a fixed
// seed and checks, after each one, that the O(1) tallies give the same
// widgets as a brute-force recount, that the Change is right, and that
// Touches never misses a widget that did change.
func TestRandomOperations(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runRandomOperations(t, seed, 4000)
		})
	}
}

func runRandomOperations(t *testing.T, seed uint64, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	s := NewSite()
	m := &model{agents: map[string]*modelAgent{}}
	statuses := []Status{Online, Busy, Offline}

	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	randGroups := func() []string {
		// 0 to 4 picks with repeats, in random order; sometimes an
		// explicit empty slice rather than nil.
		k := rng.IntN(5)
		if k == 0 {
			if rng.IntN(2) == 0 {
				return []string{}
			}
			return nil
		}
		out := make([]string, k)
		for i := range out {
			out[i] = pick(propGroups)
		}
		return out
	}

	for i := 0; i < n; i++ {
		id := pick(propAgents)
		before := map[string]Widget{}
		for _, g := range propWidgets {
			before[g] = s.Widget(g)
		}
		effBefore, groupsBefore, liveBefore := m.effective(id), m.groupsOf(id), m.liveSet(id)

		var ch Change
		var desc string
		switch op := rng.IntN(10); {
		case op < 3:
			st, gs := statuses[rng.IntN(3)], randGroups()
			desc = fmt.Sprintf("SetAgent(%q, %q, %q)", id, st, gs)
			ch = s.SetAgent(id, st, gs)
			a := m.get(id)
			a.stored, a.status = true, st
			a.groups = map[string]bool{}
			for _, g := range gs {
				a.groups[g] = true
			}
		case op < 4:
			desc = fmt.Sprintf("RemoveAgent(%q)", id)
			ch = s.RemoveAgent(id)
			a := m.get(id)
			a.stored, a.status, a.groups = false, Online, map[string]bool{}
			m.gc(id)
		case op < 7:
			state := Live
			if rng.IntN(3) == 0 {
				state = Lingering
			}
			d := Device{
				ID:      pick(propDevices),
				Kind:    Desktop,
				Since:   at(rng.IntN(100)),
				Session: fmt.Sprintf("s%d", i),
				State:   state,
			}
			desc = fmt.Sprintf("SetDevice(%q, %q %s)", id, d.ID, d.State)
			ch = s.SetDevice(id, d)
			m.get(id).devices[d.ID] = state
		default:
			dev := pick(propDevices)
			desc = fmt.Sprintf("RemoveDevice(%q, %q)", id, dev)
			ch = s.RemoveDevice(id, dev)
			if a := m.agents[id]; a != nil {
				delete(a.devices, dev)
				m.gc(id)
			}
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("op %d %s: %s", i, desc, fmt.Sprintf(format, args...))
		}

		// The Change.
		effAfter, groupsAfter, liveAfter := m.effective(id), m.groupsOf(id), m.liveSet(id)
		if ch.Agent != id {
			fail("Change.Agent: got %q, want %q", ch.Agent, id)
		}
		if ch.Before != effBefore || ch.After != effAfter {
			fail("Change Before/After: got %q/%q, want %q/%q", ch.Before, ch.After, effBefore, effAfter)
		}
		if got, want := ch.EffectiveChanged(), effBefore != effAfter; got != want {
			fail("EffectiveChanged(): got %v, want %v", got, want)
		}
		if !slices.Equal(ch.BeforeGroups, groupsBefore) || !slices.Equal(ch.AfterGroups, groupsAfter) {
			fail("Change groups: got %q -> %q, want %q -> %q", ch.BeforeGroups, ch.AfterGroups, groupsBefore, groupsAfter)
		}
		if got, want := ch.GroupsChanged(), !slices.Equal(groupsBefore, groupsAfter); got != want {
			fail("GroupsChanged(): got %v, want %v", got, want)
		}
		if got, want := ch.DevicesChanged, !slices.Equal(liveBefore, liveAfter); got != want {
			fail("DevicesChanged: got %v, want %v (live %q -> %q)", got, want, liveBefore, liveAfter)
		}

		// The agents the site keeps.
		var ids []string
		for _, a := range s.Agents() {
			ids = append(ids, a.ID)
		}
		if want := m.ids(); !slices.Equal(ids, want) {
			fail("Agents(): got %q, want %q", ids, want)
		}
		if got, want := s.Empty(), len(m.agents) == 0; got != want {
			fail("Empty(): got %v, want %v", got, want)
		}
		var counted Counts
		for _, a := range s.Agents() {
			switch a.Effective() {
			case Online:
				counted.Online++
			case Busy:
				counted.Busy++
			default:
				counted.Offline++
			}
			if a.Lingering() {
				counted.Lingering++
			}
		}
		if got := s.Counts(); got != counted {
			fail("Counts(): got %+v, want %+v (recount from Agents())", got, counted)
		}
		for _, a := range s.Agents() {
			if got, want := a.Effective(), m.effective(a.ID); got != want {
				fail("agent %q Effective(): got %q, want %q", a.ID, got, want)
			}
			if got, want := a.Groups, m.groupsOf(a.ID); !slices.Equal(got, want) {
				fail("agent %q Groups: got %q, want %q", a.ID, got, want)
			}
			var live []string
			for _, d := range a.LiveDevices() {
				live = append(live, d.ID)
			}
			slices.Sort(live)
			if want := m.liveSet(a.ID); !slices.Equal(live, want) {
				fail("agent %q live devices: got %q, want %q", a.ID, live, want)
			}
			if got, want := a.Lingering(), len(m.agents[a.ID].devices) > 0 && len(m.liveSet(a.ID)) == 0; got != want {
				fail("agent %q Lingering(): got %v, want %v", a.ID, got, want)
			}
		}

		// The widgets.
		for _, g := range propWidgets {
			got := s.Widget(g)
			if want := bruteFromSite(s, g); got != want {
				fail("Widget(%q): got %+v, want %+v (recount from Agents())", g, got, want)
			}
			if want := m.widget(g); got != want {
				fail("Widget(%q): got %+v, want %+v (model)", g, got, want)
			}
			if got != before[g] && !ch.Touches(g) {
				fail("Widget(%q) changed %+v -> %+v but Touches(%q) is false (change %+v)", g, before[g], got, g, ch)
			}
		}
		checkTallies(t, s)
		if t.Failed() {
			t.Fatalf("op %d %s: tallies diverged", i, desc)
		}
	}

	// Tear everything down: the site must end empty with zero tallies.
	for _, id := range propAgents {
		for _, d := range propDevices {
			s.RemoveDevice(id, d)
		}
		s.RemoveAgent(id)
	}
	if !s.Empty() {
		t.Errorf("Empty() after removing everything: got false, want true")
	}
	if s.all != (tally{}) || s.ungrouped != (tally{}) || len(s.groups) != 0 {
		t.Errorf("tallies after removing everything: got all=%+v ungrouped=%+v groups=%d, want all zero",
			s.all, s.ungrouped, len(s.groups))
	}
	for _, g := range propWidgets {
		wantWidget(t, s, g, widgetOffline)
	}
}
