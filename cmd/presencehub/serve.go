package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/transport/webhook"
	"github.com/presencehub/presencehub/web"
)

type serveConfig struct {
	addr           string
	grace          time.Duration
	refreshEvery   time.Duration
	dataDir        string
	natsURL        string
	natsListen     string
	jwtSecret      string
	allowedOrigins string
	bucket         string
	kvReplicas     int
	markerTTL      time.Duration
	helloTimeout   time.Duration
	maxMessage     int64
	sendQueue      int
	writeTimeout   time.Duration
	pingInterval   time.Duration
	pongTimeout    time.Duration
	closeTimeout   time.Duration
	logLevel       string
	logFormat      string
	dev            bool
	natsCreds      string
	natsTLSCA      string
	perSiteMetrics bool
	shutdownDelay  time.Duration
	shutdownWait   time.Duration
	startupTimeout time.Duration
	debugAddr      string
	maxDevices     int
	statusRate     float64
	statusBurst    int
	deviceOpQueue  int
	maxWidgets     int
	trustedProxies string
	httpRead       time.Duration
	httpHeader     time.Duration
	httpIdle       time.Duration
	maxHTTPConns   int
	replicaID      string
	natsPing       time.Duration
	natsMaxPings   int
	writeRetry     time.Duration
	eventStream    string
	eventRetention time.Duration
	webhooks       webhookFlags
}

// webhookFlags are the --webhook-* flags.
type webhookFlags struct {
	timeout       time.Duration
	retrySchedule string
	allowPrivate  bool
	maxPerSite    int
	maxPending    int
	concurrency   int
	kept          int
}

