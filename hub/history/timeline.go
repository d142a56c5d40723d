package history

import (
	"sort"
	"time"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Timeline is the answer of the timeline API.
type Timeline struct {
	// From and To are the range answered: the range asked for, clipped to
	// the start of the history and to now.
	From    protocol.Time    `json:"from"`
	To      protocol.Time    `json:"to"`
	Agents  []AgentTimeline  `json:"agents"`
	Widgets []WidgetTimeline `json:"widgets"`
}

// AgentTimeline is one agent's intervals.
type AgentTimeline struct {
	ID        string          `json:"id"`
	Intervals []AgentInterval `json:"intervals"`
}

// AgentInterval is a stretch of one chosen and one effective status.
type AgentInterval struct {
	From      protocol.Time   `json:"from"`
	To        protocol.Time   `json:"to"`
	Status    presence.Status `json:"status"`
	Effective presence.Status `json:"effective"`
}

// WidgetTimeline is one widget's intervals; Group "" is the site's.
type WidgetTimeline struct {
	Group     string           `json:"group"`
	Intervals []WidgetInterval `json:"intervals"`
}

// WidgetInterval is a stretch of one widget status and reason.
type WidgetInterval struct {
	From   protocol.Time   `json:"from"`
	To     protocol.Time   `json:"to"`
	Status presence.Status `json:"status"`
	Reason presence.Reason `json:"reason"`
}

// agentSteps returns the steps of an agent that can matter in [from, to),
// and the state before them.
func agentSteps(sr *series, from, to int64) (presence.AgentState, []presence.Step[presence.AgentState]) {
	conv := func(p point) presence.AgentState {
		return presence.AgentState{Status: statuses[p.a], Effective: statuses[p.b]}
	}
	init, pts := window(sr, from, to)
	out := make([]presence.Step[presence.AgentState], len(pts))
	for i, p := range pts {
		out[i] = presence.Step[presence.AgentState]{At: time.UnixMilli(p.at), Value: conv(p)}
	}
	return conv(init), out
}

func widgetSteps(sr *series, from, to int64) (presence.Widget, []presence.Step[presence.Widget]) {
	conv := func(p point) presence.Widget {
		return presence.Widget{Status: statuses[p.a], Reason: reasons[p.b]}
	}
	init, pts := window(sr, from, to)
	out := make([]presence.Step[presence.Widget], len(pts))
	for i, p := range pts {
		out[i] = presence.Step[presence.Widget]{At: time.UnixMilli(p.at), Value: conv(p)}
	}
	return conv(init), out
}

// widgetFrom is where a widget's history starts in a range from from: its
// first event, when that is later. Nothing says what a widget showed
// before it (a group's widget has events once it has online or busy
// members, hours, or agents in it; the site's once an agent changes).
func widgetFrom(sr *series, from time.Time) time.Time {
	if len(sr.points) > 0 {
		if first := time.UnixMilli(sr.points[0].at); first.After(from) {
			return first
		}
	}
	return from
}

// window returns the points of sr inside (from, to) and the one holding at
// from.
func window(sr *series, from, to int64) (point, []point) {
	i := sort.Search(len(sr.points), func(i int) bool { return sr.points[i].at > from })
	j := sort.Search(len(sr.points), func(i int) bool { return sr.points[i].at >= to })
	init := sr.initial
	if i > 0 {
		init = sr.points[i-1]
	}
	return init, sr.points[i:j]
}

// Timeline answers the timeline of site over [from, to), clipped to now.
func (x *Index) Timeline(site string, from, to time.Time, sel Selection) (Timeline, error) {
	from, to, err := x.checkRange(from, to, "from", "to")
	if err != nil {
		return Timeline{}, err
	}
	out := Timeline{From: protocol.Time(from), To: protocol.Time(to), Agents: []AgentTimeline{}, Widgets: []WidgetTimeline{}}
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := x.sites[site]
	if s == nil {
		return out, nil
	}
	fms, tms := from.UnixMilli(), to.UnixMilli()
	for _, id := range sortedKeys(s.agents) {
		if sel.Agent != nil && !sel.Agent(id) {
			continue
		}
		init, steps := agentSteps(s.agents[id], fms, tms)
		at := AgentTimeline{ID: id, Intervals: []AgentInterval{}}
		for _, sp := range presence.Spans(init, steps, from, to) {
			at.Intervals = append(at.Intervals, AgentInterval{From: protocol.Time(sp.From), To: protocol.Time(sp.To), Status: sp.Value.Status, Effective: sp.Value.Effective})
		}
		out.Agents = append(out.Agents, at)
	}
	for _, g := range sortedKeys(s.widgets) {
		if sel.Group != nil && *sel.Group != g {
			continue
		}
		wfrom := widgetFrom(s.widgets[g], from)
		if !wfrom.Before(to) {
			continue
		}
		init, steps := widgetSteps(s.widgets[g], fms, tms)
		wt := WidgetTimeline{Group: g, Intervals: []WidgetInterval{}}
		for _, sp := range presence.Spans(init, steps, wfrom, to) {
			wt.Intervals = append(wt.Intervals, WidgetInterval{From: protocol.Time(sp.From), To: protocol.Time(sp.To), Status: sp.Value.Status, Reason: sp.Value.Reason})
		}
		out.Widgets = append(out.Widgets, wt)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
