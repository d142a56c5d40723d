package transport

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The history API (docs/protocol.md#history): an admin of a site reads its
// timeline and its availability report, from this replica's history index.

func (a *adminAPI) routeHistory() {
	s := a.s
	s.handleFunc("GET /v1/admin/sites/{site}/timeline", a.admin(a.timeline))
	s.handleFunc("GET /v1/admin/sites/{site}/reports/availability", a.admin(a.availabilityReport))
}

// historyOff answers when the hub runs without the history index, and
// reports whether it did.
func (a *adminAPI) historyOff(w http.ResponseWriter) bool {
	s := a.s
	if s.cfg.History != nil {
		return false
	}
	writeError(w, http.StatusNotFound, protocol.CodeNotFound, "history is off on this hub: it needs the event stream (--events-stream)")
	return true
}

func badParam(w http.ResponseWriter, param, msg string) {
	writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, param+": "+msg)
}

// selection builds the agents and widget a request asks for: agent=A that
// agent only; group=G the agents whose current groups include G, those in
// no group (they count for every group), and G's widget.
func (a *adminAPI) selection(w http.ResponseWriter, r *http.Request, t adminTarget, agentParam bool) (history.Selection, bool) {
	s := a.s
	var sel history.Selection
	q := r.URL.Query()
	if agentParam && q.Has("agent") {
		id := q.Get("agent")
		if err := presence.ValidateID("agent", id); err != nil {
			badParam(w, "agent", err.Error())
			return sel, false
		}
		sel.Agent = func(a string) bool { return a == id }
	}
	if q.Has("group") {
		g := q.Get("group")
		if err := presence.ValidateID("group", g); err != nil {
			badParam(w, "group", err.Error())
			return sel, false
		}
		agents, err := s.hub.Agents(t.site)
		if err != nil {
			a.adminFailed(w, "failed to read agents", err)
			return sel, false
		}
		in := make(map[string]bool)
		for _, a := range agents {
			if len(a.Groups) == 0 || slices.Contains(a.Groups, g) {
				in[a.ID] = true
			}
		}
		byAgent := sel.Agent
		sel.Agent = func(a string) bool { return in[a] && (byAgent == nil || byAgent(a)) }
		sel.Group = &g
	}
	return sel, true
}

func (a *adminAPI) timeline(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.historyOff(w) {
		return
	}
	q := r.URL.Query()
	var bounds [2]time.Time
	for i, p := range []string{"from", "to"} {
		v := q.Get(p)
		if v == "" {
			badParam(w, p, "missing; want an RFC 3339 time such as 2026-12-01T09:00:00Z")
			return
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			badParam(w, p, fmt.Sprintf("%q is not an RFC 3339 time such as 2026-12-01T09:00:00Z", protocol.Truncate(v, 40)))
			return
		}
		bounds[i] = at
	}
	sel, ok := a.selection(w, r, t, true)
	if !ok {
		return
	}
	tl, err := s.cfg.History.Timeline(r.Context(), t.site, bounds[0], bounds[1], sel)
	if err != nil {
		a.historyFailed(w, "failed to read the timeline", err)
		return
	}
	writeJSON(w, http.StatusOK, tl)
}

func (a *adminAPI) availabilityReport(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.historyOff(w) {
		return
	}
	q := r.URL.Query()
	tz := q.Get("tz")
	if tz == "" {
		badParam(w, "tz", "missing; want an IANA zone such as Europe/Prague")
		return
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		badParam(w, "tz", fmt.Sprintf("unknown zone %q; want an IANA zone such as Europe/Prague", protocol.Truncate(tz, 40)))
		return
	}
	var dates [2]time.Time
	for i, p := range []string{"from", "to"} {
		v := q.Get(p)
		if v == "" {
			badParam(w, p, "missing; want a date YYYY-MM-DD")
			return
		}
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			badParam(w, p, fmt.Sprintf("%q is not a date YYYY-MM-DD", protocol.Truncate(v, 40)))
			return
		}
		dates[i] = d
	}
	if dates[0].After(dates[1]) {
		badParam(w, "from", "must not be after to")
		return
	}
	sel, ok := a.selection(w, r, t, false)
	if !ok {
		return
	}
	rep, err := s.cfg.History.Report(r.Context(), t.site, dates[0], dates[1], loc, sel)
	if err != nil {
		a.historyFailed(w, "failed to build the report", err)
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/csv") {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="availability-%s-%s-%s.csv"`, t.site, rep.From, rep.To))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.WriteAll(rep.CSV())
}

func (a *adminAPI) historyFailed(w http.ResponseWriter, what string, err error) {
	var pe *history.ParamError
	switch {
	case errors.As(err, &pe):
		badParam(w, pe.Param, pe.Msg)
	case errors.Is(err, history.ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the history is still loading; try again")
	default:
		a.adminFailed(w, what, err)
	}
}
