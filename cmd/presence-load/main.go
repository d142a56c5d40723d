package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "presence-load:", err)
		os.Exit(1)
	}
}

var (
	errUsage = errors.New("usage")
	errHelp  = errors.New("help")
)

// Scenarios: each widget depends on exactly one agent, so that the number of
// frames every change causes is known in advance.
const (
	scenarioFanout = "fanout"
	scenarioGroups = "groups"
)

type config struct {
	urls        []string // hub base URLs (http or https), no trailing slash
	secret      string
	scenario    string
	sites       int
	sitePrefix  string
	groups      int
	widgets     int
	agents      int // -1: as many as the scenario needs
	devices     int
	changes     int
	interval    time.Duration
	rate        float64
	duration    time.Duration
	connectRate float64
	dialers     int
	src         []net.IP
	pids        []int
	json        bool
	timeout     time.Duration
	cpuProfile  string
	storm       bool
	stormRate   float64
}

const usageHeader = `presence-load: a load generator speaking the presencehub wire protocol.

Usage: presence-load [flags]
       presence-load floor --addr HOST:PORT --jwt-secret SECRET   (the write(2) floor; see docs/benchmarks.md)
       presence-load replicas --presencehub BIN   (the scale simulation of issue 21; see docs/load.md)

Phases:
  1. connect: A agents with D devices each (hello with a token minted from
     --jwt-secret; device kinds cycle desktop, mobile, web), then W widget
     sockets, at most --connect-rate new sockets per second, spread
     round-robin over the --url replicas (and over the --src addresses).
     Agents whose stored status is not online are set online first; then
     every widget must show its initial status (online, or offline without
     agents) within --timeout.
  2. changes: each agent alternates busy, online, busy, ... from its first
     device, with ref "<seq>". Either --changes K rounds (every agent changes
     once per round, rounds --interval apart, agents evenly staggered inside
     a round) or, with --rate R, R changes per second for --duration, round
     robin over the agents. Latency is measured from the send to (a) the
     agent's OTHER devices receiving the status frame with that ref, and
     (b) each widget receiving the widget_status frame the change causes.
  3. report, and close every socket (devices say bye first).
  With --storm, phase 2 is replaced by a reconnect storm: every widget
  socket is closed at once and all are reopened at once; the report gives
  the time until each widget has its first widget_status (the snapshot).

Scenarios (--scenario); sites are named load-0, load-1, ...:
  fanout (default): one agent per site (A = --sites), in no group. Widgets
    are spread round-robin over the sites, and inside a site over the
    site-wide widget and groups g0..g<N-1> (--groups N). The site's agent is
    the only relevant agent of all of them, so every change of the agent
    flips every widget of its site (online <-> busy).
  groups: one agent per group (A = sites x groups, --groups >= 1), each a
    member of its group only; widgets are spread over the group widgets only
    (no site-wide widget), so a change flips the widgets of one group.
  Sites must hold no other online agents (from elsewhere, or from a killed
  earlier run still inside its grace period), or widgets will not flip.

The hub caps widget sockets per client address (256 by default), and HTTP
connections, handshakes included, per TCP peer address (64), and all of the
generator's come from the --src addresses: start the hubs with
--max-widgets-per-client -1.

Counting: expected frames are, per change, one status frame on every device
of the agent (the sender's echo included) plus one widget_status frame on
every widget of the agent. "lost" are expected frames that did not arrive
within --timeout after the last change; "duplicates" are a widget receiving
the same status twice in a row or a device receiving a ref twice. Lost,
duplicate or unexpected frames, changes refused by the hub, and sockets the
hub closed make the exit status 1.

Flags:
`

