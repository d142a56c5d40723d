package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// latencyStats summarises a set of durations, in milliseconds.
type latencyStats struct {
	Count int `json:"count"`
	// SampledOneIn is N when only one value in N was kept for the
	// percentiles (Max stays exact); omitted when all were kept.
	SampledOneIn int     `json:"sampled_one_in,omitempty"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
}

type connectStats struct {
	Sockets   int          `json:"sockets"`
	TotalMS   float64      `json:"total_ms"`
	PerSec    float64      `json:"per_sec"`
	PerSocket latencyStats `json:"per_socket"`
}

type changeSummary struct {
	Mode             string       `json:"mode"`
	Planned          int          `json:"planned"`
	Sent             int          `json:"sent"`
	SendMS           float64      `json:"send_ms"`
	BehindMaxMS      float64      `json:"sender_behind_max_ms"`
	DurationMS       float64      `json:"duration_ms"` // first send to last delivery
	DeviceLatency    latencyStats `json:"device_latency"`
	WidgetLatency    latencyStats `json:"widget_latency"`
	Expected         int64        `json:"expected"`
	Deliveries       int64        `json:"deliveries"`
	DeviceDeliveries int64        `json:"device_deliveries"`
	WidgetDeliveries int64        `json:"widget_deliveries"`
	DeliveriesPerSec float64      `json:"deliveries_per_sec"`
	Lost             int64        `json:"lost"`
	LostWidget       int64        `json:"lost_widget"`
	LostDevice       int64        `json:"lost_device"`
	Duplicates       int64        `json:"duplicates"`
	Unexpected       int64        `json:"unexpected"`
	Rejected         int64        `json:"rejected"`
	RejectedSample   string       `json:"rejected_sample,omitempty"`
	SendError        string       `json:"send_error,omitempty"`
	// GeneratorCPUSeconds is this process's own CPU time during the change
	// phase: when it nears the elapsed time times the cores it shares with
	// the hub, the latencies measure the machine, not the hub.
	GeneratorCPUSeconds float64 `json:"generator_cpu_seconds"`

	firstSend int64
}

type stormSummary struct {
	Widgets     int          `json:"widgets"`
	RatePerSec  float64      `json:"rate_per_sec,omitempty"` // 0: all at once
	CloseMS     float64      `json:"close_ms"`
	Failed      int          `json:"failed"`
	FirstError  string       `json:"first_error,omitempty"`
	Dial        latencyStats `json:"dial"`
	Snapshot    latencyStats `json:"time_to_snapshot"`
	TotalMS     float64      `json:"total_ms"` // until the last widget had its snapshot
	Snapshots   int          `json:"snapshots"`
	Missing     int          `json:"missing"`
	WrongStatus int          `json:"wrong_status"`
}

type hubSummary struct {
	PID                   int     `json:"pid"`
	Sockets               float64 `json:"sockets_assumed"`
	CPUSeconds            float64 `json:"cpu_seconds,omitempty"`
	CPUSecondsPer1000     float64 `json:"cpu_seconds_per_1000_deliveries,omitempty"`
	RSSBeforeBytes        int64   `json:"rss_before_bytes"`
	RSSAfterBytes         int64   `json:"rss_after_bytes"`
	RSSPerConnectionBytes float64 `json:"rss_per_connection_bytes"`
	// CPU from before connecting until every widget had its initial state,
	// and, with --storm, during the storm (closing and reopening).
	CPUConnectSeconds            float64 `json:"cpu_connect_seconds"`
	CPUSecondsPer1000Connections float64 `json:"cpu_seconds_per_1000_connections"`
	CPUStormSeconds              float64 `json:"cpu_storm_seconds,omitempty"`
}

type summary struct {
	Scenario        string   `json:"scenario"`
	URLs            []string `json:"urls"`
	Sites           int      `json:"sites"`
	Groups          int      `json:"groups"`
	Widgets         int      `json:"widgets"`
	Agents          int      `json:"agents"`
	DevicesPerAgent int      `json:"devices_per_agent"`
	Connect         struct {
		TotalMS float64      `json:"total_ms"`
		Agents  connectStats `json:"agent_devices"` // dial + hello + welcome
		Widgets connectStats `json:"widgets"`       // dial
	} `json:"connect"`
	InitialStateMS float64        `json:"initial_state_ms"`
	Changes        *changeSummary `json:"changes,omitempty"`
	Storm          *stormSummary  `json:"storm,omitempty"`
	Hubs           []hubSummary   `json:"hubs,omitempty"`
	ClosedByHub    map[string]int `json:"closed_by_hub,omitempty"`
	HubError       string         `json:"hub_error,omitempty"`
}

func (l *loadTest) newSummary() *summary {
	c := l.cfg
	agents := len(l.agents)
	devices := c.devices
	if agents == 0 {
		devices = 0
	}
	return &summary{Scenario: c.scenario, URLs: c.urls, Sites: c.sites, Groups: c.groups, Widgets: c.widgets, Agents: agents, DevicesPerAgent: devices}
}

func (s *summary) setConnect(agents, widgets *connectResult, total time.Duration) {
	s.Connect.TotalMS = ms(total)
	s.Connect.Agents = connectStatsOf(agents)
	s.Connect.Widgets = connectStatsOf(widgets)
}

func connectStatsOf(r *connectResult) connectStats {
	cs := connectStats{Sockets: r.sockets, TotalMS: ms(r.elapsed), PerSocket: latencyOf(durationsMicros(r.each), 1)}
	if r.elapsed > 0 {
		cs.PerSec = float64(r.sockets) / r.elapsed.Seconds()
	}
	return cs
}

// collect adds what the readers saw; every reader has exited.
func (l *loadTest) collect(s *summary) {
	l.mu.Lock()
	if len(l.closedByHub) > 0 {
		s.ClosedByHub = l.closedByHub
	}
	l.mu.Unlock()
	if cs := s.Changes; cs != nil {
		var devLat, widLat []int32
		var widMax int64
		for _, a := range l.agents {
			want := l.changesOf(a.idx, cs.Sent)
			for _, d := range a.devices {
				cs.DeviceDeliveries += int64(d.got)
				cs.LostDevice += int64(max(0, want-d.got))
				cs.Duplicates += int64(d.dups)
				cs.Unexpected += int64(d.unexpected)
				cs.Rejected += int64(d.rejected)
				if d.rejected > 0 && cs.RejectedSample == "" {
					cs.RejectedSample = d.lastError
				}
				devLat = append(devLat, d.lat...)
			}
		}
		for _, w := range l.widgets {
			if w.agent >= 0 {
				cs.LostWidget += int64(max(0, l.changesOf(w.agent, cs.Sent)-w.got))
			}
			cs.WidgetDeliveries += int64(w.got)
			cs.Duplicates += int64(w.dups)
			cs.Unexpected += int64(w.unexpected)
			widLat = append(widLat, w.lat...)
			widMax = max(widMax, w.maxLat)
		}
		cs.Deliveries = cs.DeviceDeliveries + cs.WidgetDeliveries
		cs.Lost = cs.LostDevice + cs.LostWidget
		if cs.DurationMS > 0 {
			cs.DeliveriesPerSec = float64(cs.Deliveries) / (cs.DurationMS / 1000)
		}
		cs.DeviceLatency = latencyOf(devLat, 1)
		cs.WidgetLatency = latencyOf(widLat, l.sampleEvery)
		cs.WidgetLatency.Count = int(cs.WidgetDeliveries)
		if cs.WidgetDeliveries > 0 {
			cs.WidgetLatency.Max = float64(widMax) / 1e6
		}
	}
	if st := s.Storm; st != nil {
		var snaps []int32
		var last int64
		for _, w := range l.widgets {
			if w.snapAt == 0 {
				continue
			}
			snaps = append(snaps, int32(min(w.snapAt/1000, math.MaxInt32)))
			last = max(last, w.snapAt)
			if w.snapStatus != l.targets[w.target].initial {
				st.WrongStatus++
			}
		}
		st.Snapshots = len(snaps)
		st.Missing = st.Widgets - st.Failed - st.Snapshots
		st.Snapshot = latencyOf(snaps, 1)
		st.TotalMS = float64(last) / 1e6
	}
}

// problems lists what makes the run fail.
func (s *summary) problems() []string {
	var out []string
	if cs := s.Changes; cs != nil {
		if cs.Lost > 0 {
			out = append(out, fmt.Sprintf("LOST %d expected frame(s) (%d widget, %d device)", cs.Lost, cs.LostWidget, cs.LostDevice))
		}
		if cs.Duplicates > 0 {
			out = append(out, fmt.Sprintf("DUPLICATES: %d frame(s)", cs.Duplicates))
		}
		if cs.Unexpected > 0 {
			out = append(out, fmt.Sprintf("UNEXPECTED: %d frame(s) that no change explains", cs.Unexpected))
		}
		if cs.Rejected > 0 {
			out = append(out, fmt.Sprintf("REJECTED: the hub refused %d change(s) (%s); the expected frames and the latencies after a refused change are not reliable", cs.Rejected, cs.RejectedSample))
		}
		if cs.SendError != "" {
			out = append(out, "SEND FAILED: "+cs.SendError)
		}
		if cs.Deliveries != cs.Expected && cs.Lost == 0 {
			out = append(out, fmt.Sprintf("DELIVERIES %d != expected %d", cs.Deliveries, cs.Expected))
		}
	}
	if st := s.Storm; st != nil {
		if st.Failed > 0 {
			out = append(out, fmt.Sprintf("STORM: %d widget(s) failed to reconnect (%s)", st.Failed, st.FirstError))
		}
		if st.Missing > 0 {
			out = append(out, fmt.Sprintf("STORM: %d reconnected widget(s) got no snapshot in time", st.Missing))
		}
		if st.WrongStatus > 0 {
			out = append(out, fmt.Sprintf("STORM: %d snapshot(s) with the wrong status", st.WrongStatus))
		}
	}
	if s.HubError != "" {
		out = append(out, "HUB PROCESS: "+s.HubError)
	}
	if len(s.ClosedByHub) > 0 {
		var parts []string
		for _, k := range slices.Sorted(mapKeys(s.ClosedByHub)) {
			parts = append(parts, fmt.Sprintf("%s x%d", k, s.ClosedByHub[k]))
		}
		out = append(out, "SOCKETS CLOSED during the test (kind, close code): "+strings.Join(parts, ", "))
	}
	return out
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *summary) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func (s *summary) writeText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("presence-load: scenario %s, %d site(s), %d group(s) per site, %d widget(s), %d agent(s) x %d device(s), %d hub URL(s)",
		s.Scenario, s.Sites, s.Groups, s.Widgets, s.Agents, s.DevicesPerAgent, len(s.URLs))
	p("connect: %d socket(s) in %s", s.Connect.Agents.Sockets+s.Connect.Widgets.Sockets, fmtMS(s.Connect.TotalMS))
	if c := s.Connect.Agents; c.Sockets > 0 {
		p("  agent devices: %d in %s (%.0f/s); per socket (dial+hello+welcome) p50 %s p99 %s max %s", c.Sockets, fmtMS(c.TotalMS), c.PerSec, fmtMS(c.PerSocket.P50), fmtMS(c.PerSocket.P99), fmtMS(c.PerSocket.Max))
	}
	if c := s.Connect.Widgets; c.Sockets > 0 {
		p("  widgets:       %d in %s (%.0f/s); per socket (dial) p50 %s p99 %s max %s", c.Sockets, fmtMS(c.TotalMS), c.PerSec, fmtMS(c.PerSocket.P50), fmtMS(c.PerSocket.P99), fmtMS(c.PerSocket.Max))
	}
	p("initial state: every widget and agent as expected after %s", fmtMS(s.InitialStateMS))
	if cs := s.Changes; cs != nil {
		p("changes: %d of %d sent (%s) over %s; sender at most %s behind schedule", cs.Sent, cs.Planned, cs.Mode, fmtMS(cs.SendMS), fmtMS(cs.BehindMaxMS))
		p("latency to the agent's other devices: %s", fmtLatency(cs.DeviceLatency))
		p("latency to widgets:                   %s", fmtLatency(cs.WidgetLatency))
		p("deliveries: %d of %d expected (%d device, %d widget), %.0f/s over %s (first change to last delivery)",
			cs.Deliveries, cs.Expected, cs.DeviceDeliveries, cs.WidgetDeliveries, cs.DeliveriesPerSec, fmtMS(cs.DurationMS))
		p("lost: %d%s", cs.Lost, loud(cs.Lost, fmt.Sprintf(" (%d widget, %d device) did not arrive within --timeout after the last change", cs.LostWidget, cs.LostDevice)))
		p("duplicates: %d%s", cs.Duplicates, loud(cs.Duplicates, ""))
		if cs.Unexpected > 0 {
			p("unexpected frames: %d%s", cs.Unexpected, loud(cs.Unexpected, ""))
		}
		if cs.Rejected > 0 {
			p("changes refused by the hub: %d%s (%s)", cs.Rejected, loud(cs.Rejected, ""), cs.RejectedSample)
		}
		if cs.SendError != "" {
			p("!!! sending stopped: %s", cs.SendError)
		}
		p("generator CPU during changes: %.2fs", cs.GeneratorCPUSeconds)
	}
	if st := s.Storm; st != nil {
		how := "all at once"
		if st.RatePerSec > 0 {
			how = fmt.Sprintf("at most %.0f/s", st.RatePerSec)
		}
		p("storm: closed %d widget(s) in %s, reopened %s", st.Widgets, fmtMS(st.CloseMS), how)
		p("  dial:             %s", fmtLatency(st.Dial))
		p("  time to snapshot: %s", fmtLatency(st.Snapshot))
		p("  every widget had its snapshot after %s (%d/%d)", fmtMS(st.TotalMS), st.Snapshots, st.Widgets)
		if st.Failed > 0 {
			p("  !!! %d widget(s) failed to reconnect: %s", st.Failed, st.FirstError)
		}
		if st.Missing > 0 {
			p("  !!! %d widget(s) got no snapshot within --timeout", st.Missing)
		}
		if st.WrongStatus > 0 {
			p("  !!! %d snapshot(s) had the wrong status", st.WrongStatus)
		}
	}
	for _, h := range s.Hubs {
		line := fmt.Sprintf("hub pid %d: RSS %s before, %s after connecting = %s per connection (%.0f sockets assumed)",
			h.PID, fmtBytes(float64(h.RSSBeforeBytes)), fmtBytes(float64(h.RSSAfterBytes)), fmtBytes(h.RSSPerConnectionBytes), h.Sockets)
		line += fmt.Sprintf("; CPU %.2fs connecting = %.3fs per 1,000 connections", h.CPUConnectSeconds, h.CPUSecondsPer1000Connections)
		if s.Changes != nil {
			line += fmt.Sprintf("; CPU %.2fs during changes = %.4fs per 1,000 deliveries", h.CPUSeconds, h.CPUSecondsPer1000)
		}
		if s.Storm != nil {
			line += fmt.Sprintf("; CPU %.2fs during the storm", h.CPUStormSeconds)
		}
		p("%s", line)
		if h.RSSPerConnectionBytes <= 0 && h.Sockets > 0 {
			p("  (RSS did not grow: the hub still held memory from earlier sockets; measure RSS on a freshly started hub)")
		}
	}
	for _, k := range slices.Sorted(mapKeys(s.ClosedByHub)) {
		p("!!! sockets closed during the test: %s x%d", k, s.ClosedByHub[k])
	}
}

func loud(n int64, detail string) string {
	if n == 0 {
		return ""
	}
	return "   <<<<<<<<<< !!! NOT ZERO" + detail
}

func fmtLatency(l latencyStats) string {
	if l.Count == 0 {
		return "no samples"
	}
	s := fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (%d)", fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), l.Count)
	if l.SampledOneIn > 1 {
		s += fmt.Sprintf(" percentiles from 1 in %d", l.SampledOneIn)
	}
	return s
}

func fmtMS(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 1:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

func fmtBytes(b float64) string {
	switch {
	case math.Abs(b) >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case math.Abs(b) >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case math.Abs(b) >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// durationsMicros converts the non-zero durations to microseconds.
func durationsMicros(ds []time.Duration) []int32 {
	out := make([]int32, 0, len(ds))
	for _, d := range ds {
		if d > 0 {
			out = append(out, int32(min(d.Microseconds(), math.MaxInt32)))
		}
	}
	return out
}

// latencyOf sorts micros (microseconds) and takes percentiles from it.
func latencyOf(micros []int32, sampledOneIn int) latencyStats {
	slices.Sort(micros)
	st := latencyStats{Count: len(micros)}
	if sampledOneIn > 1 {
		st.SampledOneIn = sampledOneIn
	}
	if len(micros) == 0 {
		return st
	}
	st.P50 = percentile(micros, 0.50)
	st.P90 = percentile(micros, 0.90)
	st.P99 = percentile(micros, 0.99)
	st.Max = float64(micros[len(micros)-1]) / 1000
	return st
}

// percentile is the nearest-rank q-quantile of sorted, in milliseconds.
func percentile(sorted []int32, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / 1000
}
