package history_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

const waitTimeout = 15 * time.Second

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// stream is an event stream on a real nats-server that tests publish
// events into as a hub would.
type stream struct {
	t   *testing.T
	js  jetstream.JetStream
	rev int
}

func openStream(t *testing.T) *stream {
	t.Helper()
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return &stream{t: t, js: js}
}

// publish stores one event as a hub would: events.Event JSON on its subject,
// Nats-Msg-Id its id.
func (s *stream) publish(site, typ, at string, data any) {
	s.t.Helper()
	s.rev++
	b, err := json.Marshal(data)
	if err != nil {
		s.t.Fatal(err)
	}
	ev := events.Event{ID: fmt.Sprintf("%d.%s", s.rev, typ), Type: typ, Site: site, Timestamp: protocol.Time(utc(at)), Data: b}
	body, err := json.Marshal(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	msg := nats.NewMsg(ev.Subject())
	msg.Data = body
	msg.Header.Set(nats.MsgIdHdr, ev.ID)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		s.t.Fatal(err)
	}
}

// status publishes an agent.status and, when the effective status moves,
// an agent.availability of the same change.
func (s *stream) agent(site, at, agent string, status, prev, eff, prevEff presence.Status) {
	s.t.Helper()
	if status != prev {
		s.publish(site, events.TypeAgentStatus, at, events.AgentStatusData{Agent: agent, Status: status, Previous: prev, By: events.By{Kind: "device", ID: "d"}})
	}
	if eff != prevEff {
		s.publish(site, events.TypeAgentAvailability, at, events.AgentAvailabilityData{Agent: agent, Status: eff, Previous: prevEff, Cause: events.CauseStatusSet})
	}
}

func (s *stream) widget(site, at, group string, status presence.Status, reason presence.Reason) {
	s.t.Helper()
	s.publish(site, events.TypeWidgetStatus, at, events.WidgetStatusData{Group: group, Status: status, Reason: reason})
}

