package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/presencehub/presencehub/hub"
)

// `presence-load replicas`: the scale simulation of issue 21 with real
// processes. It deploys one nats-server and `presencehub serve` replicas on
// this machine and measures what a replica costs for the devices of other
// replicas (phase A), and what each replica holds when the devices are
// routed to replicas by their site, with 2 and then 4 replicas (phase B).
// The report is in replicas_report.go; the deployment and its measurement
// in replicas_deploy.go. See docs/load.md.

const replicasUsage = `presence-load replicas: the scale simulation of issue 21, with real processes.

Usage: presence-load replicas --presencehub BIN [flags]

It starts a nats-server (in this process, or --nats-server BIN) and
presencehub replicas on it, on loopback, with agent devices of one agent
each, two agents per site, hello'd over real sockets.

  A. "A replica with no clients": 2 replicas. The devices go to the one
     that owns the duties; the other has no client. For each of --steps
     (devices in total), once every device is welcomed and --settle has
     passed, both are measured over --window: CPU, RSS, Go heap in use after
     a forced GC, sites held and followed, and the messages stored per
     second in the presence and members buckets' streams.
  B. "Clients routed by site": --routed-devices devices (--routed-devices/2
     sites), each sent to replica FNV-1a-32(site) mod N, for each N of
     --routed-replicas, a fresh deployment each; every replica is measured.

Then it checks issue 21's targets and says which are met. The hub
processes inherit this process's priority (run it under nice) and file
limit.

Flags:
`

// replicasConfig is the command line of `presence-load replicas`.
type replicasConfig struct {
	presencehub    string
	natsServer     string
	secret         string
	grace          time.Duration
	livenessTTL    time.Duration
	steps          []int
	routedDevices  int
	routedReplicas []int
	window         time.Duration
	settle         time.Duration
	connectRate    float64
	dialers        int
	timeout        time.Duration
	dir            string
	keep           bool
	jsonPath       string
	serveArgs      []string
	// idleOwns makes phase A's replica with no clients the one that owns
	// the duties.
	idleOwns bool
}

func parseReplicasArgs(args []string, stderr io.Writer) (*replicasConfig, error) {
	fs := flag.NewFlagSet("presence-load replicas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, replicasUsage); fs.PrintDefaults() }
	c := &replicasConfig{}
	var steps, routed, serveArgs string
	fs.StringVar(&c.presencehub, "presencehub", "", "the presencehub binary to run (required)")
	fs.StringVar(&c.natsServer, "nats-server", "", "a nats-server binary to run as a process of its own (default: a nats-server in this process)")
	fs.StringVar(&c.secret, "jwt-secret", "", "the replicas' HS256 secret (default: a random one)")
	fs.DurationVar(&c.grace, "grace", 4*time.Second, "the replicas' --grace")
	fs.DurationVar(&c.livenessTTL, "liveness-ttl", hub.DefaultLivenessTTL, "the replicas' --liveness-ttl")
	fs.StringVar(&steps, "steps", "0,1000,2500,5000", "phase A: devices in total at each step, in ascending order")
	fs.IntVar(&c.routedDevices, "routed-devices", 4000, "phase B: devices (two per site); 0 skips phase B")
	fs.StringVar(&routed, "routed-replicas", "2,4", "phase B: replica counts, a fresh deployment each")
	fs.DurationVar(&c.window, "window", 20*time.Second, "how long each measurement lasts")
	fs.DurationVar(&c.settle, "settle", 5*time.Second, "how long after the last device was welcomed a measurement starts, so that it leaves the connecting out")
	fs.Float64Var(&c.connectRate, "connect-rate", 1000, "new sockets per second while connecting")
	fs.IntVar(&c.dialers, "dialers", 32, "sockets being opened at the same time, at most")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "how long a process may take to start, a device to be welcomed, the duties to settle")
	fs.StringVar(&c.dir, "dir", "", "directory for the processes' logs and NATS store (default: a temporary one, removed after a successful run)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary --dir after a successful run")
	fs.StringVar(&c.jsonPath, "json", "", "also write the figures as JSON to `FILE`")
	fs.BoolVar(&c.idleOwns, "idle-owns-duties", false, "phase A: the replica with no clients is the one that owns the duties (default: the other one)")
	fs.StringVar(&serveArgs, "serve-args", "", "more flags for every presencehub serve, space separated (e.g. \"--events-stream none\")")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "presence-load replicas: unexpected arguments: %v\n", fs.Args())
		return nil, errUsage
	}
	c.serveArgs = strings.Fields(serveArgs)
	var err error
	if c.steps, err = intList(steps, 0); err != nil || len(c.steps) == 0 || !slices.IsSorted(c.steps) {
		return nil, fmt.Errorf("invalid --steps %q: want device counts in ascending order, such as 0,1000,5000", steps)
	}
	if c.routedReplicas, err = intList(routed, 1); err != nil {
		return nil, fmt.Errorf("invalid --routed-replicas %q: want replica counts, such as 2,4", routed)
	}
	switch {
	case c.presencehub == "":
		return nil, errors.New("--presencehub is required: the presencehub binary (go build -o /tmp/ph ./cmd/presencehub)")
	case c.routedDevices < 0:
		return nil, errors.New("--routed-devices must not be negative")
	case c.window <= 0 || c.settle < 0 || c.timeout <= 0:
		return nil, errors.New("--window and --timeout must be positive, --settle not negative")
	case c.connectRate <= 0 || c.dialers < 1:
		return nil, errors.New("--connect-rate must be positive and --dialers at least 1")
	}
	if c.secret == "" {
		b := make([]byte, 32)
		rand.Read(b)
		c.secret = hex.EncodeToString(b)
	}
	return c, nil
}

