package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/dirlock"
	"github.com/presencehub/presencehub/transport/webhook"
)

// stores are what serve opens on NATS before it builds the hub: the
// key-value bucket of presence state and, unless --events-stream is "none",
// the event stream with the webhooks and the history read from it.
type stores struct {
	js       jetstream.JetStream
	bucket   *store.Bucket
	events   bool
	webhooks *webhook.Manager // nil without events
	history  *history.Index   // nil without events
}

// openStores opens the bucket and, with events, the event stream, the
// webhooks and the history, each within --startup-timeout.
func openStores(ctx context.Context, cfg *serveConfig, nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*stores, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("failed to start JetStream client: %w", err)
	}
	st := &stores{js: js, events: cfg.eventStream != "none"}
	openCtx, cancel := context.WithTimeout(ctx, cfg.startupTimeout)
	st.bucket, err = store.OpenBucket(openCtx, js, store.BucketConfig{Name: cfg.bucket, Replicas: cfg.kvReplicas, LimitMarkerTTL: cfg.markerTTL})
	cancel()
	if err != nil {
		return nil, err
	}
	if !st.events {
		return st, nil
	}
	openCtx, cancel = context.WithTimeout(ctx, cfg.startupTimeout)
	st.webhooks, err = openEvents(openCtx, cfg, js, reg, log)
	cancel()
	if err != nil {
		return nil, err
	}
	// The history of the timeline and report API, read from the
	// event stream and the daily summaries of it (docs/events.md#history).
	hcfg := history.Config{JetStream: js, Stream: cfg.eventStream, Retention: cfg.eventRetention, Sites: cfg.historySites, Logger: log}
	if cfg.historySums != "none" {
		openCtx, cancel = context.WithTimeout(ctx, cfg.startupTimeout)
		_, err = history.OpenSummaries(openCtx, js, events.StreamConfig{Name: cfg.historySums, Retention: cfg.eventRetention, Replicas: cfg.kvReplicas})
		cancel()
		if err != nil {
			return nil, err
		}
		hcfg.Summaries = cfg.historySums
	}
	if st.history, err = history.New(hcfg); err != nil {
		return nil, err
	}
	return st, nil
}

// openEvents creates or updates the event stream and opens the webhooks on
// it.
func openEvents(ctx context.Context, cfg *serveConfig, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) (*webhook.Manager, error) {
	_, err := events.OpenStream(ctx, js, events.StreamConfig{Name: cfg.eventStream, Retention: cfg.eventRetention, Replicas: cfg.kvReplicas})
	if err != nil {
		return nil, err
	}
	schedule, err := parseDurationList(cfg.webhooks.retrySchedule)
	if err != nil {
		return nil, fmt.Errorf("invalid --webhook-retry-schedule: %w", err)
	}
	return webhook.Open(ctx, webhook.Config{
		JetStream:      js,
		EventStream:    cfg.eventStream,
		Replicas:       cfg.kvReplicas,
		Timeout:        cfg.webhooks.timeout,
		RetrySchedule:  schedule,
		AllowPrivate:   cfg.webhooks.allowPrivate,
		MaxPerSite:     cfg.webhooks.maxPerSite,
		MaxPending:     cfg.webhooks.maxPending,
		Concurrency:    cfg.webhooks.concurrency,
		DeliveriesKept: cfg.webhooks.kept,
		UserAgent:      "presencehub/" + version() + " (webhooks; +https://github.com/presencehub/presencehub)",
		Replica:        cfg.replicaID,
		Logger:         log,
		Registerer:     reg,
	})
}

