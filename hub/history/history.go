// Package history owns one replica's index of the availability history of
// every site, read from the event stream (docs/events.md), and answers the
// timeline and the availability report of the admin API
// (docs/protocol.md#history) from it, with the computations of package
// presence.
//
// The index keeps, per site, per agent the instants its chosen or
// effective status changed (agent.status, agent.availability), and per
// group the instants its widget changed (widget.status), stamped with the
// events' timestamps. It holds nothing that is not in the stream: every
// replica builds the same index from the stream's start, so history
// survives a restart of every replica for as long as the stream retains
// it. Points older than the retention are dropped as new ones arrive.
//
// Goroutines: Run reads the stream with one ordered consumer, whose
// handler runs on the NATS client's goroutines and applies each event
// under the index's lock; Run returns when its context is done, after the
// consumer is stopped. Queries run on the caller's goroutine under a read
// lock.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// ErrNotReady is returned by queries until the index has read what the
// stream held when Run started.
var ErrNotReady = errors.New("history: still reading the event stream")

// ParamError is a query parameter out of range.
type ParamError struct {
	Param, Msg string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Config configures an Index.
type Config struct {
	JetStream jetstream.JetStream
	// Stream is the event stream's name; default events.DefaultStream.
	Stream string
	// Retention is the stream's retention; default
	// events.DefaultRetention. No query reaches further back.
	Retention time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Subjects the index reads.
var subjects = []string{
	events.SubjectPrefix + "*." + events.TypeAgentStatus,
	events.SubjectPrefix + "*." + events.TypeAgentAvailability,
	events.SubjectPrefix + "*." + events.TypeWidgetStatus,
}

// Statuses and reasons are stored as a byte each.
var (
	statuses = []presence.Status{presence.Offline, presence.Busy, presence.Online}
	reasons  = []presence.Reason{presence.ReasonNoAgents, presence.ReasonAllBusy, presence.ReasonAgentsOnline, presence.ReasonOutsideHours}
)

func statusCode(s presence.Status) uint8 {
	for i, x := range statuses {
		if x == s {
			return uint8(i)
		}
	}
	return 0
}

func reasonCode(r presence.Reason) uint8 {
	for i, x := range reasons {
		if x == r {
			return uint8(i)
		}
	}
	return 0
}

// point is one change, 16 bytes: the instant in Unix milliseconds (event
// timestamps have milliseconds) and two codes: an agent's chosen and
// effective status, or a widget's status and reason.
type point struct {
	at   int64
	a, b uint8
}

// series is one agent's or one widget's history: initial holds before the
// first point. known says which of the two codes initial and the points
// have from an event (bit 1: a, bit 2: b); an unknown one is a guess that
// the first event telling it replaces.
type series struct {
	initial point
	known   uint8
	points  []point
}

type siteIndex struct {
	agents  map[string]*series
	widgets map[string]*series
}

// Index is the history of every site, kept in memory.
type Index struct {
	cfg Config

	mu    sync.RWMutex
	sites map[string]*siteIndex
	// first is the timestamp of the earliest event read (ms), 0 before any.
	first int64
	ready bool
	// readyCh is closed once ready.
	readyCh chan struct{}
}

// New returns an Index for cfg; Run fills it.
func New(cfg Config) (*Index, error) {
	if cfg.JetStream == nil {
		return nil, errors.New("history: no JetStream")
	}
	if cfg.Stream == "" {
		cfg.Stream = events.DefaultStream
	}
	if cfg.Retention == 0 {
		cfg.Retention = events.DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Index{cfg: cfg, sites: make(map[string]*siteIndex), readyCh: make(chan struct{})}, nil
}

// Ready reports whether the index has read what the stream held when Run
// started.
func (x *Index) Ready() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ready
}

// Loaded is closed once the index is ready.
func (x *Index) Loaded() <-chan struct{} { return x.readyCh }

func (x *Index) markReady() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.ready {
		x.ready = true
		close(x.readyCh)
	}
}

// Run reads the event stream from its start and follows it until ctx is
// done. While the stream cannot be opened (NATS down at startup) it tries
// again every retryEvery, logging why.
func (x *Index) Run(ctx context.Context) error {
	for {
		cc, err := x.start(ctx)
		if err == nil {
			<-ctx.Done()
			cc.Stop()
			<-cc.Closed()
			return nil
		}
		x.cfg.Logger.Warn("history: failed to start reading the event stream; trying again", "err", err, "in", retryEvery)
		t := time.NewTimer(retryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// retryEvery is how often Run tries again to open the stream.
const retryEvery = 2 * time.Second

// start opens the ordered consumer; the ordered consumer itself rides out
// reconnects and resumes after the last message it handled.
func (x *Index) start(ctx context.Context) (jetstream.ConsumeContext, error) {
	stream, err := x.cfg.JetStream.Stream(ctx, x.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("history: failed to open event stream %q: %w", x.cfg.Stream, err)
	}
	// What "caught up" means: the last message of the subjects read, as
	// the stream holds it now.
	var target uint64
	for _, subj := range subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("history: failed to read event stream %q: %w", x.cfg.Stream, err)
		case m.Sequence > target:
			target = m.Sequence
		}
	}
	if target == 0 {
		x.markReady()
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("history: failed to read event stream %q: %w", x.cfg.Stream, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		x.apply(msg.Subject(), msg.Data())
		if md, err := msg.Metadata(); err == nil && (md.NumPending == 0 || md.Sequence.Stream >= target) {
			x.markReady()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("history: failed to read event stream %q: %w", x.cfg.Stream, err)
	}
	return cc, nil
}

// envelope is the part of an event the index reads; data holds the
// fields of every type it reads.
type envelope struct {
	Type      string        `json:"type"`
	Site      string        `json:"site"`
	Timestamp protocol.Time `json:"timestamp"`
	Data      struct {
		Agent    string          `json:"agent"`
		Group    string          `json:"group"`
		Status   presence.Status `json:"status"`
		Previous presence.Status `json:"previous"`
		Reason   presence.Reason `json:"reason"`
	} `json:"data"`
}

// apply adds one event to the index.
func (x *Index) apply(subject string, data []byte) {
	var ev envelope
	if err := json.Unmarshal(data, &ev); err != nil {
		x.cfg.Logger.Warn("history: skipping an event that does not decode", "subject", subject, "err", err)
		return
	}
	at := time.Time(ev.Timestamp).UnixMilli()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.first == 0 || at < x.first {
		x.first = at
	}
	s := x.sites[ev.Site]
	if s == nil {
		s = &siteIndex{agents: make(map[string]*series), widgets: make(map[string]*series)}
		x.sites[ev.Site] = s
	}
	cutoff := x.cfg.Now().Add(-x.cfg.Retention).UnixMilli()
	switch ev.Type {
	case events.TypeAgentStatus:
		sr := get(s.agents, ev.Data.Agent)
		sr.learn(1, statusCode(ev.Data.Previous))
		last := sr.last()
		sr.add(point{at: at, a: statusCode(ev.Data.Status), b: last.b}, cutoff)
	case events.TypeAgentAvailability:
		sr := get(s.agents, ev.Data.Agent)
		sr.learn(2, statusCode(ev.Data.Previous))
		last := sr.last()
		p := point{at: at, a: last.a, b: statusCode(ev.Data.Status)}
		if sr.known&1 == 0 && ev.Data.Status != presence.Offline {
			// Online or busy is what the agent chose.
			p.a = p.b
		}
		sr.add(p, cutoff)
	case events.TypeWidgetStatus:
		sr := get(s.widgets, ev.Data.Group)
		sr.known = 3
		sr.add(point{at: at, a: statusCode(ev.Data.Status), b: reasonCode(ev.Data.Reason)}, cutoff)
	}
}

func get(m map[string]*series, id string) *series {
	sr := m[id]
	if sr == nil {
		// Before anything is known: offline; a widget with no agents.
		sr = &series{initial: point{a: statusCode(presence.Offline), b: 0}}
		m[id] = sr
	}
	return sr
}

// learn takes the value before the first event that tells code bit (1:
// a, 2: b), replacing the guesses made so far.
func (sr *series) learn(bit, v uint8) {
	if sr.known&bit != 0 {
		return
	}
	sr.known |= bit
	set := func(p *point) {
		if bit == 1 {
			p.a = v
		} else {
			p.b = v
		}
	}
	set(&sr.initial)
	for i := range sr.points {
		set(&sr.points[i])
	}
}

func (sr *series) last() point {
	if n := len(sr.points); n > 0 {
		return sr.points[n-1]
	}
	return sr.initial
}

// add appends p; a point at the instant of the last one replaces it (the
// events of one change share their timestamp). Points before cutoff are
// dropped, a day's worth at a time, keeping the last of them, which holds
// at cutoff.
func (sr *series) add(p point, cutoff int64) {
	n := len(sr.points)
	if n > 0 && sr.points[n-1].at >= p.at {
		if sr.points[n-1].at == p.at {
			sr.points[n-1] = p
			return
		}
		// Out of order (a retried event): insert it in place.
		i := sort.Search(n, func(i int) bool { return sr.points[i].at > p.at })
		if i > 0 && sr.points[i-1].at == p.at {
			sr.points[i-1] = p
			return
		}
		sr.points = append(sr.points, point{})
		copy(sr.points[i+1:], sr.points[i:])
		sr.points[i] = p
		return
	}
	sr.points = append(sr.points, p)
	if len(sr.points) > 1 && sr.points[1].at < cutoff-int64(24*time.Hour/time.Millisecond) {
		i := sort.Search(len(sr.points), func(i int) bool { return sr.points[i].at >= cutoff }) - 1
		sr.points = append([]point(nil), sr.points[i:]...)
	}
}

// Start is where the history begins: the first event read, or the
// stream's retention back from now when that is later; now when no event
// was read.
func (x *Index) Start() time.Time {
	x.mu.RLock()
	first := x.first
	x.mu.RUnlock()
	now := x.cfg.Now()
	start := now.Add(-x.cfg.Retention)
	if first == 0 {
		return now
	}
	if f := time.UnixMilli(first); f.After(start) {
		start = f
	}
	return start
}

// Selection narrows a query: Agent, when set, says which agents to
// include; Group, when set, names the only widget to include ("" is the
// site's own).
type Selection struct {
	Agent func(id string) bool
	Group *string
}

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

// checkRange checks a query's range and returns the range to answer:
// clipped to now, and to the start of the history when the range begins
// before it (a deployment's first day can be reported). A range that
// begins before the stream's retention, or that ends before the history
// begins, is refused naming fromParam.
func (x *Index) checkRange(from, to time.Time, fromParam, toParam string) (time.Time, time.Time, error) {
	if !x.Ready() {
		return from, to, ErrNotReady
	}
	if !from.Before(to) {
		return from, to, &ParamError{fromParam, "must be before " + toParam}
	}
	now := x.cfg.Now()
	if kept := now.Add(-x.cfg.Retention); from.Before(kept) {
		return from, to, &ParamError{fromParam, fmt.Sprintf("before the retention of the event stream (%v): the history starts at %s",
			x.cfg.Retention, x.Start().UTC().Format(protocol.TimeFormat))}
	}
	if start := x.Start(); !start.Before(to) {
		return from, to, &ParamError{fromParam, fmt.Sprintf("before the history the event stream holds, which starts at %s (retention %v)",
			start.UTC().Format(protocol.TimeFormat), x.cfg.Retention)}
	} else if from.Before(start) {
		from = start
	}
	if now := now.Truncate(time.Millisecond); to.After(now) {
		to = now
	}
	if !from.Before(to) {
		return from, to, &ParamError{fromParam, "must be before now"}
	}
	return from, to, nil
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
func (x *Index) Report(site string, first, last time.Time, loc *time.Location, sel Selection) (Report, error) {
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
	from, to, err := x.checkRange(from, to, "from", "to")
	if err != nil {
		return Report{}, err
	}
	for len(days) > 0 && !days[0].End.After(from) {
		days = days[1:] // before the history starts
	}
	out := Report{From: days[0].Date, To: days[len(days)-1].Date, Timezone: loc.String(), Days: []ReportDay{}}
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := x.sites[site]
	if s == nil {
		s = &siteIndex{}
	}
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
	var widgets []widgetSpans
	for _, g := range sortedKeys(s.widgets) {
		if sel.Group != nil && *sel.Group != g {
			continue
		}
		init, steps := widgetSteps(s.widgets[g], fms, tms)
		widgets = append(widgets, widgetSpans{g, presence.Spans(init, steps, widgetFrom(s.widgets[g], from), to)})
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