// intList parses a comma list of whole numbers of at least least.
func intList(s string, least int) ([]int, error) {
	var out []int
	for _, item := range splitList(s) {
		n, err := strconv.Atoi(item)
		if err != nil || n < least {
			return nil, fmt.Errorf("bad item %q", item)
		}
		out = append(out, n)
	}
	return out, nil
}

// runReplicas is `presence-load replicas`.
func runReplicas(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseReplicasArgs(args, stderr)
	if err != nil {
		return err
	}
	if err := raiseFileLimit(max(cfg.steps[len(cfg.steps)-1], cfg.routedDevices)); err != nil {
		return err
	}
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "presence-replicas-"); err != nil {
			return err
		}
		defer func() {
			if err == nil && !cfg.keep {
				os.RemoveAll(cfg.dir)
			} else {
				fmt.Fprintf(stderr, "presence-load replicas: logs in %s\n", cfg.dir)
			}
		}()
	}
	sum := newReplicasSummary(cfg)
	if sum.NoClients, err = noClientsPhase(ctx, cfg, stderr); err != nil {
		return fmt.Errorf("phase A: %w", err)
	}
	if cfg.routedDevices > 0 {
		for _, n := range cfg.routedReplicas {
			r, err := routedPhase(ctx, cfg, n, stderr)
			if err != nil {
				return fmt.Errorf("phase B, %d replicas: %w", n, err)
			}
			sum.Routed = append(sum.Routed, r)
		}
	}
	sum.checkTargets()
	sum.writeText(stdout)
	if cfg.jsonPath != "" {
		return sum.writeJSONFile(cfg.jsonPath)
	}
	return nil
}

// worldAgents lays out n agents of one device each, two agents per site
// (sim-0, sim-1, ...), each device's URL the one route picks for its site.
func worldAgents(n int, route func(site string) string) []*agent {
	agents := make([]*agent, n)
	for i := range n {
		site := fmt.Sprintf("sim-%d", i/2)
		a := &agent{idx: i, site: site, id: fmt.Sprintf("sim-agent-%d", i)}
		a.devices = []*device{{agent: a, url: route(site)}}
		agents[i] = a
	}
	return agents
}

// world is a deployment, the replica that owns its duties, and the devices
// laid out on its replicas.
type world struct {
	d     *deployment
	owner int
	l     *loadTest
}

// startWorld deploys n replicas in --dir/name, waits for one of them to own
// the duties, and lays out devices (none open yet), each on the replica
// route picks for its site.
func startWorld(ctx context.Context, cfg *replicasConfig, name string, n, devices int, route func(site string, owner int) int, stderr io.Writer) (*world, error) {
	d, err := deploy(ctx, cfg, name, n)
	if err != nil {
		return nil, err
	}
	owner, err := d.waitDuties(ctx)
	if err != nil {
		d.stop()
		return nil, err
	}
	l := newSockets(&config{secret: cfg.secret, devices: 1, timeout: cfg.timeout}, stderr)
	l.agents = worldAgents(devices, func(site string) string { return d.replicas[route(site, owner)].url })
	if err := l.mintTokens(); err != nil {
		d.stop()
		return nil, err
	}
	return &world{d: d, owner: owner, l: l}, nil
}

// stop closes the devices (with bye), then the deployment.
func (w *world) stop() {
	w.l.closeAll()
	w.d.stop()
}

// connectDevices opens devices [from, to) of l and waits for every welcome.
func connectDevices(ctx context.Context, cfg *replicasConfig, l *loadTest, from, to int) error {
	_, err := l.connectPhase(ctx, "agent devices", to-from, cfg.connectRate, cfg.dialers, false,
		func(ctx context.Context, i int) error { return l.openDevice(ctx, from+i) })
	return err
}

// settleAndMeasure waits --settle, measures a window, and checks that no
// device was closed meanwhile.
func settleAndMeasure(ctx context.Context, cfg *replicasConfig, d *deployment, l *loadTest) (*window, error) {
	if err := sleepCtx(ctx, cfg.settle); err != nil {
		return nil, err
	}
	w, err := d.measure(ctx)
	if err != nil {
		return nil, err
	}
	if closed := l.closedSummary(); closed != "" {
		return nil, fmt.Errorf("devices were closed while they should have stayed live: %s", closed)
	}
	return w, nil
}

