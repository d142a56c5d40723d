package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/hub/store"
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
	// event stream (docs/protocol.md#history).
	if st.history, err = history.New(history.Config{JetStream: js, Stream: cfg.eventStream, Retention: cfg.eventRetention, Logger: log}); err != nil {
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

// connectNATS connects to --nats-url, or starts an embedded nats-server and
// connects to it in-process. The returned func drains the connection and
// stops the embedded server.
func connectNATS(cfg *serveConfig, log *slog.Logger) (*nats.Conn, func(), error) {
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
			return nil, nil, fmt.Errorf("failed to connect to NATS at %s: %w", redactURLs(cfg.natsURL), err)
		}
		return nc, func() { nc.Drain() }, nil
	}
	sopts := &natsserver.Options{
		ServerName: "presencehub-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.dataDir, "nats"),
		NoSigs:     true,
		DontListen: cfg.natsListen == "",
	}
	if cfg.natsListen != "" {
		host, port, err := splitNATSListen(cfg.natsListen)
		if err != nil {
			return nil, nil, err
		}
		sopts.Host, sopts.Port = host, port
	}
	ns, err := natsserver.NewServer(sopts)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to start embedded NATS: %w", err)
	}
	nlog := &natsLog{log: log.With("nats", "embedded")}
	ns.SetLoggerV2(nlog, false, false, false)
	ns.Start()
	// Start reports a failure to listen (or to start JetStream) only to the
	// logger, and then ReadyForConnections would wait out its whole timeout:
	// ask the logger first.
	if err := nlog.fatalErr(); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		if cfg.natsListen != "" {
			return nil, nil, fmt.Errorf("failed to start embedded NATS (--nats-listen %s): %w", cfg.natsListen, err)
		}
		return nil, nil, fmt.Errorf("failed to start embedded NATS: %w", err)
	}
	if !ns.ReadyForConnections(cfg.startupTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, nil, errors.New("embedded NATS did not become ready")
	}
	if cfg.natsListen != "" {
		log.Info("embedded NATS listening", "url", ns.ClientURL())
	}
	nc, err := nats.Connect(ns.ClientURL(), append(opts, nats.InProcessServer(ns))...)
	if err != nil {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("failed to connect to embedded NATS: %w", err)
	}
	return nc, func() {
		nc.Drain()
		for nc.IsDraining() {
			time.Sleep(10 * time.Millisecond)
		}
		ns.Shutdown()
		ns.WaitForShutdown()
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
// JetStream (it does not exit: NoSigs, and no logger of its own).
type natsLog struct {
	log *slog.Logger

	mu    sync.Mutex
	fatal error // guarded by mu
}

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLog) Debugf(string, ...any)           {}
func (l *natsLog) Tracef(string, ...any)           {}

func (l *natsLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == nil {
		l.fatal = errors.New(msg)
	}
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
