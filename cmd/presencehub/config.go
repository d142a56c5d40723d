package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/transport/webhook"
)

// serveConfig is serve's command line: its flags, read by serveFlags.
type serveConfig struct {
	addr           string
	grace          time.Duration
	refreshEvery   time.Duration
	livenessTTL    time.Duration
	followLinger   time.Duration
	partitions     int
	dataDir        string
	natsURL        string
	natsListen     string
	natsSync       string
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
	poller         wsconn.Poller // "" is wsconn.DefaultPoller
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
	ruleWorkers    int
	eventsQueue    int // events waiting behind a full backlog
	standbyKept    int // changes whose events a partition's standby keeps
	watchPending   int // bytes a lagging partition watch keeps unread
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
	historySites   int
	historySums    string
	summarizeRate  float64 // sites a second whose summaries the replica writes
	webhooks       webhookFlags
	// explicit holds the flags given on the command line or in the
	// environment, by name.
	explicit map[string]bool
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
	fs.DurationVar(&c.refreshEvery, "lease-refresh", 0, "how often a device whose first lease this replica has not yet seen writes it again (default grace/4); live leases are not refreshed, the replica's liveness key stands for them")
	fs.DurationVar(&c.livenessTTL, "liveness-ttl", hub.DefaultLivenessTTL, "TTL of the replica's liveness key, refreshed every third of it: a replica that dies shows its devices offline at most this long after the grace (at least 1s)")
	fs.DurationVar(&c.followLinger, "follow-linger", hub.DefaultFollowLinger, "how long the replica keeps following a site after its last client or request of it")
	fs.IntVar(&c.partitions, "partitions", 1, "partitions of a new deployment's sites (1-1024): each has a bucket of its own (its own write leader) and an owner among the replicas that does its duties; fixed when a deployment is created (docs/scaling.md)")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory for the embedded NATS store and the generated signing secret (with --dev, default "+devDataDir+")")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server URL(s), comma separated; empty runs an embedded nats-server")
	fs.StringVar(&c.natsSync, "nats-sync", defaultNATSSync, "when the embedded nats-server syncs its store to disk: \"always\" (before every acknowledgement) or an interval such as 1s or 2m (nats-server's default; a power cut can lose what was acknowledged since the last sync); see docs/operations.md#durability")
	fs.StringVar(&c.natsListen, "nats-listen", "", "HOST:PORT on which the embedded nats-server accepts other hubs (default: in-process only)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", "", "HS256 token signing secret (default: generated once and kept in --data-dir)")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma list of Origin host patterns allowed to open agent sockets, besides the hub's own host")
	fs.StringVar(&c.bucket, "bucket", store.DefaultBucket, "JetStream key-value bucket holding presence state")
	fs.IntVar(&c.kvReplicas, "kv-replicas", 1, "replicas of the bucket and the event stream (3 on a NATS cluster)")
	fs.StringVar(&c.eventStream, "events-stream", events.DefaultStream, "JetStream stream of availability events, subjects presence.events.<site>.<type> (docs/events.md); \"none\" publishes no events")
	fs.DurationVar(&c.eventRetention, "events-retention", events.DefaultRetention, "how long the event stream keeps events")
	fs.IntVar(&c.historySites, "history-sites", history.DefaultSites, "sites whose history one replica keeps in memory, the least recently asked dropped beyond it")
	// The summaries make a site's first query read a summary a day
	// instead of every event (docs/events.md#history).
	fs.StringVar(&c.historySums, "history-summaries", history.DefaultSummaries, "JetStream stream of the history's daily summaries of each site's events, subjects presence.history.v<format>.<site>.<day>.<part>, kept two days longer than --events-retention; \"none\" writes and reads none (every site's first query reads its events)")
	fs.Float64Var(&c.summarizeRate, "history-summarize-rate", history.DefaultSummarizeRate, "sites a second, at most, whose daily summaries this replica writes after each UTC day, among the sites of the partitions it owns, so that a site's first query reads summaries even if nobody asked about it before; 0 writes none but at queries (only with --history-summaries)")
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
	fs.Func("poller", `how sockets learn they have bytes to read: "epoll" (Linux only, the default there: an idle socket has no goroutine) or "goroutine" (a reader goroutine per socket, the default elsewhere)`, func(s string) (err error) {
		c.poller, err = wsconn.ParsePoller(s)
		return err
	})
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
	fs.IntVar(&c.ruleWorkers, "rule-workers", hub.DefaultRuleWorkers, "goroutines that carry out the writes of the idle, sign-off and uncovered-alert rules")
	fs.IntVar(&c.eventsQueue, "events-queue", events.DefaultQueue, "events that may wait for JetStream behind the 4,096 unacknowledged ones (a stream without a leader); more are dropped and counted")
	fs.IntVar(&c.standbyKept, "events-standby-max", hub.DefaultStandbyKept, "changes whose events a partition's standby keeps (for a minute) to publish if the owner goes; the oldest are forgotten first")
	fs.IntVar(&c.watchPending, "watch-pending-bytes", store.DefaultWatchPendingBytes, "bytes of bucket messages a partition's watch that runs behind keeps unread; beyond, it misses revisions and re-reads the bucket")
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
	fs.BoolVar(&c.dev, "dev", false, "development mode: a random signing secret, a demo site, /dev/token minting tokens for the pages, and state in "+devDataDir+" unless --data-dir says otherwise")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	return c
}