// connectNATS connects to --nats-url, or starts an embedded nats-server on
// the store in --data-dir, which lock holds, and connects to it in-process
// (emb is nil with --nats-url). The returned func drains the connection and
// stops the embedded server.
func connectNATS(cfg *serveConfig, lock *dirlock.Lock, log *slog.Logger) (nc *nats.Conn, emb *embeddedNATS, shutdown func(), err error) {
	opts := []nats.Option{
		nats.Name("presencehub"),
		nats.MaxReconnects(-1),
		// The client library's default (2 minutes, 2 pings) would keep a
		// hub on a frozen or cut-off server for minutes, longer than the
		// grace: its leases would expire while its sockets are fine.
		nats.PingInterval(cfg.natsPing),
		nats.MaxPingsOutstanding(cfg.natsMaxPings),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		// Asynchronous errors, such as a slow consumer (messages dropped
		// by the client library) or a consumer sequence gap. nats.go
		// re-creates the bucket watch's ordered consumer after missed
		// heartbeats without reporting it.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("NATS asynchronous error", "subject", subject, "err", err)
		}),
	}
	if cfg.natsURL != "" {
		if cfg.natsCreds != "" {
			opts = append(opts, nats.UserCredentials(cfg.natsCreds))
		}
		if cfg.natsTLSCA != "" {
			opts = append(opts, nats.RootCAs(cfg.natsTLSCA))
		}
		nc, err := nats.Connect(cfg.natsURL, opts...)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("failed to connect to NATS at %s: %w", redactURLs(cfg.natsURL), err)
		}
		return nc, nil, func() { nc.Drain() }, nil
	}
	emb, err = startEmbedded(cfg, lock, log)
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.natsListen != "" {
		log.Info("embedded NATS listening", "url", emb.ns.ClientURL())
	}
	nc, err = nats.Connect(emb.ns.ClientURL(), append(opts, nats.InProcessServer(emb.ns))...)
	if err != nil {
		emb.shutdown()
		return nil, nil, nil, fmt.Errorf("failed to connect to embedded NATS: %w", err)
	}
	emb.conn.Store(nc)
	return nc, emb, func() {
		nc.Drain()
		for nc.IsDraining() {
			time.Sleep(10 * time.Millisecond)
		}
		emb.shutdown()
	}, nil
}

// splitNATSListen parses --nats-listen. Port 0 is refused: nats-server would
// read it as its default port 4222, and other hubs need a port they know.
func splitNATSListen(s string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(s)
	if err == nil {
		port, err = strconv.Atoi(p)
	}
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid --nats-listen %q: want HOST:PORT, e.g. 127.0.0.1:4222", s)
	}
	return host, port, nil
}

// checkListen listens on addr and lets go at once: nats-server cannot be
// handed a listener, and a busy port is better found before it starts
// (which writes its store into --data-dir). A port taken in between is still
// reported, by natsLog.
func checkListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// natsLog passes the embedded nats-server's log to the hub's: notices at
// debug level, warnings and errors as such. It keeps the first fatal error,
// which is how nats-server reports that it could not listen or start
// JetStream (it does not exit: NoSigs, and no logger of its own); the
// warnings and errors logged while the server starts, which say what it
// recovered from the store; and it reports every line that says the store
// failed a write to onFault.
type natsLog struct {
	log     *slog.Logger
	onFault func(msg string)

	mu       sync.Mutex
	fatal    error    // guarded by mu
	starting bool     // guarded by mu; set until endStartup
	startup  []string // guarded by mu
}

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Debugf(string, ...any)           {}
func (l *natsLog) Tracef(string, ...any)           {}

func (l *natsLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Warn(msg)
	l.note(msg)
}

func (l *natsLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.note(msg)
}

func (l *natsLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.note(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == nil {
		l.fatal = errors.New(msg)
	}
}

// note keeps a warning or an error logged during start-up, and reports a
// store fault.
func (l *natsLog) note(msg string) {
	if l.onFault != nil && isStoreFault(msg) {
		l.onFault(msg)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.starting {
		l.startup = append(l.startup, strings.TrimSpace(msg))
	}
}

// endStartup returns the warnings and errors logged so far and stops
// keeping them.
func (l *natsLog) endStartup() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starting = false
	lines := l.startup
	l.startup = nil
	return lines
}

func (l *natsLog) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

// redactURLs is a --nats-url list for messages: each URL without the user,
// password or token it may carry.
func redactURLs(list string) string {
	urls := splitList(list)
	for i, raw := range urls {
		parsed := raw
		if !strings.Contains(raw, "://") {
			parsed = "nats://" + raw // as nats.Connect reads it
		}
		u, err := url.Parse(parsed)
		switch {
		case err != nil && strings.Contains(raw, "@"):
			urls[i] = "(a URL that does not parse)"
		case err == nil && u.User != nil:
			u.User = url.User("redacted")
			urls[i] = u.String()
		}
	}
	return strings.Join(urls, ", ")
}
