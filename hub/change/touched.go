package change

import (
	"slices"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// Touched is the set of widgets an entry can move: the site's, listed
// groups and, with All, every group (an agent in no group counts for every
// group; working hours move every group they govern).
type Touched struct {
	Groups []string // sorted, "" (the site) first
	All    bool
}

// Has reports whether group's widget is in the set.
func (t Touched) Has(group string) bool {
	_, ok := slices.BinarySearch(t.Groups, group)
	return t.All || ok
}

// Add adds u's widgets to t.
func (t *Touched) Add(u Touched) {
	t.All = t.All || u.All
	t.Groups = append(t.Groups, u.Groups...)
	slices.Sort(t.Groups)
	t.Groups = slices.Compact(t.Groups)
}

// TouchedBy decides which widgets the entry of key k can move, before it is
// applied: the only place that does. For an agent or a lease, the site's
// widget and those of the agent's groups as the view holds them (rec, its
// record; agent, the rules' copy) and as the entry stores them (next, for
// an agent record being written); every group if the agent is, or will
// be, in none. For working hours, their group and every group. Other keys
// (settings, activity, coverage) move no widget by themselves.
func TouchedBy(k store.Key, rec *store.AgentRecord, agent *presence.Agent, next *store.AgentRecord) Touched {
	t := Touched{Groups: []string{""}}
	switch k.Kind {
	case store.KindHours:
		t.All = true
		t.Groups = append(t.Groups, k.Group)
	case store.KindAgent, store.KindLease:
		t.All = rec == nil || len(rec.Groups) == 0
		if rec != nil {
			t.Groups = append(t.Groups, rec.Groups...)
		}
		if agent != nil {
			t.All = t.All || len(agent.Groups) == 0
			t.Groups = append(t.Groups, agent.Groups...)
		}
		if next != nil {
			t.All = t.All || len(next.Groups) == 0
			t.Groups = append(t.Groups, next.Groups...)
		}
	default:
		return Touched{}
	}
	slices.Sort(t.Groups)
	t.Groups = slices.Compact(t.Groups)
	return t
}

// Expand lists the groups of t that site knows: with All, every group of
// the rules (presence.Site.Groups) and every group any agent is in, online
// or not (presence.Site.MemberGroups): without the latter, a group's
// widget that an agent in no group kept online would have no event when
// that agent leaves.
func (t Touched) Expand(site *presence.Site) []string {
	if !t.All {
		return t.Groups
	}
	groups := slices.Clone(t.Groups)
	groups = append(groups, site.Groups()...)
	groups = append(groups, site.MemberGroups()...)
	slices.Sort(groups)
	return slices.Compact(groups)
}