// newLogger is the logger --log-level and --log-format ask for, on stderr.
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

// devDataDir is --data-dir's default with --dev.
const devDataDir = "./data-dev"

// flagSet reports whether the command line or the environment set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// loadServeConfig parses serve's command line and checks it, before serve
// opens any port: the flags, the logger they ask for and the trusted
// proxies.
func loadServeConfig(args []string) (*serveConfig, *slog.Logger, []netip.Prefix, error) {
	fs := flag.NewFlagSet("presencehub serve", flag.ContinueOnError)
	cfg := serveFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, nil, err
	}
	if cfg.dev && !flagSet(fs, "data-dir") {
		// The dev hub's agents and statuses stay apart from a hub run
		// without --dev (the README runs one next), which starts empty.
		cfg.dataDir = devDataDir
	}
	cfg.explicit = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { cfg.explicit[f.Name] = true })
	log, err := newLogger(cfg.logLevel, cfg.logFormat)
	if err != nil {
		return nil, nil, nil, err
	}
	proxies, err := parseTrustedProxies(cfg.trustedProxies)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, nil, err
	}
	return cfg, log, proxies, nil
}

// validate checks the flags that serve would otherwise find wrong only after
// it has started the embedded NATS server or written into --data-dir: a
// mistyped flag must stop serve before it leaves anything behind. The rules
// of the hub's own (hub.New, store.OpenBucket) are repeated here, in terms of
// flags, because those run only once NATS is up.
func (c *serveConfig) validate() error {
	if c.maxWidgets == 0 {
		return errors.New("invalid --max-widgets-per-client 0: it would refuse every widget; use -1 for no limit")
	}
	if c.maxHTTPConns == 0 {
		return errors.New("invalid --max-http-conns-per-client 0: it would refuse every connection; use -1 for no limit")
	}
	// transport reads a zero limit as its default, which is not what an
	// operator writing 0 means; a negative value is the way to say none.
	if c.httpRead == 0 {
		return errors.New("invalid --http-read-timeout 0: use a negative value for no timeout")
	}
	if c.httpHeader == 0 {
		return errors.New("invalid --http-header-timeout 0: use a negative value for no timeout of its own")
	}
	if c.httpIdle == 0 {
		return errors.New("invalid --http-idle-timeout 0: use a negative value for no timeout")
	}
	if c.grace < time.Second {
		return fmt.Errorf("invalid --grace %v: at least 1s (NATS TTLs have one-second resolution)", c.grace)
	}
	if c.refreshEvery != 0 && (c.refreshEvery < 0 || c.refreshEvery >= c.grace) {
		return fmt.Errorf("invalid --lease-refresh %v: more than 0 and less than --grace %v", c.refreshEvery, c.grace)
	}
	if c.livenessTTL < time.Second {
		return fmt.Errorf("invalid --liveness-ttl %v: at least 1s (NATS TTLs have one-second resolution)", c.livenessTTL)
	}
	if c.followLinger < 0 {
		return fmt.Errorf("invalid --follow-linger %v: 0 or more", c.followLinger)
	}
	if c.partitions < 1 || c.partitions > 1024 {
		return fmt.Errorf("invalid --partitions %d: 1 to 1024", c.partitions)
	}
	if c.markerTTL != 0 && c.markerTTL < time.Second {
		return fmt.Errorf("invalid --kv-marker-ttl %v: at least 1s", c.markerTTL)
	}
	if !bucketName.MatchString(c.bucket) {
		return fmt.Errorf("invalid --bucket %q: letters, digits, _ and - only", c.bucket)
	}
	if c.eventStream != "none" && !bucketName.MatchString(c.eventStream) {
		return fmt.Errorf("invalid --events-stream %q: letters, digits, _ and - only, or none", c.eventStream)
	}
	// JetStream refuses a duplicate window longer than the retention.
	if c.eventRetention < events.DuplicateWindow {
		return fmt.Errorf("invalid --events-retention %v: at least %v, the stream's duplicate window", c.eventRetention, events.DuplicateWindow)
	}
	// JetStream keeps at most 5 replicas of a stream.
	if c.kvReplicas < 1 || c.kvReplicas > 5 {
		return fmt.Errorf("invalid --kv-replicas %d: 1 to 5", c.kvReplicas)
	}
	if c.natsPing <= 0 {
		return fmt.Errorf("invalid --nats-ping-interval %v: more than 0", c.natsPing)
	}
	if c.natsMaxPings < 1 {
		return fmt.Errorf("invalid --nats-max-pings-out %d: at least 1", c.natsMaxPings)
	}
	if c.writeRetry < 0 {
		return fmt.Errorf("invalid --nats-write-retry %v: negative (0 turns retries off)", c.writeRetry)
	}
	if err := c.checkHistory(); err != nil {
		return err
	}
	if c.maxDevices < 1 {
		return fmt.Errorf("invalid --max-devices %d: at least 1", c.maxDevices)
	}
	// hub.Config reads 0 as its default, which is not what an operator
	// writing 0 means.
	if c.ruleWorkers < 1 {
		return fmt.Errorf("invalid --rule-workers %d: at least 1", c.ruleWorkers)
	}
	// These limits must be positive: transport reads 0 as its default,
	// which is not what an operator writing 0 means.
	for _, f := range []struct {
		name  string
		value float64
	}{
		{"--hello-timeout", c.helloTimeout.Seconds()},
		{"--max-message-bytes", float64(c.maxMessage)},
		{"--send-queue", float64(c.sendQueue)},
		{"--write-timeout", c.writeTimeout.Seconds()},
		{"--pong-timeout", c.pongTimeout.Seconds()},
		{"--close-timeout", c.closeTimeout.Seconds()},
		{"--status-rate", c.statusRate},
		{"--status-burst", float64(c.statusBurst)},
		{"--device-op-queue", float64(c.deviceOpQueue)},
		{"--events-queue", float64(c.eventsQueue)},
		{"--events-standby-max", float64(c.standbyKept)},
		{"--watch-pending-bytes", float64(c.watchPending)},
		{"--shutdown-timeout", c.shutdownWait.Seconds()},
		{"--startup-timeout", c.startupTimeout.Seconds()},
	} {
		if f.value <= 0 {
			return fmt.Errorf("invalid %s: more than 0", f.name)
		}
	}
	if c.pingInterval == 0 {
		return errors.New("invalid --ping-interval 0: use a negative value to turn pings off")
	}
	if c.shutdownDelay < 0 {
		return fmt.Errorf("invalid --shutdown-delay %v: negative", c.shutdownDelay)
	}
	if c.natsURL == "" {
		if c.kvReplicas != 1 {
			return fmt.Errorf("invalid --kv-replicas %d: the embedded nats-server is one node; use 1, or a NATS cluster with --nats-url", c.kvReplicas)
		}
		for _, f := range []struct{ name, value string }{{"--nats-creds", c.natsCreds}, {"--nats-tls-ca", c.natsTLSCA}} {
			if f.value != "" {
				return fmt.Errorf("%s applies to --nats-url only; the embedded nats-server needs none", f.name)
			}
		}
		if c.natsListen != "" {
			if _, _, err := splitNATSListen(c.natsListen); err != nil {
				return err
			}
		}
		if _, _, err := parseNATSSync(c.natsSync); err != nil {
			return err
		}
	} else {
		if c.natsListen != "" {
			return errors.New("--nats-listen applies to the embedded nats-server only: drop it, or --nats-url")
		}
		if c.explicit["nats-sync"] {
			return errors.New("--nats-sync applies to the embedded nats-server only: on a NATS cluster, set sync_interval in each server's configuration (docs/operations.md#durability)")
		}
		for _, f := range []struct{ name, path string }{{"--nats-creds", c.natsCreds}, {"--nats-tls-ca", c.natsTLSCA}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf("invalid %s: %w", f.name, err)
			}
		}
	}
	if err := c.webhooks.validate(); err != nil {
		return err
	}
	if c.eventStream != "none" {
		schedule, _ := parseDurationList(c.webhooks.retrySchedule) // parsed by validate
		if err := webhook.CheckRetrySchedule(schedule, c.webhooks.timeout, c.eventRetention); err != nil {
			return fmt.Errorf("invalid --webhook-retry-schedule %q: %w; shorten it, or lengthen --events-retention", c.webhooks.retrySchedule, err)
		}
	}
	if c.replicaID != "" && (len(c.replicaID) > 128 || strings.IndexFunc(c.replicaID, notIDRune) >= 0) {
		return fmt.Errorf("invalid --replica-id %q: up to 128 characters, no spaces or control characters", c.replicaID)
	}
	return nil
}

