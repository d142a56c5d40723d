package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/transport/webhook"
)

// validate checks the flags that serve would otherwise find wrong only after
// it has started the embedded NATS server or written into --data-dir: a
// mistyped flag must stop serve before it leaves anything behind. The rules
// of the hub's own (hub.New, hub.OpenBucket) are repeated here, in terms of
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
	if c.eventRetention < hub.EventDuplicateWindow {
		return fmt.Errorf("invalid --events-retention %v: at least %v, the stream's duplicate window", c.eventRetention, hub.EventDuplicateWindow)
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
	if c.maxDevices < 1 {
		return fmt.Errorf("invalid --max-devices %d: at least 1", c.maxDevices)
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
	} else {
		if c.natsListen != "" {
			return errors.New("--nats-listen applies to the embedded nats-server only: drop it, or --nats-url")
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

// clusterGraceFloor is the shortest --grace with which live leases outlive a
// stream leader election: a lease last refreshed just before the leader died
// must still be alive when the first refresh after the election lands, so
// grace > election + refresh interval + a margin. 0 when the bucket has one
// replica (no elections).
func (c *serveConfig) clusterGraceFloor() time.Duration {
	if c.kvReplicas <= 1 {
		return 0
	}
	refresh := c.refreshEvery
	if refresh == 0 {
		// With the default refresh of grace/4 the rule is
		// grace*3/4 > election + margin.
		return (clusterElection + clusterGraceMargin) * 4 / 3
	}
	return clusterElection + refresh + clusterGraceMargin
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