// parseArgs parses the command line into a config.
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("presence-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHeader)
		fs.PrintDefaults()
	}
	var (
		c    config
		urls string
		src  string
		pids string
	)
	fs.StringVar(&urls, "url", "http://127.0.0.1:8080", "hub base URL; a comma list spreads sockets over replicas round-robin")
	fs.StringVar(&c.secret, "jwt-secret", "", "the hub's HS256 secret, to mint agent tokens (default $PRESENCE_JWT_SECRET)")
	fs.StringVar(&c.scenario, "scenario", scenarioFanout, "fanout or groups (see above)")
	fs.IntVar(&c.sites, "sites", 1, "number of sites (load-0, load-1, ...)")
	fs.StringVar(&c.sitePrefix, "site-prefix", "load", "prefix of the site ids (PREFIX-0, PREFIX-1, ...), so that several generators can share hubs without sharing sites")
	fs.IntVar(&c.groups, "groups", 0, "groups per site (g0, g1, ...)")
	fs.IntVar(&c.widgets, "widgets", 0, "widget sockets in total, spread over sites and groups")
	var agents optionalInt
	fs.Var(&agents, "agents", "`N` agents in total (default: as many as the scenario needs; 0: none)")
	fs.IntVar(&c.devices, "devices", 2, "devices per agent")
	fs.IntVar(&c.changes, "changes", 40, "rounds of status changes (each agent changes once per round)")
	fs.DurationVar(&c.interval, "interval", 150*time.Millisecond, "time between rounds of --changes")
	fs.Float64Var(&c.rate, "rate", 0, "status changes per second in total, for --duration (instead of --changes)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long --rate runs")
	fs.Float64Var(&c.connectRate, "connect-rate", 2000, "new sockets per second while connecting")
	fs.IntVar(&c.dialers, "dialers", 256, "sockets being opened at the same time, at most, while connecting")
	fs.StringVar(&src, "src", "", "comma list of local source IPs to bind outgoing connections to, round-robin (e.g. 127.0.0.1,127.0.0.2)")
	fs.StringVar(&pids, "pids", "", "comma list of hub process ids to measure (CPU and RSS from /proc)")
	fs.BoolVar(&c.json, "json", false, "print a JSON summary instead of the text report")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for expected frames (deliveries after the last change, initial states, storm snapshots)")
	fs.BoolVar(&c.storm, "storm", false, "reconnect storm instead of status changes: close every widget at once and reopen them all at once")
	fs.Float64Var(&c.stormRate, "storm-rate", 0, "with --storm, new sockets per second while reopening (0: all at once)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile to `FILE` (go tool pprof FILE), to see what measuring costs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "presence-load: unexpected arguments: %v\n", fs.Args())
		return nil, errUsage
	}
	c.agents = -1
	if agents.set {
		c.agents = agents.n
	}
	if c.secret == "" {
		c.secret = os.Getenv("PRESENCE_JWT_SECRET")
	}
	for _, u := range splitList(urls) {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "ws" && pu.Scheme != "wss") || pu.Host == "" {
			return nil, fmt.Errorf("invalid --url %q: want http://HOST:PORT", u)
		}
		switch pu.Scheme {
		case "ws":
			pu.Scheme = "http"
		case "wss":
			pu.Scheme = "https"
		}
		c.urls = append(c.urls, strings.TrimRight(pu.String(), "/"))
	}
	if len(c.urls) == 0 {
		return nil, errors.New("--url: no hub URL given")
	}
	for _, s := range splitList(src) {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid --src address %q", s)
		}
		c.src = append(c.src, ip)
	}
	for _, s := range splitList(pids) {
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("invalid --pids entry %q", s)
		}
		c.pids = append(c.pids, pid)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *config) validate() error {
	switch {
	case c.sites < 1:
		return errors.New("--sites must be at least 1")
	case c.groups < 0:
		return errors.New("--groups must not be negative")
	case c.widgets < 0:
		return errors.New("--widgets must not be negative")
	case c.devices < 1:
		return errors.New("--devices must be at least 1")
	case c.changes < 0:
		return errors.New("--changes must not be negative")
	case c.interval <= 0:
		return errors.New("--interval must be positive")
	case c.rate < 0:
		return errors.New("--rate must not be negative")
	case c.rate > 0 && c.duration <= 0:
		return errors.New("--duration must be positive with --rate")
	case c.connectRate <= 0:
		return errors.New("--connect-rate must be positive")
	case c.dialers < 1:
		return errors.New("--dialers must be at least 1")
	case c.timeout <= 0:
		return errors.New("--timeout must be positive")
	case c.stormRate < 0:
		return errors.New("--storm-rate must not be negative")
	case c.storm && c.widgets == 0:
		return errors.New("--storm needs --widgets")
	}
	need := 0
	switch c.scenario {
	case scenarioFanout:
		need = c.sites
	case scenarioGroups:
		if c.groups < 1 {
			return errors.New("--scenario groups needs --groups 1 or more")
		}
		need = c.sites * c.groups
	default:
		return fmt.Errorf("unknown --scenario %q: want fanout or groups", c.scenario)
	}
	if c.agents < 0 {
		c.agents = need
	}
	if c.agents != 0 && c.agents != need {
		return fmt.Errorf("--scenario %s with %d site(s) and %d group(s) needs --agents %d (or 0), not %d: each widget must depend on exactly one agent for the expected frames to be known", c.scenario, c.sites, c.groups, need, c.agents)
	}
	if c.agents > 0 && c.secret == "" {
		return errors.New("agents need --jwt-secret (or PRESENCE_JWT_SECRET) to mint their tokens")
	}
	return nil
}