// NATS keepalive defaults: a server that answers no ping for 2-3 intervals
// is left, so a hub leaves a frozen server within 4-6 seconds.
const (
	defaultNATSPingInterval = 2 * time.Second
	defaultNATSMaxPingsOut  = 2
)

// clusterElection is the longest stream leader election the grace must
// outlast: measured about 5s from a SIGKILL of the leader to the next
// acknowledged write on a three-node cluster, with a raft election timeout
// of 4-9s; reports from the field say up to 10s.
const clusterElection = 10 * time.Second

// clusterLivenessFloor is the shortest --liveness-ttl with which a
// replica's liveness key outlives a stream leader election: the key is
// refreshed every third of its TTL, so a key last refreshed just before
// the leader died must still be alive when the first refresh after the
// election lands: ttl*2/3 > election + a margin. 0 when the bucket has one
// replica (no elections).
func (c *serveConfig) clusterLivenessFloor() time.Duration {
	if c.kvReplicas <= 1 {
		return 0
	}
	return (clusterElection + clusterGraceMargin) * 3 / 2
}

// clusterGraceMargin covers a refresh's own round trip and clock skew
// between the NATS servers that time the TTL.
const clusterGraceMargin = 2 * time.Second

// writeRetryConfig is hub.Config.WriteRetry for --nats-write-retry, where 0
// means no retries.
func writeRetryConfig(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// bucketName is what JetStream accepts as a key-value bucket name.
var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func notIDRune(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }

// defaultReplicaID is HOSTNAME:PORT, the port the HTTP listener got: unique
// among replicas on one host as well as across hosts, and the same after a
// restart, so the admin page lists a restarted replica once.
func defaultReplicaID(addr net.Addr) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	port := "0"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	return net.JoinHostPort(host, port)
}