// startIndex runs an index on the stream until the test ends (or the
// returned func is called) and waits until it is ready.
func startIndex(t *testing.T, js jetstream.JetStream, now time.Time) (*history.Index, func()) {
	t.Helper()
	x, err := history.New(history.Config{JetStream: js, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case <-x.Loaded():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("index not ready")
	}
	return x, stop
}

const (
	on  = presence.Online
	off = presence.Offline
	bz  = presence.Busy
)

func ai(from, to string, st, eff presence.Status) history.AgentInterval {
	return history.AgentInterval{From: protocol.Time(utc(from)), To: protocol.Time(utc(to)), Status: st, Effective: eff}
}

func wi(from, to string, st presence.Status, r presence.Reason) history.WidgetInterval {
	return history.WidgetInterval{From: protocol.Time(utc(from)), To: protocol.Time(utc(to)), Status: st, Reason: r}
}

// same compares a and b as JSON, which is what the API answers.
func same(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestPragueDST: 2026-03-29 has 23 hours in Europe/Prague (02:00 CET is
// 03:00 CEST); the report counts them, and the day after is cut at now.
func TestPragueDST(t *testing.T) {
	s := openStream(t)
	const site = "acme"
	// 21:00 CET on the 28th.
	s.agent(site, "2026-03-28T20:00:00Z", "alice", on, off, on, off)
	s.widget(site, "2026-03-28T20:00:00Z", "", on, presence.ReasonAgentsOnline)
	// 03:30 CEST: alice's device drops for good.
	s.publish(site, events.TypeAgentAvailability, "2026-03-29T01:30:00Z", events.AgentAvailabilityData{Agent: "alice", Status: off, Previous: on, Cause: events.CauseGraceExpired})
	s.widget(site, "2026-03-29T01:30:00Z", "", off, presence.ReasonNoAgents)
	s.agent(site, "2026-03-29T10:00:00Z", "bob", on, off, on, off)
	s.widget(site, "2026-03-29T10:00:00Z", "", on, presence.ReasonAgentsOnline)
	s.publish(site, events.TypeAgentAvailability, "2026-03-29T12:00:00Z", events.AgentAvailabilityData{Agent: "bob", Status: off, Previous: on, Cause: events.CauseBye})
	s.widget(site, "2026-03-29T12:00:00Z", "", off, presence.ReasonNoAgents)
	// alice chooses busy while she has no device: effective stays offline.
	s.publish(site, events.TypeAgentStatus, "2026-03-29T20:00:00Z", events.AgentStatusData{Agent: "alice", Status: bz, Previous: on, By: events.By{Kind: "admin", ID: "ops"}})
	s.publish(site, events.TypeAgentAvailability, "2026-03-30T05:00:00Z", events.AgentAvailabilityData{Agent: "alice", Status: bz, Previous: off, Cause: events.CauseConnected})

	now := utc("2026-03-30T12:00:00Z")
	x, stop := startIndex(t, s.js, now)
	prague, _ := time.LoadLocation("Europe/Prague")
	day := func(s string) time.Time { d, _ := time.ParseInLocation(time.DateOnly, s, prague); return d }

	tl, err := x.Timeline(context.Background(), site, utc("2026-03-28T20:00:00Z"), utc("2026-03-31T00:00:00Z"), history.Selection{Agent: func(id string) bool { return id == "alice" }})
	if err != nil {
		t.Fatal(err)
	}
	want := []history.AgentInterval{
		ai("2026-03-28T20:00:00Z", "2026-03-29T01:30:00Z", on, on),
		ai("2026-03-29T01:30:00Z", "2026-03-29T20:00:00Z", on, off),
		ai("2026-03-29T20:00:00Z", "2026-03-30T05:00:00Z", bz, off),
		ai("2026-03-30T05:00:00Z", "2026-03-30T12:00:00Z", bz, bz), // clipped to now
	}
	if len(tl.Agents) != 1 || !same(tl.Agents[0].Intervals, want) {
		t.Fatalf("alice: got %+v\nwant %+v", tl.Agents, want)
	}
	if !same(tl.To, protocol.Time(now)) {
		t.Fatalf("to: got %v, want now", tl.To)
	}
	wantW := []history.WidgetInterval{
		wi("2026-03-28T20:00:00Z", "2026-03-29T01:30:00Z", on, presence.ReasonAgentsOnline),
		wi("2026-03-29T01:30:00Z", "2026-03-29T10:00:00Z", off, presence.ReasonNoAgents),
		wi("2026-03-29T10:00:00Z", "2026-03-29T12:00:00Z", on, presence.ReasonAgentsOnline),
		wi("2026-03-29T12:00:00Z", "2026-03-30T12:00:00Z", off, presence.ReasonNoAgents),
	}
	if len(tl.Widgets) != 1 || !same(tl.Widgets[0].Intervals, wantW) {
		t.Fatalf("widgets: got %+v\nwant %+v", tl.Widgets, wantW)
	}

	rep, err := x.Report(context.Background(), site, day("2026-03-29"), day("2026-04-02"), prague, history.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Days) != 2 {
		t.Fatalf("got %d days, want 2 (the days after now are left out)", len(rep.Days))
	}
	d := rep.Days[0]
	// The 23-hour day: 2026-03-28T23:00Z to 2026-03-29T22:00Z.
	if !same(d.From, protocol.Time(utc("2026-03-28T23:00:00Z"))) || !same(d.To, protocol.Time(utc("2026-03-29T22:00:00Z"))) {
		t.Fatalf("day: %v to %v", d.From, d.To)
	}
	wantAgents := []history.AgentDay{
		{ID: "alice", Online: 9000, Busy: 0, Offline: 73800}, // 23:00-01:30 online
		{ID: "bob", Online: 7200, Busy: 0, Offline: 75600},   // 10:00-12:00
	}
	if !reflect.DeepEqual(d.Agents, wantAgents) {
		t.Fatalf("agents: got %+v, want %+v", d.Agents, wantAgents)
	}
	cov := 16200.0 / 82800
	gapFrom := protocol.Time(utc("2026-03-29T12:00:00Z"))
	wantWidget := []history.WidgetDay{{Group: "", Inside: 82800, Online: 16200, Coverage: &cov, LongestGap: 36000, LongestGapFrom: &gapFrom}}
	if !same(d.Widgets, wantWidget) {
		t.Fatalf("widgets: got %+v, want %+v", d.Widgets, wantWidget)
	}
	d = rep.Days[1] // 2026-03-29T22:00Z to now, 14 hours
	if want := (history.AgentDay{ID: "alice", Busy: 25200, Offline: 25200}); d.Agents[0] != want {
		t.Fatalf("alice on the 30th: got %+v, want %+v", d.Agents[0], want)
	}
	if d.Widgets[0].Inside != 50400 || d.Widgets[0].Online != 0 || *d.Widgets[0].Coverage != 0 {
		t.Fatalf("widget on the 30th: got %+v", d.Widgets[0])
	}

	// The history starts at 21:00 on the 28th: a report from the 27th
	// starts there, with the 28th's last three hours (midnight in Prague
	// is 23:00Z in winter), and the 27th left out.
	early, err := x.Report(context.Background(), site, day("2026-03-27"), day("2026-03-29"), prague, history.Selection{})
	if err != nil {
		t.Fatalf("a report from before the history: %v", err)
	}
	if early.From != "2026-03-28" || len(early.Days) != 2 || early.Days[0].Date != "2026-03-28" ||
		!same(early.Days[0].From, protocol.Time(utc("2026-03-28T20:00:00Z"))) || !same(early.Days[0].To, protocol.Time(utc("2026-03-28T23:00:00Z"))) {
		t.Fatalf("a report from before the history: got from %s, days %+v; want the 28th from 20:00Z to 23:00Z, then the 29th", early.From, early.Days)
	}
	if want := (history.AgentDay{ID: "alice", Online: 10800}); early.Days[0].Agents[0] != want {
		t.Fatalf("alice on the 28th: got %+v, want %+v", early.Days[0].Agents[0], want)
	}
	if w := early.Days[0].Widgets[0]; w.Inside != 10800 || w.Online != 10800 || w.Coverage == nil || *w.Coverage != 1 || w.LongestGap != 0 {
		t.Fatalf("the widget on the 28th: got %+v, want 3 h inside, all online", w)
	}
	tl, err = x.Timeline(context.Background(), site, utc("2026-03-28T00:00:00Z"), utc("2026-03-28T21:00:00Z"), history.Selection{})
	if err != nil || !same(tl.From, protocol.Time(utc("2026-03-28T20:00:00Z"))) {
		t.Fatalf("a timeline from before the history: got %v, %v; want it from the history's start", tl.From, err)
	}
	// A range that ends before the history starts has none.
	var pe *history.ParamError
	if _, err := x.Timeline(context.Background(), site, utc("2026-03-27T00:00:00Z"), utc("2026-03-28T20:00:00Z"), history.Selection{}); !errors.As(err, &pe) || pe.Param != "from" ||
		!strings.Contains(pe.Error(), "starts at 2026-03-28T20:00:00.000Z") {
		t.Fatalf("a timeline before the history: got %v, want an error naming from and the start", err)
	}
	if _, err := x.Timeline(context.Background(), site, now, now.Add(-time.Hour), history.Selection{}); !errors.As(err, &pe) || pe.Param != "from" {
		t.Fatalf("from after to: got %v", err)
	}

	// An index whose clock says November has 90 days of history, from
	// 2026-08-03 on.
	late, _ := startIndex(t, s.js, utc("2026-11-01T00:00:00Z"))
	if _, err := late.Report(context.Background(), site, day("2026-08-02"), day("2026-08-03"), prague, history.Selection{}); !errors.As(err, &pe) || pe.Param != "from" {
		t.Fatalf("a report before the retention: got %v, want an error naming from", err)
	}

	// A new index (every replica restarted) answers the same.
	stop()
	again, _ := startIndex(t, s.js, now)
	rep2, err := again.Report(context.Background(), site, day("2026-03-29"), day("2026-04-02"), prague, history.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if !same(rep, rep2) {
		t.Fatalf("after a restart: got %+v, want %+v", rep2, rep)
	}
}

// TestOctoberDST: 2026-10-25 has 25 hours in Europe/Prague.
func TestOctoberDST(t *testing.T) {
	s := openStream(t)
	s.agent("acme", "2026-10-24T12:00:00Z", "alice", on, off, on, off)
	s.widget("acme", "2026-10-24T12:00:00Z", "", on, presence.ReasonAgentsOnline)
	x, _ := startIndex(t, s.js, utc("2026-10-27T00:00:00Z"))
	prague, _ := time.LoadLocation("Europe/Prague")
	d := time.Date(2026, 10, 25, 0, 0, 0, 0, prague)
	rep, err := x.Report(context.Background(), "acme", d, d, prague, history.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Days[0]; got.Agents[0].Online != 90000 || got.Widgets[0].Inside != 90000 || *got.Widgets[0].Coverage != 1 {
		t.Fatalf("got %+v", got)
	}
}

// TestOvernightGroupHours: group night has its own hours, 22:00-06:00,
// open across midnight; dave is in no group and counts for it, carol is
// in it; the site has no hours.
func TestOvernightGroupHours(t *testing.T) {
	s := openStream(t)
	const site = "acme"
	s.widget(site, "2026-11-30T21:00:00Z", "night", off, presence.ReasonOutsideHours)
	s.widget(site, "2026-11-30T21:00:00Z", "", off, presence.ReasonNoAgents)
	s.widget(site, "2026-11-30T22:00:00Z", "night", off, presence.ReasonNoAgents) // opens
	s.agent(site, "2026-11-30T23:00:00Z", "dave", on, off, on, off)
	s.widget(site, "2026-11-30T23:00:00Z", "", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-11-30T23:00:00Z", "night", on, presence.ReasonAgentsOnline)
	s.agent(site, "2026-12-01T02:00:00Z", "dave", bz, on, bz, on)
	s.widget(site, "2026-12-01T02:00:00Z", "", bz, presence.ReasonAllBusy)
	s.widget(site, "2026-12-01T02:00:00Z", "night", bz, presence.ReasonAllBusy)
	s.agent(site, "2026-12-01T03:00:00Z", "carol", on, off, on, off)
	s.widget(site, "2026-12-01T03:00:00Z", "", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-12-01T03:00:00Z", "night", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-12-01T06:00:00Z", "night", off, presence.ReasonOutsideHours) // closes
	s.publish(site, events.TypeAgentAvailability, "2026-12-01T07:00:00Z", events.AgentAvailabilityData{Agent: "carol", Status: off, Previous: on, Cause: events.CauseBye})
	s.widget(site, "2026-12-01T07:00:00Z", "", bz, presence.ReasonAllBusy)
	s.widget(site, "2026-12-01T22:00:00Z", "night", bz, presence.ReasonAllBusy) // opens
	s.agent(site, "2026-12-01T23:30:00Z", "dave", on, bz, on, bz)
	s.widget(site, "2026-12-01T23:30:00Z", "", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-12-01T23:30:00Z", "night", on, presence.ReasonAgentsOnline)

	x, _ := startIndex(t, s.js, utc("2026-12-02T01:00:00Z"))
	d1, d2 := utc("2026-12-01T00:00:00Z"), utc("2026-12-02T00:00:00Z")
	rep, err := x.Report(context.Background(), site, d1, d2, time.UTC, history.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Days) != 2 {
		t.Fatalf("got %d days", len(rep.Days))
	}
	day := rep.Days[0]
	wantAgents := []history.AgentDay{
		{ID: "carol", Online: 14400, Offline: 72000},        // 03:00-07:00
		{ID: "dave", Online: 9000, Busy: 77400, Offline: 0}, // 00:00-02:00, 23:30-24:00
	}
	if !reflect.DeepEqual(day.Agents, wantAgents) {
		t.Fatalf("agents: got %+v, want %+v", day.Agents, wantAgents)
	}
	siteCov, nightCov := 23400.0/86400, 19800.0/28800
	siteGap, nightGap := protocol.Time(utc("2026-12-01T07:00:00Z")), protocol.Time(utc("2026-12-01T22:00:00Z"))
	wantWidgets := []history.WidgetDay{
		// online 00:00-02:00, 03:00-07:00, 23:30-24:00; longest gap 07:00-23:30
		{Group: "", Inside: 86400, Online: 23400, Coverage: &siteCov, LongestGap: 59400, LongestGapFrom: &siteGap},
		// inside 00:00-06:00 and 22:00-24:00; online 00:00-02:00,
		// 03:00-06:00, 23:30-24:00; longest gap 22:00-23:30
		{Group: "night", Inside: 28800, Online: 19800, Coverage: &nightCov, LongestGap: 5400, LongestGapFrom: &nightGap},
	}
	if !same(day.Widgets, wantWidgets) {
		t.Fatalf("widgets: got %+v\nwant %+v", day.Widgets, wantWidgets)
	}
	day = rep.Days[1] // 00:00 to now, 01:00: night open, dave online
	if w := day.Widgets[1]; w.Inside != 3600 || w.Online != 3600 || *w.Coverage != 1 || w.LongestGap != 0 || w.LongestGapFrom != nil {
		t.Fatalf("night on the 2nd: got %+v", w)
	}

	// Only the night widget.
	night := "night"
	rep, err = x.Report(context.Background(), site, d1, d1, time.UTC, history.Selection{Group: &night})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Days[0].Widgets) != 1 || rep.Days[0].Widgets[0].Group != "night" {
		t.Fatalf("group selection: got %+v", rep.Days[0].Widgets)
	}
	csv := rep.CSV()
	if len(csv) != 1+3 || csv[0][0] != "date" || csv[3][1] != "group" || csv[3][2] != "night" || csv[3][6] != "28800" || csv[3][7] != "19800" || csv[3][8] != "0.6875" || csv[3][9] != "5400" {
		t.Fatalf("CSV: got %q", csv)
	}
	// The timeline of the night widget, overnight.
	tl, err := x.Timeline(context.Background(), site, utc("2026-11-30T21:00:00Z"), utc("2026-12-01T08:00:00Z"), history.Selection{Group: &night, Agent: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	want := []history.WidgetInterval{
		wi("2026-11-30T21:00:00Z", "2026-11-30T22:00:00Z", off, presence.ReasonOutsideHours),
		wi("2026-11-30T22:00:00Z", "2026-11-30T23:00:00Z", off, presence.ReasonNoAgents),
		wi("2026-11-30T23:00:00Z", "2026-12-01T02:00:00Z", on, presence.ReasonAgentsOnline),
		wi("2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", bz, presence.ReasonAllBusy),
		wi("2026-12-01T03:00:00Z", "2026-12-01T06:00:00Z", on, presence.ReasonAgentsOnline),
		wi("2026-12-01T06:00:00Z", "2026-12-01T08:00:00Z", off, presence.ReasonOutsideHours),
	}
	if len(tl.Agents) != 0 || len(tl.Widgets) != 1 || !same(tl.Widgets[0].Intervals, want) {
		t.Fatalf("timeline: got %+v\nwant %+v", tl, want)
	}
}

// schedules are working hours by "site/group".
type schedules map[string]*presence.Schedule

func (s schedules) Schedule(site, group string) (*presence.Schedule, bool) {
	sc, ok := s[site+"/"+group]
	return sc, ok
}

// TestWidgetCoversTheRange: a widget's intervals cover the range asked
// for. Before its first event it was offline: no_agents, or outside_hours
// where its working hours (as the hub has them) say so; a widget whose
// first event is after the range is offline over all of it; one with an
// event before the range starts from that event's state.
func TestWidgetCoversTheRange(t *testing.T) {
	s := openStream(t)
	const site = "acme"
	s.widget(site, "2026-12-01T06:00:00Z", "early", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-12-01T10:00:00Z", "", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-12-01T10:00:00Z", "day", on, presence.ReasonAgentsOnline)
	s.widget(site, "2026-12-01T11:00:00Z", "", off, presence.ReasonNoAgents)
	s.widget(site, "2026-12-01T11:00:00Z", "day", off, presence.ReasonNoAgents)
	s.widget(site, "2026-12-01T20:00:00Z", "late", on, presence.ReasonAgentsOnline)
	x, _ := startIndex(t, s.js, utc("2026-12-01T21:00:00Z"))
	// group day is open 09:00-17:00 UTC on Tuesdays (2026-12-01 is one).
	dayHours := &presence.Schedule{Timezone: "UTC", Weekly: map[string][]presence.Interval{"tuesday": {{From: "09:00", To: "17:00"}}}}
	x.SetHours(schedules{site + "/day": dayHours})
	tl, err := x.Timeline(context.Background(), site, utc("2026-12-01T08:00:00Z"), utc("2026-12-01T12:00:00Z"), history.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]history.WidgetInterval{
		"": {
			wi("2026-12-01T08:00:00Z", "2026-12-01T10:00:00Z", off, presence.ReasonNoAgents),
			wi("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", on, presence.ReasonAgentsOnline),
			wi("2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z", off, presence.ReasonNoAgents),
		},
		"day": {
			wi("2026-12-01T08:00:00Z", "2026-12-01T09:00:00Z", off, presence.ReasonOutsideHours),
			wi("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", off, presence.ReasonNoAgents),
			wi("2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", on, presence.ReasonAgentsOnline),
			wi("2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z", off, presence.ReasonNoAgents),
		},
		// Its event before the range says what it showed at from.
		"early": {wi("2026-12-01T08:00:00Z", "2026-12-01T12:00:00Z", on, presence.ReasonAgentsOnline)},
		// No event in the range: offline all of it.
		"late": {wi("2026-12-01T08:00:00Z", "2026-12-01T12:00:00Z", off, presence.ReasonNoAgents)},
	}
	got := map[string][]history.WidgetInterval{}
	for _, w := range tl.Widgets {
		got[w.Group] = w.Intervals
	}
	if !same(got, want) {
		t.Fatalf("widgets:\ngot  %+v\nwant %+v", got, want)
	}
	// The report counts the hole as offline inside hours (or outside).
	rep, err := x.Report(context.Background(), site, utc("2026-12-01T00:00:00Z"), utc("2026-12-01T00:00:00Z"), time.UTC, history.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Days[0].Widgets {
		// The history starts at the first event, 06:00; now is 21:00;
		// day's hours open at 09:00 (after 10:00 its events say).
		wantInside := map[string]float64{"": 15 * 3600, "day": 12 * 3600, "early": 15 * 3600, "late": 15 * 3600}[w.Group]
		if w.Inside != wantInside {
			t.Errorf("report, widget %q: inside %v, want %v", w.Group, w.Inside, wantInside)
		}
	}
}
