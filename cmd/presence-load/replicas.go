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
	"github.com/presencehub/presencehub/hub/store"
)

// `presence-load replicas`: the scale simulation of issue 21 with real
// processes. It deploys one nats-server and `presencehub serve` replicas on
// this machine and measures what a replica costs for the devices of other
// replicas, in each role a replica can have for a partition of sites (its
// owner, its standby, neither: phase A), and what each replica holds when
// the devices are routed to replicas by their site, with 2 and then 4
// replicas and the partitions' duties spread over them (phase B). The
// report is in replicas_report.go; the deployment, its roles and its
// measurement in replicas_deploy.go, replicas_roles.go and
// replicas_measure.go. See docs/load.md.

const replicasUsage = `presence-load replicas: the scale simulation of issue 21, with real processes.

Usage: presence-load replicas --presencehub BIN [flags]

It starts a nats-server (in this process, or --nats-server BIN) and
presencehub replicas on it, on loopback, with agent devices of one agent
each, two agents per site, hello'd over real sockets.

  A. "A replica with no clients": 3 replicas, 1 partition. One owns the
     partition (its duties, and it publishes its events); one stands by for
     it (it would own it if the owner went: it derives and keeps the same
     events, so it holds every site, as the owner does); the third is
     neither. The roles are read from presencehub_duties and
     presencehub_standby_partitions. The devices go to the replica of
     --devices-on (the owner by default); the two others have no client.
     For each of --steps (devices in total), once every device is welcomed
     and --settle has passed, the three are measured over --window: CPU,
     RSS, Go heap in use after a forced GC, sites held and followed, and the
     messages stored per second in the presence and members buckets'
     streams; then the growth per remote device of each replica without
     clients.
  B. "Clients routed by site": --routed-devices devices (--routed-devices/2
     sites), each sent to replica FNV-1a-32(site) mod N, for each N of
     --routed-replicas, a fresh deployment each with --partitions
     partitions, whose owners and standbys spread over the replicas; every
     replica is measured, and its sites held are checked against its
     routed sites plus the sites of the partitions it owns or stands by for.

Then it checks issue 21's targets and says which are met, and which no
longer hold by design since issue 22 (a partition's standby holds every
site of it). The hub processes inherit this process's priority (run it
under nice) and file limit.

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
	// devicesOn is the role of phase A's replica with the devices:
	// roleOwner, roleStandby or roleIdle.
	devicesOn string
	// partitions is phase B's --partitions (phase A has 1).
	partitions int
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
	fs.StringVar(&c.devicesOn, "devices-on", roleOwner, "phase A: the role of the replica the devices go to: owner, standby or idle (neither); the two others have no client")
	fs.IntVar(&c.partitions, "partitions", 16, "phase B: the replicas' --partitions, so that the partitions' owners and standbys spread over them")
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
	case c.devicesOn != roleOwner && c.devicesOn != roleStandby && c.devicesOn != roleIdle:
		return nil, fmt.Errorf("invalid --devices-on %q: owner, standby or idle", c.devicesOn)
	case c.partitions < 1 || c.partitions > 1024:
		return nil, errors.New("--partitions must be 1 to 1024")
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

// world is a deployment, its replicas' roles, and the devices laid out on
// its replicas.
type world struct {
	d     *deployment
	roles *roles
	l     *loadTest
}

// startWorld deploys n replicas with partitions partitions in --dir/name,
// waits for each to take its roles, and lays out devices (none open yet),
// each on the replica route picks for its site.
func startWorld(ctx context.Context, cfg *replicasConfig, name string, n, partitions, devices int, route func(site string, ro *roles) int, stderr io.Writer) (*world, error) {
	d, err := deploy(ctx, cfg, name, n, partitions)
	if err != nil {
		return nil, err
	}
	ro, err := d.waitRoles(ctx, partitions)
	if err != nil {
		d.stop()
		return nil, err
	}
	l := newSockets(&config{secret: cfg.secret, devices: 1, timeout: cfg.timeout}, stderr)
	l.agents = worldAgents(devices, func(site string) string { return d.replicas[route(site, ro)].url })
	if err := l.mintTokens(); err != nil {
		d.stop()
		return nil, err
	}
	return &world{d: d, roles: ro, l: l}, nil
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
// device was closed and no role moved meanwhile.
func settleAndMeasure(ctx context.Context, cfg *replicasConfig, wd *world) (*window, error) {
	if err := sleepCtx(ctx, cfg.settle); err != nil {
		return nil, err
	}
	w, err := wd.d.measure(ctx)
	if err != nil {
		return nil, err
	}
	if closed := wd.l.closedSummary(); closed != "" {
		return nil, fmt.Errorf("devices were closed while they should have stayed live: %s", closed)
	}
	if err := checkWindowRoles(w, wd.roles); err != nil {
		return nil, err
	}
	return w, nil
}

// Phase A's roles: the partition's owner, its standby, and the replica
// that is neither.
const (
	roleOwner   = "owner"
	roleStandby = "standby"
	roleIdle    = "idle"
)

// phaseAReplicas is phase A's deployment: one replica of each role.
const phaseAReplicas = 3

// phaseARoles returns the replica of each role of phase A's one partition.
func phaseARoles(ro *roles) map[string]int {
	owner, standby := ro.owner[0], ro.standby[0]
	return map[string]int{roleOwner: owner, roleStandby: standby, roleIdle: 0 + 1 + 2 - owner - standby}
}

// noClientsPhase is phase A.
func noClientsPhase(ctx context.Context, cfg *replicasConfig, stderr io.Writer) (*noClients, error) {
	fmt.Fprintf(stderr, "phase A: %d replicas, 1 partition, devices on the %s, steps %v\n", phaseAReplicas, cfg.devicesOn, cfg.steps)
	wd, err := startWorld(ctx, cfg, "a", phaseAReplicas, 1, cfg.steps[len(cfg.steps)-1],
		func(_ string, ro *roles) int { return phaseARoles(ro)[cfg.devicesOn] }, stderr)
	if err != nil {
		return nil, err
	}
	defer wd.stop()
	d, l := wd.d, wd.l
	idx := phaseARoles(wd.roles)
	out := &noClients{Owner: d.replicas[idx[roleOwner]].name, Standby: d.replicas[idx[roleStandby]].name,
		Idle: d.replicas[idx[roleIdle]].name, DevicesOn: cfg.devicesOn}
	from := 0
	for _, n := range cfg.steps {
		if err := connectDevices(ctx, cfg, l, from, n); err != nil {
			return nil, err
		}
		from = n
		w, err := settleAndMeasure(ctx, cfg, wd)
		if err != nil {
			return nil, err
		}
		for role, i := range idx {
			want := 0
			if role == cfg.devicesOn {
				want = n
			}
			if got := w.Replicas[i].Sockets; got != want {
				return nil, fmt.Errorf("%s (the %s) holds %d sockets, not %d", d.replicas[i].name, role, got, want)
			}
		}
		st := noClientsStep{Devices: n, Sites: (n + 1) / 2, Owner: w.Replicas[idx[roleOwner]], Standby: w.Replicas[idx[roleStandby]],
			Idle: w.Replicas[idx[roleIdle]], Writes: w.Writes, NATSCPUPercent: w.NATSCPUPercent, NATSRSSBytes: w.NATSRSSBytes}
		fmt.Fprintf(stderr, "phase A: %d devices: idle %s CPU %.2f%% of a core, heap %.1f MiB; standby %s CPU %.2f%%, heap %.1f MiB; NATS %.2f writes/s\n",
			n, st.Idle.Name, st.Idle.CPUPercent, st.Idle.HeapInuseBytes/mib, st.Standby.Name, st.Standby.CPUPercent, st.Standby.HeapInuseBytes/mib, w.Writes.Total)
		out.Steps = append(out.Steps, st)
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
	fmt.Fprintf(stderr, "phase B: %d replicas, %d partitions, %d devices routed by site\n", n, cfg.partitions, cfg.routedDevices)
	wd, err := startWorld(ctx, cfg, fmt.Sprintf("b%d", n), n, cfg.partitions, cfg.routedDevices,
		func(site string, _ *roles) int { return routeOf(site, n) }, stderr)
	if err != nil {
		return nil, err
	}
	defer wd.stop()
	l, ro, agents := wd.l, wd.roles, wd.l.agents
	if err := connectDevices(ctx, cfg, l, 0, len(agents)); err != nil {
		return nil, err
	}
	w, err := settleAndMeasure(ctx, cfg, wd)
	if err != nil {
		return nil, err
	}
	out := &routed{Replicas: n, Partitions: cfg.partitions, Devices: len(agents), Sites: (len(agents) + 1) / 2, Writes: w.Writes,
		NATSCPUPercent: w.NATSCPUPercent, NATSRSSBytes: w.NATSRSSBytes}
	routedSites := make([]map[string]bool, n)
	routedDevices := make([]int, n)
	for i := range routedSites {
		routedSites[i] = make(map[string]bool)
	}
	sites := make(map[string]bool)
	for _, a := range agents {
		i := routeOf(a.site, n)
		routedSites[i][a.site] = true
		routedDevices[i]++
		sites[a.site] = true
	}
	for i, r := range w.Replicas {
		if r.Sockets != routedDevices[i] {
			return nil, fmt.Errorf("%s holds %d sockets, not %d", r.Name, r.Sockets, routedDevices[i])
		}
		p := routedReplica{replicaWindow: r, RoutedSites: len(routedSites[i]), WithoutClient: r.Sites - len(routedSites[i])}
		for site := range sites {
			if !ro.watches(i, store.PartitionOf(site, cfg.partitions)) {
				continue
			}
			p.PartitionSites++
			if !routedSites[i][site] {
				p.ExpectedWithoutClient++
			}
		}
		out.PerReplica = append(out.PerReplica, p)
	}
	fmt.Fprintf(stderr, "phase B: %d replicas: NATS %.2f writes/s\n", n, w.Writes.Total)
	return out, nil
}