func serveFlags(fs *flag.FlagSet) *serveConfig {
	c := &serveConfig{}
	fs.StringVar(&c.addr, "addr", ":8080", "HTTP listen address")
	fs.DurationVar(&c.grace, "grace", hub.DefaultGrace, "how long a dropped device keeps its agent's status (at least 1s)")
	fs.DurationVar(&c.refreshEvery, "lease-refresh", 0, "how often live device leases are refreshed (default grace/4)")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory for the embedded NATS store and the generated signing secret")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server URL(s), comma separated; empty runs an embedded nats-server")
	fs.StringVar(&c.natsListen, "nats-listen", "", "HOST:PORT on which the embedded nats-server accepts other hubs (default: in-process only)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", "", "HS256 token signing secret (default: generated once and kept in --data-dir)")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma list of Origin host patterns allowed to open agent sockets, besides the hub's own host")
	fs.StringVar(&c.bucket, "bucket", hub.DefaultBucket, "JetStream key-value bucket holding presence state")
	fs.IntVar(&c.kvReplicas, "kv-replicas", 1, "replicas of the bucket and the event stream (3 on a NATS cluster)")
	fs.StringVar(&c.eventStream, "events-stream", hub.DefaultEventStream, "JetStream stream of availability events, subjects presence.events.<site>.<type> (docs/events.md); \"none\" publishes no events")
	fs.DurationVar(&c.eventRetention, "events-retention", hub.DefaultEventRetention, "how long the event stream keeps events")
	fs.DurationVar(&c.webhooks.timeout, "webhook-timeout", webhook.DefaultTimeout, "how long a webhook endpoint has to answer one delivery before the attempt counts as failed")
	fs.StringVar(&c.webhooks.retrySchedule, "webhook-retry-schedule", durationList(webhook.DefaultRetrySchedule), "comma list of delays between a webhook event's attempts (each gets up to a tenth more, at random); after the last attempt the event is given up")
	fs.BoolVar(&c.webhooks.allowPrivate, "webhook-allow-private", false, "allow webhook URLs on loopback, private and link-local addresses, and plain http (tests, private networks)")
	fs.IntVar(&c.webhooks.maxPerSite, "webhook-max-per-site", webhook.DefaultMaxPerSite, "webhook endpoints one site may register")
	fs.IntVar(&c.webhooks.maxPending, "webhook-max-pending", webhook.DefaultMaxPending, "events one webhook endpoint may have in flight or waiting for a retry; newer events wait in the event stream")
	fs.IntVar(&c.webhooks.concurrency, "webhook-concurrency", webhook.DefaultConcurrency, "requests one replica has in flight to one webhook endpoint")
	fs.IntVar(&c.webhooks.kept, "webhook-deliveries-kept", webhook.DefaultDeliveriesKept, "recent delivery attempts kept per webhook endpoint for its deliveries API")
	fs.DurationVar(&c.markerTTL, "kv-marker-ttl", hub.DefaultMarkerTTL, "how long delete markers of expired or removed leases stay in the bucket (at least 1s)")
	fs.DurationVar(&c.helloTimeout, "hello-timeout", transport.DefaultHelloTimeout, "how long an agent socket may take to send hello")
	fs.Int64Var(&c.maxMessage, "max-message-bytes", transport.DefaultMaxMessageBytes, "largest client message (all its fragments); larger closes the socket with 1009")
	fs.IntVar(&c.sendQueue, "send-queue", transport.DefaultSendQueue, "frames queued per socket before a slow socket is closed with 1008")
	fs.DurationVar(&c.writeTimeout, "write-timeout", transport.DefaultWriteTimeout, "time limit for writing one frame to a socket")
	fs.DurationVar(&c.pingInterval, "ping-interval", transport.DefaultPingInterval, "how often every socket is pinged; negative disables")
	fs.DurationVar(&c.pongTimeout, "pong-timeout", transport.DefaultPongTimeout, "how long a pong may take before the socket is closed")
	fs.DurationVar(&c.closeTimeout, "close-timeout", transport.DefaultCloseTimeout, "how long a client has to answer the hub's close frame before the connection is closed anyway")
	fs.DurationVar(&c.natsPing, "nats-ping-interval", defaultNATSPingInterval, "how often the NATS connection is pinged; a server that misses --nats-max-pings-out pings in a row (frozen, cut off) is left for another of --nats-url")
	fs.IntVar(&c.natsMaxPings, "nats-max-pings-out", defaultNATSMaxPingsOut, "unanswered NATS pings after which the connection is dropped and another server of --nats-url tried")
	fs.DurationVar(&c.writeRetry, "nats-write-retry", hub.DefaultWriteRetry, "how long a bucket write that meets a stream leader election or a NATS reconnect is retried before it fails (0: no retries); keep it above the cluster's election time")
	fs.StringVar(&c.natsCreds, "nats-creds", "", "NATS credentials file (JWT and nkey) for --nats-url")
	fs.StringVar(&c.natsTLSCA, "nats-tls-ca", "", "CA certificate file to verify the NATS servers' TLS certificates")
	fs.BoolVar(&c.perSiteMetrics, "metrics-per-site", false, "add per-site series to /metrics (one series per site: keep off with many sites)")
	fs.DurationVar(&c.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long /readyz answers 503 before sockets are closed, so a load balancer stops routing here first")
	fs.DurationVar(&c.shutdownWait, "shutdown-timeout", 15*time.Second, "on SIGTERM, how long closing sockets and draining NATS may take")
	fs.DurationVar(&c.startupTimeout, "startup-timeout", 30*time.Second, "how long the embedded nats-server may take to start, and the bucket and event stream to open (a NATS cluster still electing its leaders), before serve gives up")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "HOST:PORT serving Go's pprof profiles under /debug/pprof/ (off by default; keep it private)")
	fs.IntVar(&c.maxDevices, "max-devices", hub.DefaultMaxDevices, "live devices one agent may have; more are refused with close 4003")
	fs.Float64Var(&c.statusRate, "status-rate", transport.DefaultStatusRate, "status changes per second allowed per device; more get rate_limited errors")
	fs.IntVar(&c.statusBurst, "status-burst", transport.DefaultStatusBurst, "burst of status changes allowed per device")
	fs.IntVar(&c.deviceOpQueue, "device-op-queue", transport.DefaultDeviceOpQueue, "operations of one agent device (status changes, background mode) that may wait for NATS at once, the one running included; more get rate_limited errors")
	fs.IntVar(&c.maxWidgets, "max-widgets-per-client", transport.DefaultMaxWidgetsPerClient, "widget sockets one client address may hold open on this replica; more are refused with HTTP 429; -1 disables the cap (load tests from one address)")
	fs.DurationVar(&c.httpRead, "http-read-timeout", transport.DefaultHTTPReadTimeout, "time limit for reading one HTTP request, headers and body (the headers alone get at most --http-header-timeout); negative: none")
	fs.DurationVar(&c.httpHeader, "http-header-timeout", transport.DefaultHTTPHeaderTimeout, "time limit for reading one HTTP request's headers, when shorter than --http-read-timeout (slow clients that trickle headers); negative: none of its own")
	fs.DurationVar(&c.httpIdle, "http-idle-timeout", transport.DefaultHTTPIdleTimeout, "how long a keep-alive HTTP connection may wait for its next request; negative: none")
	fs.IntVar(&c.maxHTTPConns, "max-http-conns-per-client", transport.DefaultMaxHTTPConnsPerClient, "plain HTTP connections one TCP peer address may have open at once (a WebSocket leaves the count at its upgrade); more are closed at once; --trusted-proxies are not counted")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", prefixList(transport.DefaultTrustedProxies()), "comma list of CIDRs (or addresses) of proxies whose X-Forwarded-For names the client address; \"none\" or empty trusts nobody")
	fs.StringVar(&c.replicaID, "replica-id", "", "name of this replica on the admin page, in logs and in its device records (default HOSTNAME:PORT, the port of --addr)")
	fs.BoolVar(&c.dev, "dev", false, "development mode: a random signing secret, a demo site, and /dev/token minting tokens for the pages")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	return c
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: want text or json", format)
}

