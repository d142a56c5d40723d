package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/transport"
)

const (
	tokenTTL    = 24 * time.Hour
	dialTimeout = 15 * time.Second
	// dialAttempts bounds the tries to open one socket.
	dialAttempts = 3
	// writeTimeout bounds one frame written by the generator.
	writeTimeout = 5 * time.Second
	// maxWidgetSamples caps the widget latencies kept in memory; beyond it
	// one in every N is kept (the maximum is always exact).
	maxWidgetSamples = 20_000_000
)

// Phases, as readers see them.
const (
	phaseInitial int32 = iota // waiting for the initial state
	phaseChanges              // the change phase: frames are measured
	phaseStorm                // reconnect storm: first snapshots are measured
	phaseDone                 // closing: frames and closes are ignored
)

// target is one widget address: (site, group) and the one agent it follows.
type target struct {
	site, group string
	agent       int    // index in loadTest.agents; -1 for none
	initial     string // the widget status expected before any change
}

// agent is one agent and its device sockets.
type agent struct {
	idx     int
	site    string
	id      string
	groups  []string
	token   string
	devices []*device
	// status is the agent's status as its first device last heard it.
	status atomic.Pointer[string]
}

// device is one agent device socket. The fields below conn are owned by
// the device's reader goroutine until it has exited.
type device struct {
	agent   *agent
	idx     int
	url     string
	conn    *websocket.Conn
	id      string
	closing atomic.Bool

	seen       []bool // by the agent's change number k
	got        int
	dups       int
	unexpected int
	rejected   int
	lastError  string
	lat        []int32 // microseconds, other devices only
}

// widget is one widget socket. The fields below conn are owned by the
// widget's reader goroutine until it has exited.
type widget struct {
	idx     int
	target  int
	agent   int
	url     string
	conn    *websocket.Conn
	closing atomic.Bool

	last       string
	got        int
	dups       int
	unexpected int
	lat        []int32 // microseconds, sampled
	maxLat     int64   // nanoseconds
	// storm
	snapAt     int64 // nanoseconds since the storm started; 0: none yet
	snapStatus string
}

// senderDevice is the device through which every agent changes its status:
// one socket per agent keeps the changes in order.
const senderDevice = 0

type loadTest struct {
	cfg     *config
	stderr  io.Writer
	targets []target
	agents  []*agent
	widgets []*widget
	clients []*http.Client
	next    atomic.Uint64
	base    time.Time

	phase        atomic.Int32
	readyWidgets atomic.Int64
	delivered    atomic.Int64
	lastDelivery atomic.Int64 // nanoseconds since base
	stormStart   atomic.Int64 // nanoseconds since base
	stormSnaps   atomic.Int64
	nChanges     int
	sendAt       []atomic.Int64 // by change number: nanoseconds since base, 0 until sent
	sampleEvery  int

	widgetReaders sync.WaitGroup
	deviceReaders sync.WaitGroup

	mu          sync.Mutex
	closedByHub map[string]int
	firstClose  map[string]string // the first error of each closedByHub key
}

func newLoadTest(cfg *config, stderr io.Writer) (*loadTest, error) {
	l := newSockets(cfg, stderr)
	l.buildTopology()
	if err := l.mintTokens(); err != nil {
		return nil, err
	}
	l.nChanges = cfg.totalChanges()
	l.sendAt = make([]atomic.Int64, l.nChanges)
	perWidget := 0
	if len(l.agents) > 0 {
		perWidget = (l.nChanges + len(l.agents) - 1) / len(l.agents)
	}
	l.sampleEvery = max(1, (cfg.widgets*perWidget+maxWidgetSamples-1)/maxWidgetSamples)
	return l, nil
}

// newSockets returns a loadTest with no sockets laid out yet: the scenarios
// lay theirs out with buildTopology, `presence-load replicas` its own.
func newSockets(cfg *config, stderr io.Writer) *loadTest {
	return &loadTest{cfg: cfg, stderr: stderr, base: time.Now(), closedByHub: make(map[string]int), firstClose: make(map[string]string),
		clients: newClients(cfg.src), sampleEvery: 1}
}

// mintTokens mints every agent's token with the config's secret.
func (l *loadTest) mintTokens() error {
	if len(l.agents) == 0 {
		return nil
	}
	auth, err := transport.NewAuth([]byte(l.cfg.secret))
	if err != nil {
		return err
	}
	for _, a := range l.agents {
		if a.token, err = auth.Mint(transport.TokenRequest{Site: a.site, Agent: a.id, Groups: a.groups, Role: transport.RoleAgent, TTL: tokenTTL}); err != nil {
			return fmt.Errorf("failed to mint a token for %s/%s: %w", a.site, a.id, err)
		}
	}
	return nil
}

// now is the time since the test began, in nanoseconds (monotonic).
func (l *loadTest) now() int64 { return int64(time.Since(l.base)) }

// buildTopology lays out targets, agents and widgets for the scenario.
func (l *loadTest) buildTopology() {
	cfg := l.cfg
	if cfg.sitePrefix == "" {
		cfg.sitePrefix = "load"
	}
	withAgents := cfg.agents > 0
	addAgent := func(site string, groups []string) int {
		a := &agent{idx: len(l.agents), site: site, id: fmt.Sprintf("%s-agent-%d", cfg.sitePrefix, len(l.agents)), groups: groups}
		l.agents = append(l.agents, a)
		return a.idx
	}
	initial := func(agent int) string {
		if agent < 0 {
			return "offline"
		}
		return "online"
	}
	for s := range cfg.sites {
		site := fmt.Sprintf("%s-%d", cfg.sitePrefix, s)
		switch cfg.scenario {
		case scenarioFanout:
			ag := -1
			if withAgents {
				ag = addAgent(site, nil)
			}
			l.targets = append(l.targets, target{site: site, agent: ag, initial: initial(ag)})
			for g := range cfg.groups {
				l.targets = append(l.targets, target{site: site, group: fmt.Sprintf("g%d", g), agent: ag, initial: initial(ag)})
			}
		case scenarioGroups:
			for g := range cfg.groups {
				group := fmt.Sprintf("g%d", g)
				ag := -1
				if withAgents {
					ag = addAgent(site, []string{group})
				}
				l.targets = append(l.targets, target{site: site, group: group, agent: ag, initial: initial(ag)})
			}
		}
	}
	sock := 0
	nextURL := func() string {
		u := cfg.urls[sock%len(cfg.urls)]
		sock++
		return u
	}
	for _, a := range l.agents {
		for d := range cfg.devices {
			a.devices = append(a.devices, &device{agent: a, idx: d, url: nextURL()})
		}
	}
	for w := range cfg.widgets {
		t := w % len(l.targets)
		l.widgets = append(l.widgets, &widget{idx: w, target: t, agent: l.targets[t].agent, url: nextURL()})
	}
}
