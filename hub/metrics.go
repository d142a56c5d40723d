package hub

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/presence"
)

// metrics are the hub's Prometheus metrics. Counters move where things
// happen; gauges are read from the view when scraped.
type metrics struct {
	statusChanges prometheus.Counter
	framesOut     prometheus.Counter
	slowClosed    prometheus.Counter
	graceStarted  prometheus.Counter
	graceCancel   prometheus.Counter
	graceExpired  prometheus.Counter
	propagation   prometheus.Histogram
	kvOps         *prometheus.CounterVec
	kvErrors      *prometheus.CounterVec
	watchMissed   prometheus.Counter
	// jetstreamHealthy is 1 while the last JetStream probe was answered.
	jetstreamHealthy prometheus.Gauge
	// writeRetries counts bucket writes retried through an election or a
	// NATS reconnect, by outcome.
	writeRetries *prometheus.CounterVec
	// eventsPublished counts events handed to JetStream by type, and
	// eventErrors those lost: dropped (the backlog stayed full) or nack
	// (JetStream refused or did not acknowledge them).
	eventsPublished *prometheus.CounterVec
	eventErrors     *prometheus.CounterVec
	// eventsKeptPublished counts the events a standby published when its
	// partition's ownership moved, eventsKeptDropped the changes it
	// forgot because it kept too many (event_duty.go).
	eventsKeptPublished prometheus.Counter
	eventsKeptDropped   prometheus.Counter
}