// serve is the composition root: NATS, bucket, hub, transport, HTTP.
func serve(ctx context.Context, stop func(), args []string) error {
	fs := flag.NewFlagSet("presencehub serve", flag.ContinueOnError)
	cfg := serveFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	proxies, err := parseTrustedProxies(cfg.trustedProxies)
	if err != nil {
		return err
	}
	// Flags first, then ports, and only then anything written into
	// --data-dir (the generated secret, the embedded NATS store): a bad
	// value or a busy port stops serve at once, naming the flag, and leaves
	// nothing behind.
	if err := cfg.validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("failed to listen on --addr %s: %w", cfg.addr, err)
	}
	defer ln.Close() // in case serving never starts; Serve closes it otherwise
	if cfg.natsListen != "" {
		if err := checkListen(cfg.natsListen); err != nil {
			return fmt.Errorf("failed to listen on --nats-listen %s: %w", cfg.natsListen, err)
		}
	}
	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	if cfg.replicaID == "" {
		cfg.replicaID = defaultReplicaID(ln.Addr())
	}

	var secret []byte
	if cfg.dev && cfg.jwtSecret == "" {
		secret = randomSecret()
	} else if secret, err = loadSecret(cfg.jwtSecret, cfg.dataDir, true); err != nil {
		return err
	}
	auth, err := transport.NewAuth(secret)
	if err != nil {
		return err
	}

	nc, shutdownNATS, err := connectNATS(cfg, log)
	if err != nil {
		return err
	}
	defer shutdownNATS()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("failed to start JetStream client: %w", err)
	}
	openCtx, cancel := context.WithTimeout(ctx, cfg.startupTimeout)
	kv, err := hub.OpenBucket(openCtx, js, hub.BucketConfig{Name: cfg.bucket, Replicas: cfg.kvReplicas, LimitMarkerTTL: cfg.markerTTL})
	cancel()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	events := cfg.eventStream != "none"
	var webhooks *webhook.Manager
	var hist *history.Index
	if events {
		openCtx, cancel := context.WithTimeout(ctx, cfg.startupTimeout)
		webhooks, err = openEvents(openCtx, cfg, js, reg, log)
		cancel()
		if err != nil {
			return err
		}
		// The history of the timeline and report API, read from the
		// event stream (docs/protocol.md#history).
		if hist, err = history.New(history.Config{JetStream: js, Stream: cfg.eventStream, Retention: cfg.eventRetention, Logger: log}); err != nil {
			return err
		}
	}
	h, err := hub.New(hub.Config{
		ID: cfg.replicaID, JetStream: js, KV: kv, Grace: cfg.grace, RefreshEvery: cfg.refreshEvery, MarkerTTL: cfg.markerTTL,
		Logger: log, Registerer: reg, PerSiteMetrics: cfg.perSiteMetrics, MaxDevices: cfg.maxDevices,
		WriteRetry: writeRetryConfig(cfg.writeRetry), Events: events,
	})
	if err != nil {
		return err
	}
	srv := transport.NewServer(h, auth, transport.Config{
		AllowedOrigins:      splitList(cfg.allowedOrigins),
		HelloTimeout:        cfg.helloTimeout,
		MaxMessageBytes:     cfg.maxMessage,
		SendQueue:           cfg.sendQueue,
		WriteTimeout:        cfg.writeTimeout,
		PingInterval:        cfg.pingInterval,
		PongTimeout:         cfg.pongTimeout,
		CloseTimeout:        cfg.closeTimeout,
		StatusRate:          cfg.statusRate,
		StatusBurst:         cfg.statusBurst,
		DeviceOpQueue:       cfg.deviceOpQueue,
		MaxWidgetsPerClient: cfg.maxWidgets,
		TrustedProxies:      proxies,
		Webhooks:            webhooks,
		History:             hist,
		Logger:              log,
		Registerer:          reg,
		// Not ready while JetStream does not answer, not only while the
		// connection is down: a frozen NATS server keeps its socket open.
		Ready: h.Healthy,
	})

	mountExtras(srv, reg, auth, cfg.dev)

	httpSrv, httpLn := transport.NewHTTPServer(srv, ln, transport.HTTPLimits{
		ReadTimeout: cfg.httpRead, HeaderTimeout: cfg.httpHeader, IdleTimeout: cfg.httpIdle, MaxConnsPerClient: cfg.maxHTTPConns,
		TrustedProxies: proxies, Logger: log, Registerer: reg,
	})
	log.Info("listening", "addr", ln.Addr().String(), "hub", h.ID(), "grace", cfg.grace)
	if floor := cfg.clusterGraceFloor(); floor > 0 && cfg.grace < floor {
		log.Warn("--grace is too short for a replicated bucket: a stream leader election can outlast live leases, showing connected agents offline",
			"grace", cfg.grace, "kv_replicas", cfg.kvReplicas, "at_least", floor)
	}
	if cfg.dev {
		printDevURLs(ln.Addr())
	}

	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	g := new(errgroup.Group)
	// failed receives the first error of the hub or the HTTP server, either
	// of which ends the process.
	failed := make(chan error, 3)
	g.Go(func() error {
		err := h.Run(hubCtx)
		if err != nil {
			failed <- fmt.Errorf("hub stopped: %w", err)
		}
		return err
	})
	if webhooks != nil {
		g.Go(func() error {
			err := webhooks.Run(hubCtx)
			if err != nil {
				failed <- fmt.Errorf("webhooks stopped: %w", err)
			}
			return err
		})
	}
	if hist != nil {
		g.Go(func() error { return hist.Run(hubCtx) })
	}
	g.Go(func() error {
		if err := httpSrv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			err = fmt.Errorf("failed to serve HTTP: %w", err)
			failed <- err
			return err
		}
		return nil
	})

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("draining; a second signal stops at once", "delay", cfg.shutdownDelay)
		stop()
	case runErr = <-failed:
		log.Error("stopping", "err", runErr)
	}
	// Drain: /readyz turns 503 and new sockets are refused; after the delay
	// the open sockets close with 1001. Their devices' leases are left to
	// run out the grace, so the devices reconnect to another replica with
	// no visible change. Then the hub stops and NATS is drained.
	srv.Drain()
	if runErr == nil && cfg.shutdownDelay > 0 {
		time.Sleep(cfg.shutdownDelay) // a second signal ends the process (stop restored its default)
	}
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancelShutdown()
	if err := srv.CloseSockets(shutdownCtx); err != nil {
		log.Warn("sockets still open at shutdown", "err", err)
	}
	httpSrv.Shutdown(shutdownCtx)
	stopHub()
	if err := g.Wait(); runErr == nil && err != nil {
		runErr = err
	}
	log.Info("stopped")
	return runErr
}