// noClientsPhase is phase A.
func noClientsPhase(ctx context.Context, cfg *replicasConfig, stderr io.Writer) (*noClients, error) {
	fmt.Fprintf(stderr, "phase A: 2 replicas, devices on one, steps %v\n", cfg.steps)
	clientsOn := func(_ string, owner int) int {
		if cfg.idleOwns {
			return 1 - owner
		}
		return owner
	}
	wd, err := startWorld(ctx, cfg, "a", 2, cfg.steps[len(cfg.steps)-1], clientsOn, stderr)
	if err != nil {
		return nil, err
	}
	defer wd.stop()
	d, l := wd.d, wd.l
	clients := clientsOn("", wd.owner)
	idle := 1 - clients
	out := &noClients{Idle: d.replicas[idle].name, Clients: d.replicas[clients].name, IdleOwns: cfg.idleOwns}
	from := 0
	for _, n := range cfg.steps {
		if err := connectDevices(ctx, cfg, l, from, n); err != nil {
			return nil, err
		}
		from = n
		w, err := settleAndMeasure(ctx, cfg, d, l)
		if err != nil {
			return nil, err
		}
		if r := w.Replicas[idle]; r.Duties != cfg.idleOwns || r.dutiesAtStart != cfg.idleOwns {
			return nil, fmt.Errorf("the duties moved (%s): run again", r.Name)
		}
		if got := w.Replicas[clients].Sockets; got != n {
			return nil, fmt.Errorf("%s holds %d sockets, not %d", d.replicas[clients].name, got, n)
		}
		fmt.Fprintf(stderr, "phase A: %d devices: %s CPU %.2f%% of a core, heap %.1f MiB; NATS %.2f writes/s\n",
			n, w.Replicas[idle].Name, w.Replicas[idle].CPUPercent, w.Replicas[idle].HeapInuseBytes/mib, w.Writes.Total)
		out.Steps = append(out.Steps, noClientsStep{Devices: n, Sites: (n + 1) / 2, Idle: w.Replicas[idle], Clients: w.Replicas[clients],
			Writes: w.Writes, NATSCPUPercent: w.NATSCPUPercent, NATSRSSBytes: w.NATSRSSBytes})
	}
	out.growth()
	return out, nil
}

// routeOf is the replica a balancer hashing on ?site= sends site to.
func routeOf(site string, replicas int) int {
	h := fnv.New32a()
	h.Write([]byte(site))
	return int(h.Sum32() % uint32(replicas))
}

// routedPhase is phase B with n replicas.
func routedPhase(ctx context.Context, cfg *replicasConfig, n int, stderr io.Writer) (*routed, error) {
	fmt.Fprintf(stderr, "phase B: %d replicas, %d devices routed by site\n", n, cfg.routedDevices)
	wd, err := startWorld(ctx, cfg, fmt.Sprintf("b%d", n), n, cfg.routedDevices, func(site string, _ int) int { return routeOf(site, n) }, stderr)
	if err != nil {
		return nil, err
	}
	defer wd.stop()
	d, l, owner, agents := wd.d, wd.l, wd.owner, wd.l.agents
	if err := connectDevices(ctx, cfg, l, 0, len(agents)); err != nil {
		return nil, err
	}
	w, err := settleAndMeasure(ctx, cfg, d, l)
	if err != nil {
		return nil, err
	}
	out := &routed{Replicas: n, Devices: len(agents), Sites: (len(agents) + 1) / 2, Writes: w.Writes,
		NATSCPUPercent: w.NATSCPUPercent, NATSRSSBytes: w.NATSRSSBytes}
	routedSites := make([]map[string]bool, n)
	routedDevices := make([]int, n)
	for i := range routedSites {
		routedSites[i] = make(map[string]bool)
	}
	for _, a := range agents {
		i := routeOf(a.site, n)
		routedSites[i][a.site] = true
		routedDevices[i]++
	}
	for i, r := range w.Replicas {
		if r.Duties != r.dutiesAtStart || r.Duties != (i == owner) {
			return nil, fmt.Errorf("the duties moved during the measurement (%s): run again", r.Name)
		}
		if r.Sockets != routedDevices[i] {
			return nil, fmt.Errorf("%s holds %d sockets, not %d", r.Name, r.Sockets, routedDevices[i])
		}
		out.PerReplica = append(out.PerReplica, routedReplica{replicaWindow: r, RoutedSites: len(routedSites[i]),
			WithoutClient: r.Sites - len(routedSites[i])})
	}
	fmt.Fprintf(stderr, "phase B: %d replicas: NATS %.2f writes/s\n", n, w.Writes.Total)
	return out, nil
}