func newMetrics(h *Hub, reg prometheus.Registerer, perSite bool) *metrics {
	m := &metrics{
		statusChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_status_changes_total",
			Help: "Agent statuses set through this replica.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_frames_out_total",
			Help: "Frames handed to local subscribers' send queues.",
		}),
		slowClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_slow_subscribers_closed_total",
			Help: "Subscribers closed because their send queue was full.",
		}),
		graceStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_grace_started_total",
			Help: "Agents whose last live device dropped without bye, so that a grace period started (seen by this replica's view; every replica counts every agent).",
		}),
		graceCancel: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_grace_cancelled_total",
			Help: "Grace periods ended by a device coming back.",
		}),
		graceExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_grace_expired_total",
			Help: "Grace periods that ran out, the agent going offline.",
		}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "presencehub_propagation_seconds",
			Help:    "Time from a status being set (on any replica) to this replica queueing the resulting frames to its sockets.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		kvOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencehub_kv_operations_total",
			Help: "Key-value bucket operations by kind.",
		}, []string{"op"}),
		kvErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencehub_kv_errors_total",
			Help: "Key-value bucket operations that failed, by kind (lost lease races are not errors).",
		}, []string{"op"}),
		watchMissed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presencehub_watch_missed_revisions_total",
			Help: "Bucket revisions (statuses, leases, markers) this replica's watch never read because they were replaced, expired or purged before it got to them: the watch ran behind (an overloaded hub or NATS). The view still ends at the latest state, but what those revisions changed was not shown.",
		}),
		jetstreamHealthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "presencehub_jetstream_healthy",
			Help: "1 while JetStream answered this replica's last probe (every 2s); 0 while the NATS server it is connected to is frozen, cut off or without JetStream. /readyz is 503 meanwhile.",
		}),
		writeRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presencehub_kv_write_retries_total",
			Help: "Bucket writes that met a stream without a leader or a NATS server that went away and were retried, by outcome: stored, failed (gave up after --nats-write-retry or the caller's deadline) or unknown (gave up after a timeout: the write may still land).",
		}, []string{"outcome"}),
	}
	m.eventsPublished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presencehub_events_published_total",
		Help: "Events this replica published to the event stream, by type: the events of the partitions it owns, and those it kept as a partition's standby and published when the partition's ownership moved (JetStream drops the copies).",
	}, []string{"type"})
	m.eventsKeptPublished = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "presencehub_events_standby_published_total",
		Help: "Events this replica derived as a partition's standby and published when the partition's ownership moved; most are copies, which JetStream drops.",
	})
	m.eventsKeptDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "presencehub_events_standby_forgotten_total",
		Help: "Changes whose events this replica, as a partition's standby, forgot because it kept too many (65,536); an ownership move then may lose them.",
	})
	m.eventErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presencehub_event_errors_total",
		Help: "Events this replica gave up publishing: dropped (its queue of events waiting for JetStream was full) or nack (JetStream refused them, or they were too old to publish again inside the duplicate window).",
	}, []string{"reason"})
	for _, r := range []string{"dropped", "nack"} {
		m.eventErrors.WithLabelValues(r)
	}
	for _, o := range []string{"stored", "failed", "unknown"} {
		m.writeRetries.WithLabelValues(o)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.statusChanges, m.framesOut, m.slowClosed, m.graceStarted, m.graceCancel,
		m.graceExpired, m.propagation, m.kvOps, m.kvErrors, m.watchMissed, m.jetstreamHealthy, m.writeRetries,
		m.eventsPublished, m.eventErrors, m.eventsKeptPublished, m.eventsKeptDropped, &viewCollector{h: h, perSite: perSite})
	nc := h.nc
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_nats_connected",
			Help: "1 while the NATS connection is up.",
		}, func() float64 { return boolFloat(nc.Status() == nats.CONNECTED) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "presencehub_nats_reconnects_total",
			Help: "Times the NATS connection was re-established.",
		}, func() float64 { return float64(nc.Stats().Reconnects) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_events_pending",
			Help: "Events published to the event stream and not yet acknowledged (at most 4096; more are dropped).",
		}, func() float64 {
			if h.events == nil {
				return 0
			}
			return float64(h.events.Pending())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_followed_sites",
			Help: "Sites this replica follows for a local client or request (or did within --follow-linger).",
		}, func() float64 { return float64(h.follows.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_site_subscriptions",
			Help: "Followed sites this replica holds through subscriptions to their keys (the others are of partitions whose whole bucket it watches).",
		}, func() float64 { return float64(h.follows.subscribed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_duties",
			Help: "Partitions of sites this replica owns the duties of, whose whole bucket it watches and holds.",
		}, func() float64 { return float64(h.duty.owned()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_standby_partitions",
			Help: "Partitions of sites this replica stands by for: it watches and holds their whole bucket and derives their events, which it publishes if it comes to own them.",
		}, func() float64 { return float64(h.duty.stoodBy()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presencehub_view_loaded",
			Help: "1 once the view has loaded the bucket.",
		}, func() float64 { return boolFloat(h.Ready()) }),
	)
	return m
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeGrace counts the grace periods an agent change starts, cancels or
// lets expire.
func (m *metrics) observeGrace(wasLingering bool, a *presence.Agent, ok bool) {
	lingering := ok && a.Lingering()
	connected := ok && a.Connected()
	switch {
	case !wasLingering && lingering:
		m.graceStarted.Inc()
	case wasLingering && connected && !lingering:
		m.graceCancel.Inc()
	case wasLingering && !connected:
		m.graceExpired.Inc()
	}
}

func (m *metrics) observePropagation(set, now time.Time) {
	if !set.IsZero() {
		m.propagation.Observe(now.Sub(set).Seconds())
	}
}

// viewCollector reads gauges from the view at scrape time.
type viewCollector struct {
	h       *Hub
	perSite bool
}

var (
	connectionsDesc = prometheus.NewDesc("presencehub_connections",
		"Open sockets on this replica by kind.", []string{"kind"}, nil)
	agentsDesc = prometheus.NewDesc("presencehub_agents",
		"Agents of the sites this replica holds by effective status (every site on the replica that owns the duties).", []string{"status"}, nil)
	pendingGraceDesc = prometheus.NewDesc("presencehub_pending_grace",
		"Agents of the sites this replica holds inside a grace period now.", nil, nil)
	sitesDesc = prometheus.NewDesc("presencehub_sites",
		"Sites this replica holds: those it follows, and every site with state while it owns the duties.", nil, nil)
	siteAgentsDesc = prometheus.NewDesc("presencehub_site_agents_online",
		"Agents effectively online per site (only with per-site metrics on).", []string{"site"}, nil)
	siteWidgetsDesc = prometheus.NewDesc("presencehub_site_widgets",
		"Widget sockets open on this replica per site (only with per-site metrics on).", []string{"site"}, nil)
)

func (c *viewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- agentsDesc
	ch <- pendingGraceDesc
	ch <- sitesDesc
	if c.perSite {
		ch <- siteAgentsDesc
		ch <- siteWidgetsDesc
	}
}

func (c *viewCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	agents := map[presence.Status]int{presence.Online: 0, presence.Busy: 0, presence.Offline: 0}
	lingering := 0
	sites := h.view.sites.all()
	for _, s := range sites {
		s.mu.Lock()
		counts := s.presence.Counts()
		widgets := 0
		if c.perSite {
			for _, t := range s.widgets {
				widgets += t.subs.len()
			}
		}
		s.mu.Unlock()
		agents[presence.Online] += counts.Online
		agents[presence.Busy] += counts.Busy
		agents[presence.Offline] += counts.Offline
		lingering += counts.Lingering
		if c.perSite {
			ch <- prometheus.MustNewConstMetric(siteAgentsDesc, prometheus.GaugeValue, float64(counts.Online), s.id)
			ch <- prometheus.MustNewConstMetric(siteWidgetsDesc, prometheus.GaugeValue, float64(widgets), s.id)
		}
	}
	conns := h.stats.connections()
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(conns.Agent), "agent")
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(conns.Widget), "widget")
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(conns.Admin), "admin")
	for st, n := range agents {
		ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(pendingGraceDesc, prometheus.GaugeValue, float64(lingering))
	ch <- prometheus.MustNewConstMetric(sitesDesc, prometheus.GaugeValue, float64(len(sites)))
}