// validate checks the --webhook-* flags.
func (w webhookFlags) validate() error {
	if w.timeout <= 0 {
		return fmt.Errorf("invalid --webhook-timeout %v: more than 0", w.timeout)
	}
	if _, err := parseDurationList(w.retrySchedule); err != nil {
		return fmt.Errorf("invalid --webhook-retry-schedule %q: %w", w.retrySchedule, err)
	}
	for _, f := range []struct {
		name  string
		value int
	}{
		{"--webhook-max-per-site", w.maxPerSite},
		{"--webhook-max-pending", w.maxPending},
		{"--webhook-concurrency", w.concurrency},
		{"--webhook-deliveries-kept", w.kept},
	} {
		if f.value < 1 {
			return fmt.Errorf("invalid %s %d: at least 1", f.name, f.value)
		}
	}
	return nil
}

// parseDurationList parses a comma list of positive durations; an empty
// list is allowed (no retries).
func parseDurationList(s string) ([]time.Duration, error) {
	out := []time.Duration{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for i, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("item %d (%q): want a positive duration such as 5s or 2h", i+1, strings.TrimSpace(part))
		}
		out = append(out, d)
	}
	return out, nil
}

// durationList formats ds as parseDurationList reads them, in their
// shortest form (5m, not 5m0s).
func durationList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		switch {
		case d%time.Hour == 0:
			parts[i] = fmt.Sprintf("%dh", d/time.Hour)
		case d%time.Minute == 0:
			parts[i] = fmt.Sprintf("%dm", d/time.Minute)
		default:
			parts[i] = d.String()
		}
	}
	return strings.Join(parts, ",")
}
