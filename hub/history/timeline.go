package history

import (
	"context"
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

// widgetView is a widget's part of a query, copied out of the index
// under its lock so that its working hours can be read without it.
type widgetView struct {
	group string
	init  presence.Widget
	steps []presence.Step[presence.Widget]
	// first is the widget's first event when it is after the range's
	// start (the index does not know what it showed at from), else zero.
	first time.Time
}

// widgetViews returns the widgets of s that sel selects, over [from, to),
// sorted by group. Called under the index's read lock.
func widgetViews(s *siteIndex, sel Selection, from, to time.Time) []widgetView {
	var out []widgetView
	for _, g := range sortedKeys(s.widgets) {
		if sel.Group != nil && *sel.Group != g {
			continue
		}
		sr := s.widgets[g]
		v := widgetView{group: g}
		v.init, v.steps = widgetSteps(sr, from.UnixMilli(), to.UnixMilli())
		if len(sr.points) > 0 {
			if first := time.UnixMilli(sr.points[0].at); first.After(from) {
				v.first = first
			}
		}
		out = append(out, v)
	}
	return out
}

// spans returns w's spans over [from, to). Before its first event the
// widget was offline: with reason outside_hours while hours (its working
// hours as the hub has them now, nil for none) are closed, no_agents
// otherwise; neither the hub nor the stream says more of that time.
func (w widgetView) spans(hours *presence.Schedule, from, to time.Time) []presence.Span[presence.Widget] {
	if w.first.IsZero() {
		return presence.Spans(w.init, w.steps, from, to)
	}
	until := w.first
	if until.After(to) {
		until = to
	}
	offline := presence.Widget{Status: presence.Offline, Reason: presence.ReasonNoAgents}
	init, next := presence.ApplyHours(offline, hours, from)
	var steps []presence.Step[presence.Widget]
	for !next.IsZero() && next.Before(until) {
		var v presence.Widget
		at := next
		v, next = presence.ApplyHours(offline, hours, at)
		steps = append(steps, presence.Step[presence.Widget]{At: at, Value: v})
	}
	return presence.Spans(init, append(steps, w.steps...), from, to)
}

// widgetHours returns the working hours that govern site's widgets ws
// (nil: none) for those that need them, read from hours (nil: none)
// without the index's lock.
func widgetHours(hours Schedules, site string, ws []widgetView) []*presence.Schedule {
	out := make([]*presence.Schedule, len(ws))
	if hours == nil {
		return out
	}
	for i, w := range ws {
		if w.first.IsZero() {
			continue
		}
		var group *presence.Schedule
		if w.group != "" {
			group, _ = hours.Schedule(site, w.group)
		}
		own, _ := hours.Schedule(site, "")
		out[i] = presence.EffectiveSchedule(group, own)
	}
	return out
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
func (x *Index) Timeline(ctx context.Context, site string, from, to time.Time, sel Selection) (Timeline, error) {
	from, to, err := x.checkRange(ctx, from, to, "from", "to")
	if err != nil {
		return Timeline{}, err
	}
	e, err := x.site(ctx, site)
	if err != nil {
		return Timeline{}, err
	}
	out := Timeline{From: protocol.Time(from), To: protocol.Time(to), Agents: []AgentTimeline{}, Widgets: []WidgetTimeline{}}
	x.mu.RLock()
	s, hours := e.idx, x.hours
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
	ws := widgetViews(s, sel, from, to)
	x.mu.RUnlock()
	for i, sched := range widgetHours(hours, site, ws) {
		wt := WidgetTimeline{Group: ws[i].group, Intervals: []WidgetInterval{}}
		for _, sp := range ws[i].spans(sched, from, to) {
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
