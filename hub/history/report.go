package history

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Report is the answer of the availability report API.
type Report struct {
	// From and To are the first and last days answered: the days asked
	// for, from the one the history starts in to today.
	From     string      `json:"from"`
	To       string      `json:"to"`
	Timezone string      `json:"tz"`
	Days     []ReportDay `json:"days"`
}

// ReportDay is one calendar day of the report's zone; To is its end, or
// now for today.
type ReportDay struct {
	Date    string        `json:"date"`
	From    protocol.Time `json:"from"`
	To      protocol.Time `json:"to"`
	Agents  []AgentDay    `json:"agents"`
	Widgets []WidgetDay   `json:"widgets"`
}

// AgentDay is an agent's seconds effectively online, busy and offline in
// a day.
type AgentDay struct {
	ID      string  `json:"id"`
	Online  float64 `json:"online_seconds"`
	Busy    float64 `json:"busy_seconds"`
	Offline float64 `json:"offline_seconds"`
}

// WidgetDay is a widget's working hours in a day: the seconds inside
// hours, those of them it showed online, their ratio (null when no hours),
// and the longest stretch inside hours it did not show online.
type WidgetDay struct {
	Group          string         `json:"group"`
	Inside         float64        `json:"inside_hours_seconds"`
	Online         float64        `json:"online_seconds"`
	Coverage       *float64       `json:"coverage"`
	LongestGap     float64        `json:"longest_gap_seconds"`
	LongestGapFrom *protocol.Time `json:"longest_gap_from"`
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// Report answers the availability report of site for the days first to
// last (dates in loc, both included), clipped to now.
func (x *Index) Report(ctx context.Context, site string, first, last time.Time, loc *time.Location, sel Selection) (Report, error) {
	if first.After(last) {
		return Report{}, &ParamError{"from", "must not be after to"}
	}
	// Days after today have nothing yet: they are left out, and never
	// walked (to=9999-12-31 would be millions of days).
	y, m, d := x.cfg.Now().In(loc).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if first.After(today) {
		return Report{}, &ParamError{"from", "must not be after today in " + loc.String()}
	}
	if last.After(today) {
		last = today
	}
	days := presence.Days(first, last, loc)
	if len(days) == 0 {
		return Report{}, &ParamError{"from", "must not be after to"}
	}
	from, to := days[0].Start, days[len(days)-1].End
	from, to, err := x.checkRange(ctx, from, to, "from", "to")
	if err != nil {
		return Report{}, err
	}
	e, err := x.site(ctx, site)
	if err != nil {
		return Report{}, err
	}
	for len(days) > 0 && !days[0].End.After(from) {
		days = days[1:] // before the history starts
	}
	out := Report{From: days[0].Date, To: days[len(days)-1].Date, Timezone: loc.String(), Days: []ReportDay{}}
	x.mu.RLock()
	s, hours := e.idx, x.hours
	fms, tms := from.UnixMilli(), to.UnixMilli()
	type agentSpans struct {
		id    string
		spans []presence.Span[presence.AgentState]
	}
	type widgetSpans struct {
		group string
		spans []presence.Span[presence.Widget]
	}
	var agents []agentSpans
	for _, id := range sortedKeys(s.agents) {
		if sel.Agent != nil && !sel.Agent(id) {
			continue
		}
		init, steps := agentSteps(s.agents[id], fms, tms)
		agents = append(agents, agentSpans{id, presence.Spans(init, steps, from, to)})
	}
	ws := widgetViews(s, sel, from, to)
	x.mu.RUnlock()
	var widgets []widgetSpans
	for i, sched := range widgetHours(hours, site, ws) {
		widgets = append(widgets, widgetSpans{ws[i].group, ws[i].spans(sched, from, to)})
	}
	for _, d := range days {
		if !d.Start.Before(to) {
			break
		}
		if d.Start.Before(from) {
			d.Start = from // the day the history starts in
		}
		end := d.End
		if end.After(to) {
			end = to
		}
		rd := ReportDay{Date: d.Date, From: protocol.Time(d.Start), To: protocol.Time(end), Agents: make([]AgentDay, 0, len(agents)), Widgets: make([]WidgetDay, 0, len(widgets))}
		for _, a := range agents {
			t := presence.SumAgent(spansOf(a.spans, d.Start, end), d.Start, end)
			rd.Agents = append(rd.Agents, AgentDay{ID: a.id, Online: seconds(t.Online), Busy: seconds(t.Busy), Offline: seconds(t.Offline)})
		}
		for _, w := range widgets {
			t := presence.SumWidget(spansOf(w.spans, d.Start, end), d.Start, end)
			wd := WidgetDay{Group: w.group, Inside: seconds(t.Inside), Online: seconds(t.Online), LongestGap: seconds(t.LongestGap)}
			if c, ok := t.Coverage(); ok {
				wd.Coverage = &c
			}
			if t.LongestGap > 0 {
				at := protocol.Time(t.LongestGapFrom)
				wd.LongestGapFrom = &at
			}
			rd.Widgets = append(rd.Widgets, wd)
		}
		out.Days = append(out.Days, rd)
	}
	return out, nil
}

// spansOf returns the spans that overlap [from, to), found by binary
// search, so that a day's sums do not walk the whole range.
func spansOf[T comparable](spans []presence.Span[T], from, to time.Time) []presence.Span[T] {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].To.After(from) })
	j := sort.Search(len(spans), func(i int) bool { return !spans[i].From.Before(to) })
	if j < i {
		j = i
	}
	return spans[i:j]
}

// CSV returns r as CSV records: a header, then one row per day per agent
// (kind "agent", id the agent) and per widget (kind "site" with an empty
// id, or "group" with the group). Columns a row does not use are empty.
func (r Report) CSV() [][]string {
	rows := [][]string{{"date", "kind", "id", "online_seconds", "busy_seconds", "offline_seconds",
		"inside_hours_seconds", "online_inside_hours_seconds", "coverage", "longest_gap_seconds"}}
	f := func(v float64) string { return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".") }
	for _, d := range r.Days {
		for _, a := range d.Agents {
			rows = append(rows, []string{d.Date, "agent", a.ID, f(a.Online), f(a.Busy), f(a.Offline), "", "", "", ""})
		}
		for _, w := range d.Widgets {
			cov := ""
			if w.Coverage != nil {
				cov = fmt.Sprintf("%.4f", *w.Coverage)
			}
			kind := "group"
			if w.Group == "" {
				kind = "site"
			}
			rows = append(rows, []string{d.Date, kind, w.Group, "", "", "", f(w.Inside), f(w.Online), cov, f(w.LongestGap)})
		}
	}
	return rows
}