// totalChanges is how many status changes the change phase sends.
func (c *config) totalChanges() int {
	if c.agents == 0 || c.storm {
		return 0
	}
	if c.rate > 0 {
		return int(c.rate*c.duration.Seconds() + 0.5)
	}
	return c.changes * c.agents
}

// changeStep is the time between two consecutive changes.
func (c *config) changeStep() time.Duration {
	if c.rate > 0 {
		return time.Duration(float64(time.Second) / c.rate)
	}
	return c.interval / time.Duration(max(c.agents, 1))
}

// run is the whole command: parse, raise the file limit, load, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "floor" {
		return runFloor(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "replicas" {
		return runReplicas(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	if err := raiseFileLimit(cfg.widgets + cfg.agents*cfg.devices); err != nil {
		return err
	}
	lt, err := newLoadTest(cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		stopProfile, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	sum, err := lt.run(ctx)
	if sum != nil {
		if cfg.json {
			if werr := sum.writeJSON(stdout); werr != nil && err == nil {
				err = werr
			}
		} else {
			sum.writeText(stdout)
		}
	}
	if err != nil {
		return err
	}
	if problems := sum.problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "presence-load: !!!", p)
		}
		return fmt.Errorf("%d problem(s): %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// startCPUProfile profiles the generator into path until the returned
// function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("failed to create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// fdReserve is how many descriptors besides the sockets the process needs
// (stdio, the runtime's poller, the HTTP transports' spare connections).
const fdReserve = 64

// raiseFileLimit raises RLIMIT_NOFILE's soft limit to the hard limit and
// fails unless sockets (plus a reserve) fit under it.
func raiseFileLimit(sockets int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("failed to read RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("failed to raise RLIMIT_NOFILE to %d: %w", lim.Max, err)
		}
	}
	if need := uint64(sockets) + fdReserve; need > lim.Cur {
		return fmt.Errorf("%d sockets (widgets + agents x devices) need about %d file descriptors, but RLIMIT_NOFILE is %d (the hard limit): raise it (ulimit -Hn / ulimit -n, or LimitNOFILE) or open fewer sockets", sockets, need, lim.Cur)
	}
	return nil
}

// optionalInt is an int flag that knows whether it was set (and prints no
// default in --help).
type optionalInt struct {
	n   int
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.n)
}

func (o *optionalInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a whole number, 0 or more")
	}
	o.n, o.set = n, true
	return nil
}

// splitList splits a comma list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