// openEvents creates or updates the event stream and opens the webhooks on
// it.
func openEvents(ctx context.Context, cfg *serveConfig, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) (*webhook.Manager, error) {
	_, err := hub.OpenEventStream(ctx, js, hub.EventStreamConfig{Name: cfg.eventStream, Retention: cfg.eventRetention, Replicas: cfg.kvReplicas})
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
			return nil, nil, fmt.Errorf("failed to connect to NATS: %w", err)
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

// printDevURLs tells a developer what to open.
func printDevURLs(addr net.Addr) {
	port := "8080"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	base := "http://localhost:" + port
	fmt.Fprintf(os.Stderr, `
presencehub dev mode: site %q with groups %v, tokens from %s/dev/token
  start page         %s/
  agent console      %s/console?dev
  same agent, phone  %s/console?dev&device=mobile
  admin dashboard    %s/admin
  widget demo page   %s/demo   (group: %s/demo?group=sales)

`, transport.DevSite, transport.DevGroups, base, base, base, base, base, base, base)
}

// serveDebug serves pprof on its own listener, apart from the public one.
// mountExtras adds to srv what the transport does not serve itself: the
// metrics, the pages and /dev/token. Every route here must be in the OpenAPI
// description (transport/openapi.json); TestEveryRouteIsDescribed checks.
func mountExtras(srv *transport.Server, reg *prometheus.Registry, auth *transport.Auth, dev bool) {
	srv.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv.Handle("/", web.Handler(web.Options{Dev: dev}))
	if dev {
		srv.Handle("GET /dev/token", transport.DevTokenHandler(auth))
	} else {
		srv.Handle("/dev/token", transport.DevTokenRefused())
	}
}

func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on --debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	log.Info("debug listener", "addr", ln.Addr().String())
	return func() {
		srv.Close()
		<-done
	}, nil
}
