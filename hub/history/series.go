package history

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

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

func newSiteIndex() *siteIndex {
	return &siteIndex{agents: make(map[string]*series), widgets: make(map[string]*series)}
}

// Kinds of op.
const (
	opStatus       uint8 = iota // agent.status
	opAvailability              // agent.availability
	opWidget                    // widget.status
	opOther                     // an event of another type: only its instant counts
)

// op is what the index reads of one event: its kind, its instant, the
// agent or group it is about and two codes (an agent's status and
// previous status; a widget's status and reason), with seq, its sequence
// in the event stream. chosen says that an agent.availability's status is
// not offline as the event spells it (statusCode reads an unknown status
// as offline). Ops are the events as summaries keep them (summary.go): the
// index is the same whether it applies an event's op decoded from the
// event or from a summary.
type op struct {
	seq uint64
	// stored is when the stream stored the event (ns), for the summary
	// of which it is the last (summary.go); summaries keep no other.
	stored int64
	at     int64
	kind   uint8
	chosen bool
	id     string
	v, w   uint8
}

// decodeOp returns the op of one event, or why it does not decode.
func decodeOp(data []byte) (op, error) {
	var ev envelope
	if err := json.Unmarshal(data, &ev); err != nil {
		return op{}, err
	}
	o := op{at: time.Time(ev.Timestamp).UnixMilli(), kind: opOther}
	switch ev.Type {
	case events.TypeAgentStatus:
		o.kind, o.id, o.v, o.w = opStatus, ev.Data.Agent, statusCode(ev.Data.Status), statusCode(ev.Data.Previous)
	case events.TypeAgentAvailability:
		o.kind, o.id, o.v, o.w = opAvailability, ev.Data.Agent, statusCode(ev.Data.Status), statusCode(ev.Data.Previous)
		o.chosen = ev.Data.Status != presence.Offline
	case events.TypeWidgetStatus:
		o.kind, o.id, o.v, o.w = opWidget, ev.Data.Group, statusCode(ev.Data.Status), reasonCode(ev.Data.Reason)
	}
	return o, nil
}

// apply adds one event of s's site to s, outside any summary: for the
// tests and benchmarks that build an index without a stream.
func (x *Index) apply(s *siteIndex, subject string, data []byte) {
	o, err := decodeOp(data)
	if err != nil {
		x.cfg.Logger.Warn("history: skipping an event that does not decode", "subject", subject, "err", err)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.applyOp(s, o)
}

// applyOp adds one event's op to s; x.mu is held.
func (x *Index) applyOp(s *siteIndex, o op) {
	at := o.at
	if x.first == 0 || at < x.first {
		x.first = at
	}
	cutoff := x.cfg.Now().Add(-x.cfg.Retention).UnixMilli()
	switch o.kind {
	case opStatus:
		sr := get(s.agents, o.id)
		sr.learn(1, o.w)
		last := sr.last()
		sr.add(point{at: at, a: o.v, b: last.b}, cutoff)
	case opAvailability:
		sr := get(s.agents, o.id)
		sr.learn(2, o.w)
		last := sr.last()
		p := point{at: at, a: last.a, b: o.v}
		if sr.known&1 == 0 && o.chosen {
			// Online or busy is what the agent chose.
			p.a = p.b
		}
		sr.add(p, cutoff)
	case opWidget:
		sr := get(s.widgets, o.id)
		sr.known = 3
		sr.add(point{at: at, a: o.v, b: o.w}, cutoff)
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
