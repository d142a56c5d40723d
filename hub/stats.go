package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Statistics: every replica publishes its own numbers over core NATS each
// StatsInterval and keeps the latest numbers of every replica it hears, so
// any replica can show all of them. Per-site widget counts are gathered on
// demand with one request that every replica answers.

// StatsInterval is how often replicas publish their numbers.
const StatsInterval = time.Second

// replicaTTL is how long a replica that stopped publishing stays listed.
const replicaTTL = 5 * StatsInterval

// counters are a replica's running totals.
type counters struct {
	statusChanges atomic.Uint64 // statuses set through this replica
	framesOut     atomic.Uint64 // frames handed to local subscribers
	slowClosed    atomic.Uint64 // subscribers dropped for a full queue
}

// Connections counts open sockets by kind.
type Connections struct {
	Agent  int `json:"agent"`
	Widget int `json:"widget"`
	Admin  int `json:"admin"`
}

// ReplicaStats is one replica's numbers.
type ReplicaStats struct {
	Hub     string        `json:"hub"`
	Name    string        `json:"name"`
	Started protocol.Time `json:"started"`
	// NATS is the connection's state: "connected" only while JetStream
	// answers too (the admin page marks anything else), else "jetstream
	// not answering" or the connection's state.
	NATS string `json:"nats"`
	// JetStreamError says why JetStream did not answer the last probe.
	JetStreamError      string        `json:"jetstream_error,omitempty"`
	ViewLoaded          bool          `json:"view_loaded"`
	Connections         Connections   `json:"connections"`
	Sessions            int           `json:"sessions"`
	StatusChanges       uint64        `json:"status_changes"`
	StatusChangesPerSec float64       `json:"status_changes_per_sec"`
	FramesOut           uint64        `json:"frames_out"`
	SlowClosed          uint64        `json:"slow_closed"`
	PendingGrace        int           `json:"pending_grace"`
	At                  protocol.Time `json:"at"`
}

// AgentCounts counts a site's agents by effective status.
type AgentCounts struct {
	Online       int `json:"online"`
	Busy         int `json:"busy"`
	Offline      int `json:"offline"`
	Total        int `json:"total"`
	PendingGrace int `json:"pending_grace"`
}

// WidgetCounts counts the widget sockets open for a site on all replicas.
type WidgetCounts struct {
	Total   int            `json:"total"`
	ByGroup map[string]int `json:"by_group"`
}

// SiteStats are one site's numbers.
type SiteStats struct {
	Agents       AgentCounts                `json:"agents"`
	Widgets      WidgetCounts               `json:"widgets"`
	WidgetStatus map[string]presence.Status `json:"widget_status"`
}

// Totals adds up the replicas.
type Totals struct {
	Connections         Connections `json:"connections"`
	StatusChangesPerSec float64     `json:"status_changes_per_sec"`
}

// AdminStats is the stats frame of the admin socket.
type AdminStats struct {
	Type      string         `json:"type"`
	At        protocol.Time  `json:"at"`
	Site      string         `json:"site"`
	SiteStats SiteStats      `json:"site_stats"`
	Replicas  []ReplicaStats `json:"replicas"`
	Totals    Totals         `json:"totals"`
}

// stats is the part of a Hub that publishes this replica's numbers over
// NATS, hears the other replicas', and answers per-site questions; Run's
// stats publisher goroutine runs it.
type stats struct {
	h       *Hub
	started time.Time
	book    replicaBook
	// adminSockets counts the transport's admin sockets; nil until the
	// transport reports them.
	adminSockets atomic.Pointer[func() int]
}

// replicaBook holds the latest numbers heard from every replica.
type replicaBook struct {
	mu       sync.Mutex
	replicas map[string]ReplicaStats // guarded by mu
	seen     map[string]time.Time    // guarded by mu
	// lastChanges and lastAt give this replica's rate; used only by the
	// publisher goroutine.
	lastChanges uint64
	lastAt      time.Time
}

// ReportAdminSockets tells the hub how to count the transport's open admin
// sockets, which it publishes with this replica's numbers and metrics; the
// hub itself holds no admin sockets.
func (h *Hub) ReportAdminSockets(count func() int) { h.stats.adminSockets.Store(&count) }

// connections counts this replica's open sockets by kind.
func (st *stats) connections() Connections {
	h := st.h
	c := Connections{Agent: int(h.sessionCount.Load()), Widget: int(h.widgetSubs.Load())}
	if count := st.adminSockets.Load(); count != nil {
		c.Admin = (*count)()
	}
	return c
}

func (st *stats) statsSubject() string { return "presencehub." + st.h.store.Base() + ".stats" }
func (st *stats) siteStatsSubject() string {
	return "presencehub." + st.h.store.Base() + ".sitestats"
}

// publish publishes this replica's numbers every StatsInterval and
// answers site-stats requests, until ctx is done.
func (st *stats) publish(ctx context.Context) error {
	h := st.h
	nc := h.nc
	sub, err := nc.Subscribe(st.statsSubject(), func(m *nats.Msg) {
		var rs ReplicaStats
		if json.Unmarshal(m.Data, &rs) == nil && rs.Hub != "" {
			st.book.mu.Lock()
			st.book.replicas[rs.Hub] = rs
			st.book.seen[rs.Hub] = time.Now()
			st.book.mu.Unlock()
		}
	})
	if err != nil {
		return fmt.Errorf("failed to subscribe to stats: %w", err)
	}
	defer sub.Unsubscribe()
	req, err := nc.Subscribe(st.siteStatsSubject()+".*", func(m *nats.Msg) {
		site := strings.TrimPrefix(m.Subject, st.siteStatsSubject()+".")
		b, _ := json.Marshal(st.localWidgetCounts(site))
		m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("failed to subscribe to site stats: %w", err)
	}
	defer req.Unsubscribe()

	t := time.NewTicker(StatsInterval)
	defer t.Stop()
	for {
		b, _ := json.Marshal(st.replicaStats())
		if err := nc.Publish(st.statsSubject(), b); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.log.Debug("failed to publish stats", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// replicaStats measures this replica now.
func (st *stats) replicaStats() ReplicaStats {
	h := st.h
	now := h.cfg.Now()
	rs := ReplicaStats{
		Hub:           h.cfg.ID,
		Name:          hostname(),
		Started:       protocol.Time(st.started),
		NATS:          strings.ToLower(h.nc.Status().String()),
		ViewLoaded:    h.Ready(),
		StatusChanges: h.counters.statusChanges.Load(),
		FramesOut:     h.counters.framesOut.Load(),
		SlowClosed:    h.counters.slowClosed.Load(),
		At:            protocol.Time(now),
	}
	if err := h.health.get(); err != nil && h.nc.Status() == nats.CONNECTED {
		rs.NATS, rs.JetStreamError = "jetstream not answering", err.Error()
	}
	rs.Connections = st.connections()
	rs.Sessions = rs.Connections.Agent
	for _, s := range h.view.sites.all() {
		s.mu.Lock()
		rs.PendingGrace += s.presence.Counts().Lingering
		s.mu.Unlock()
	}
	if !st.book.lastAt.IsZero() {
		if secs := now.Sub(st.book.lastAt).Seconds(); secs > 0 {
			rs.StatusChangesPerSec = float64(rs.StatusChanges-st.book.lastChanges) / secs
		}
	}
	st.book.lastChanges, st.book.lastAt = rs.StatusChanges, now
	return rs
}

// Replicas returns the latest numbers of every replica heard from recently,
// sorted by name and id.
func (h *Hub) Replicas() []ReplicaStats {
	h.stats.book.mu.Lock()
	defer h.stats.book.mu.Unlock()
	var out []ReplicaStats
	for id, rs := range h.stats.book.replicas {
		if time.Since(h.stats.book.seen[id]) > replicaTTL {
			delete(h.stats.book.replicas, id)
			delete(h.stats.book.seen, id)
			continue
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b ReplicaStats) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Hub, b.Hub)
	})
	return out
}

// localWidgetCounts counts this replica's widget sockets for site by group.
func (st *stats) localWidgetCounts(siteID string) map[string]int {
	h := st.h
	counts := make(map[string]int)
	if s := h.view.lockExistingSite(siteID); s != nil {
		for group, t := range s.widgets {
			counts[group] = t.subs.len()
		}
		h.view.unlockSite(s)
	}
	return counts
}

// siteStatsWait bounds how long a site-stats request waits for replicas.
const siteStatsWait = 300 * time.Millisecond

// AdminStats gathers the stats frame for an admin of site: the site's agents
// from the view, its widget sockets from every replica, and every replica's
// numbers.
func (h *Hub) AdminStats(ctx context.Context, site string) AdminStats {
	now := h.cfg.Now()
	out := AdminStats{Type: "stats", At: protocol.Time(now), Site: site, Replicas: h.Replicas()}
	for _, r := range out.Replicas {
		out.Totals.Connections.Agent += r.Connections.Agent
		out.Totals.Connections.Widget += r.Connections.Widget
		out.Totals.Connections.Admin += r.Connections.Admin
		out.Totals.StatusChangesPerSec += r.StatusChangesPerSec
	}
	out.SiteStats.WidgetStatus = make(map[string]presence.Status)
	if release, err := h.visit(ctx, site); err == nil {
		defer release()
	}
	if s := h.view.lockExistingSite(site); s != nil {
		counts := s.presence.Counts()
		out.SiteStats.Agents = AgentCounts{Online: counts.Online, Busy: counts.Busy, Offline: counts.Offline,
			Total: counts.Total(), PendingGrace: counts.Lingering}
		for group, t := range s.widgets {
			out.SiteStats.WidgetStatus[group] = t.widget.Status
		}
		h.view.unlockSite(s)
	}
	out.SiteStats.Widgets = h.stats.gatherWidgetCounts(ctx, site, len(out.Replicas))
	return out
}

// gatherWidgetCounts asks every replica for its widget sockets of site and
// adds up the answers that arrive within siteStatsWait.
func (st *stats) gatherWidgetCounts(ctx context.Context, site string, replicas int) WidgetCounts {
	h := st.h
	wc := WidgetCounts{ByGroup: make(map[string]int)}
	add := func(counts map[string]int) {
		for g, n := range counts {
			wc.ByGroup[g] += n
			wc.Total += n
		}
	}
	nc := h.nc
	inbox := nc.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		add(st.localWidgetCounts(site))
		return wc
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(st.siteStatsSubject()+"."+site, inbox, nil); err != nil {
		add(st.localWidgetCounts(site))
		return wc
	}
	ctx, cancel := context.WithTimeout(ctx, siteStatsWait)
	defer cancel()
	for got := 0; replicas == 0 || got < replicas; got++ {
		select {
		case <-ctx.Done():
			return wc
		case m := <-replies:
			var counts map[string]int
			if json.Unmarshal(m.Data, &counts) == nil {
				add(counts)
			}
		}
	}
	return wc
}

var hostname = sync.OnceValue(func() string {
	name, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return name
})
