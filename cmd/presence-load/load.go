package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

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
	l := &loadTest{cfg: cfg, stderr: stderr, base: time.Now(), closedByHub: make(map[string]int), firstClose: make(map[string]string)}
	l.buildTopology()
	if len(l.agents) > 0 {
		auth, err := transport.NewAuth([]byte(cfg.secret))
		if err != nil {
			return nil, err
		}
		for _, a := range l.agents {
			if a.token, err = auth.Mint(transport.TokenRequest{Site: a.site, Agent: a.id, Groups: a.groups, Role: transport.RoleAgent, TTL: tokenTTL}); err != nil {
				return nil, fmt.Errorf("failed to mint a token for %s/%s: %w", a.site, a.id, err)
			}
		}
	}
	l.nChanges = cfg.totalChanges()
	l.sendAt = make([]atomic.Int64, l.nChanges)
	perWidget := 0
	if len(l.agents) > 0 {
		perWidget = (l.nChanges + len(l.agents) - 1) / len(l.agents)
	}
	l.sampleEvery = max(1, (cfg.widgets*perWidget+maxWidgetSamples-1)/maxWidgetSamples)
	l.clients = newClients(cfg.src)
	return l, nil
}

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

// newClients returns one HTTP client per source address (one client with
// the default source when there are none). They never use a proxy: the
// generator talks to the given URLs only.
func newClients(src []net.IP) []*http.Client {
	mk := func(local net.Addr) *http.Client {
		d := &net.Dialer{Timeout: dialTimeout, LocalAddr: local}
		if local != nil {
			d.Control = bindAddressNoPort
		}
		return &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: dialTimeout,
		}}
	}
	if len(src) == 0 {
		return []*http.Client{mk(nil)}
	}
	var out []*http.Client
	for _, ip := range src {
		out = append(out, mk(&net.TCPAddr{IP: ip}))
	}
	return out
}

// now is the time since the test began, in nanoseconds (monotonic).
func (l *loadTest) now() int64 { return int64(time.Since(l.base)) }

// dial opens one WebSocket to u, through the next source address.
func (l *loadTest) dial(ctx context.Context, u string) (*websocket.Conn, error) {
	cl := l.clients[(l.next.Add(1)-1)%uint64(len(l.clients))]
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: cl})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return nil, fmt.Errorf("dial %s: HTTP 429: %s: %w", u, capHint, err)
		}
		if resp != nil {
			return nil, fmt.Errorf("dial %s: HTTP %d: %w", u, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// capHint explains an HTTP 429 on a widget dial: every socket of the
// generator comes from a few addresses, and the hub caps widget sockets per
// client address (--max-widgets-per-client, 256 by default).
const capHint = "hub refused: too many widget sockets per client address; start the hub with --max-widgets-per-client -1 for load tests"

// retry runs open up to dialAttempts times with a short backoff.
func retry(ctx context.Context, open func() error) error {
	var err error
	for attempt := range dialAttempts {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 250 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = open(); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// inFrame holds the fields of server frames the generator looks at.
type inFrame struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Ref     string `json:"ref"`
	Device  string `json:"device"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// connectStats describes one connect phase.
type connectResult struct {
	sockets int
	elapsed time.Duration
	each    []time.Duration // per socket; 0 for failed ones
	failed  int
	firstEr error
}

// connectPhase opens n sockets with open, at most perSec per second (0: no
// limit) and dialers at a time, showing progress on stderr. Unless tolerate,
// the first failure ends the phase with an error.
func (l *loadTest) connectPhase(ctx context.Context, what string, n int, perSec float64, dialers int, tolerate bool, open func(ctx context.Context, i int) error) (*connectResult, error) {
	res := &connectResult{sockets: n, each: make([]time.Duration, n)}
	if n == 0 {
		return res, nil
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if perSec > 0 {
		lim = rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec/50)))
	}
	var done, failed atomic.Int64
	var errOnce sync.Once
	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				d := done.Load()
				fmt.Fprintf(l.stderr, "connected %s %d/%d (%.0f/s)\n", what, d, n, float64(d-last)/now.Sub(lastAt).Seconds())
				last, lastAt = d, now
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dialers)
	for i := range n {
		if err := lim.Wait(gctx); err != nil {
			break // a failure or ctx ended the phase; g.Wait reports why
		}
		g.Go(func() error {
			t0 := time.Now()
			if err := retry(gctx, func() error { return open(gctx, i) }); err != nil {
				if tolerate && ctx.Err() == nil {
					failed.Add(1)
					errOnce.Do(func() { res.firstEr = err })
					return nil
				}
				return err
			}
			res.each[i] = time.Since(t0)
			done.Add(1)
			return nil
		})
	}
	err := g.Wait()
	close(stopProgress)
	<-progressDone
	res.elapsed = time.Since(start)
	res.failed = int(failed.Load())
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("connecting %s: %w", what, err)
	}
	fmt.Fprintf(l.stderr, "connected %s %d/%d in %v (%.0f/s)\n", what, done.Load(), n, res.elapsed.Round(time.Millisecond), float64(done.Load())/res.elapsed.Seconds())
	return res, nil
}

// openDevice connects device i (agent i/devices, device i%devices), says
// hello and waits for the welcome.
func (l *loadTest) openDevice(ctx context.Context, i int) error {
	a := l.agents[i/l.cfg.devices]
	d := a.devices[i%l.cfg.devices]
	c, err := l.dial(ctx, d.url+"/v1/agent")
	if err != nil {
		return err
	}
	kind := [...]string{"desktop", "mobile", "web"}[d.idx%3]
	hello := fmt.Appendf(nil, `{"type":"hello","token":%q,"device":{"kind":%q}}`, a.token, kind)
	hctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	if err := c.Write(hctx, websocket.MessageText, hello); err != nil {
		c.CloseNow()
		return fmt.Errorf("agent %s/%s device %d: hello: %w", a.site, a.id, d.idx, err)
	}
	for {
		_, data, err := c.Read(hctx)
		if err != nil {
			c.CloseNow()
			return fmt.Errorf("agent %s/%s device %d: waiting for welcome: %w", a.site, a.id, d.idx, err)
		}
		f, err := decodeFrame(data)
		if err != nil {
			c.CloseNow()
			return fmt.Errorf("agent %s/%s device %d: %w", a.site, a.id, d.idx, err)
		}
		switch f.Type {
		case "welcome":
			d.conn, d.id = c, f.Device
			d.closing.Store(false)
			if d.idx == 0 {
				st := f.Status
				a.status.Store(&st)
			}
			l.deviceReaders.Go(func() { l.readDevice(d) })
			return nil
		case "error":
			c.CloseNow()
			return fmt.Errorf("agent %s/%s device %d: hello refused: %s: %s", a.site, a.id, d.idx, f.Code, f.Message)
		}
	}
}

// openWidget connects widget i; with storm, its reader measures the time to
// the first snapshot.
func (l *loadTest) openWidget(ctx context.Context, i int, storm bool) error {
	w := l.widgets[i]
	t := l.targets[w.target]
	q := url.Values{"site": {t.site}}
	if t.group != "" {
		q.Set("group", t.group)
	}
	c, err := l.dial(ctx, w.url+"/v1/widget?"+q.Encode())
	if err != nil {
		return err
	}
	w.conn = c
	w.closing.Store(false)
	l.widgetReaders.Go(func() { l.readWidget(w, c, storm) })
	return nil
}

func decodeFrame(data []byte) (inFrame, error) {
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("bad frame %.100q: %w", data, err)
	}
	return f, nil
}

// readMessage reads the next data message into buf's storage. Unlike
// websocket.Conn.Read it allocates only when a message outgrows buf.
func readMessage(c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(context.Background())
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// widgetFrameStatus returns the status of a widget_status frame, and false
// for any other frame. It looks for the two fields it needs instead of
// decoding the frame: what the generator spends per frame, on the hub's
// machine, adds to the latency it measures. The hub writes JSON with no
// space after colons; a key cannot match inside a string value, whose
// quotes are escaped.
func widgetFrameStatus(data []byte) (string, bool) {
	if !bytes.Contains(data, []byte(`"type":"widget_status"`)) {
		return "", false
	}
	const key = `"status":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := data[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return "", false
	}
	switch string(rest[:end]) { // no allocation: the statuses are constants
	case "online":
		return "online", true
	case "busy":
		return "busy", true
	case "offline":
		return "offline", true
	}
	return "", false
}

// noteClosed records a socket the hub closed (or that failed) while the
// test still needed it.
func (l *loadTest) noteClosed(kind string, err error) {
	why := "error"
	if code := websocket.CloseStatus(err); code != -1 {
		why = strconv.Itoa(int(code))
	} else if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		why = "eof"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closedByHub[kind+" "+why]++
	if _, ok := l.firstClose[kind+" "+why]; !ok {
		l.firstClose[kind+" "+why] = err.Error()
	}
}

// closedSummary lists the sockets closed so far by kind and reason, with
// the first error of each.
func (l *loadTest) closedSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, n := range l.closedByHub {
		parts = append(parts, fmt.Sprintf("%d %s (first: %s)", n, k, l.firstClose[k]))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// noteDelivery counts one expected frame received at now.
func (l *loadTest) noteDelivery(now int64) {
	l.delivered.Add(1)
	for {
		last := l.lastDelivery.Load()
		if now <= last || l.lastDelivery.CompareAndSwap(last, now) {
			return
		}
	}
}

// statusFor is the status an agent's k-th change sets: busy, online, ...
func statusFor(k int) string {
	if k%2 == 0 {
		return "busy"
	}
	return "online"
}

// readWidget reads one widget socket until it closes.
func (l *loadTest) readWidget(w *widget, c *websocket.Conn, storm bool) {
	t := l.targets[w.target]
	nAgents := len(l.agents)
	if !storm {
		w.last = ""
	}
	var data []byte // reused: the generator reads as many frames as the hub writes
	for {
		var err error
		data, err = readMessage(c, data)
		if err != nil {
			if !w.closing.Load() && l.phase.Load() != phaseDone {
				l.noteClosed("widget", err)
			}
			if !storm && w.last == t.initial && l.phase.Load() == phaseInitial {
				l.readyWidgets.Add(-1)
			}
			return
		}
		now := l.now()
		status, ok := widgetFrameStatus(data)
		if !ok {
			w.unexpected++
			continue
		}
		switch l.phase.Load() {
		case phaseInitial:
			if status == t.initial && w.last != t.initial {
				l.readyWidgets.Add(1)
			} else if status != t.initial && w.last == t.initial {
				l.readyWidgets.Add(-1)
			}
			w.last = status
		case phaseChanges:
			if status == w.last {
				w.dups++
				continue
			}
			w.last = status
			k := w.got
			n := k*nAgents + w.agent
			if w.agent < 0 || n >= l.nChanges || status != statusFor(k) {
				w.unexpected++
				continue
			}
			sent := l.sendAt[n].Load()
			if sent == 0 {
				w.unexpected++
				continue
			}
			w.got++
			lat := now - sent
			w.maxLat = max(w.maxLat, lat)
			if (w.idx+k)%l.sampleEvery == 0 {
				w.lat = append(w.lat, int32(min(lat/1000, 1<<31-1)))
			}
			l.noteDelivery(now)
		case phaseStorm:
			if storm && w.snapAt == 0 {
				w.snapAt = max(1, now-l.stormStart.Load())
				w.snapStatus = status
				l.stormSnaps.Add(1)
			}
		}
	}
}

// readDevice reads one agent device socket until it closes.
func (l *loadTest) readDevice(d *device) {
	a := d.agent
	nAgents := len(l.agents)
	for {
		_, data, err := d.conn.Read(context.Background())
		if err != nil {
			if !d.closing.Load() && l.phase.Load() != phaseDone {
				l.noteClosed("device", err)
			}
			return
		}
		now := l.now()
		f, err := decodeFrame(data)
		if err != nil {
			d.unexpected++
			continue
		}
		switch f.Type {
		case "status":
			if d.idx == 0 {
				st := f.Status
				a.status.Store(&st)
			}
			n, err := strconv.Atoi(f.Ref)
			if err != nil || l.phase.Load() != phaseChanges {
				continue // "init" and other refs: not measured
			}
			if n < 0 || n >= l.nChanges || n%nAgents != a.idx || l.sendAt[n].Load() == 0 || f.Status != statusFor(n/nAgents) {
				d.unexpected++
				continue
			}
			k := n / nAgents
			if d.seen[k] {
				d.dups++
				continue
			}
			d.seen[k] = true
			d.got++
			if d.idx != senderDevice {
				d.lat = append(d.lat, int32(min((now-l.sendAt[n].Load())/1000, 1<<31-1)))
			}
			l.noteDelivery(now)
		case "error":
			if _, err := strconv.Atoi(f.Ref); err == nil {
				d.rejected++
			}
			d.lastError = f.Code + ": " + f.Message
		}
	}
}

// senderDevice is the device through which every agent changes its status:
// one socket per agent keeps the changes in order.
const senderDevice = 0

// run runs the phases and returns the summary.
func (l *loadTest) run(ctx context.Context) (sum *summary, err error) {
	cfg := l.cfg
	sum = l.newSummary()
	hubs, err := newHubProbes(cfg.pids)
	if err != nil {
		return nil, err
	}
	if cfg.rate > 0 && len(l.agents) > 0 && !cfg.storm {
		if per := cfg.rate / float64(len(l.agents)); per > 10 {
			fmt.Fprintf(l.stderr, "presence-load: warning: %.1f changes/s per agent; the hub allows --status-rate (default 10/s) per device, so expect rate_limited refusals\n", per)
		}
	}
	defer func() {
		l.closeAll()
		if err == nil {
			l.collect(sum)
			sum.Hubs = hubs.summaries(len(l.widgets)+len(l.agents)*cfg.devices, sum.Changes)
			if hubs.err != nil {
				sum.HubError = hubs.err.Error()
			}
		}
	}()

	// Connect.
	connectStart := time.Now()
	devices := len(l.agents) * cfg.devices
	for _, a := range l.agents {
		for _, d := range a.devices {
			d.seen = make([]bool, l.changesOf(a.idx, l.nChanges))
		}
	}
	agentRes, err := l.connectPhase(ctx, "agent devices", devices, cfg.connectRate, cfg.dialers, false, l.openDevice)
	if err != nil {
		return nil, err
	}
	// Agents whose stored status is not online (an earlier run) start online.
	for _, a := range l.agents {
		if st := a.status.Load(); st != nil && *st != "online" {
			fmt.Fprintf(l.stderr, "agent %s/%s: stored status %s from an earlier run; setting online\n", a.site, a.id, *st)
			if err := l.send(ctx, a, []byte(`{"type":"set_status","status":"online","ref":"init"}`)); err != nil {
				return nil, fmt.Errorf("agent %s/%s: setting online: %w", a.site, a.id, err)
			}
		}
	}
	widgetRes, err := l.connectPhase(ctx, "widgets", cfg.widgets, cfg.connectRate, cfg.dialers, false, func(ctx context.Context, i int) error { return l.openWidget(ctx, i, false) })
	if err != nil {
		return nil, err
	}
	sum.setConnect(agentRes, widgetRes, time.Since(connectStart))
	readyStart := time.Now()
	if err := l.waitInitial(ctx); err != nil {
		return nil, err
	}
	sum.InitialStateMS = ms(time.Since(readyStart))
	hubs.sampleConnected()

	if cfg.storm {
		sum.Storm, err = l.stormPhase(ctx)
		if err != nil {
			return nil, err
		}
		hubs.sampleStormEnd()
	} else if l.nChanges > 0 {
		hubs.sampleChangesStart()
		self0, selfErr := readProc(os.Getpid())
		ch, err := l.changePhase(ctx)
		if err != nil {
			return nil, err
		}
		hubs.sampleChangesEnd()
		if self1, err := readProc(os.Getpid()); err == nil && selfErr == nil {
			ch.GeneratorCPUSeconds = float64(self1.cpuTicks-self0.cpuTicks) / clkTck
		}
		sum.Changes = ch
	}
	return sum, nil
}

// changesOf is how many of the first n changes belong to agent a.
func (l *loadTest) changesOf(a, n int) int {
	if n <= a {
		return 0
	}
	return (n - a + len(l.agents) - 1) / len(l.agents)
}

// send writes msg on the agent's sender device.
func (l *loadTest) send(ctx context.Context, a *agent, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return a.devices[senderDevice].conn.Write(ctx, websocket.MessageText, msg)
}

// waitInitial waits until every widget shows its initial status and every
// agent is online.
func (l *loadTest) waitInitial(ctx context.Context) error {
	ready := func() (int, int) {
		online := 0
		for _, a := range l.agents {
			if st := a.status.Load(); st != nil && *st == "online" {
				online++
			}
		}
		return int(l.readyWidgets.Load()), online
	}
	deadline := time.Now().Add(l.cfg.timeout)
	for {
		w, a := ready()
		if w == len(l.widgets) && a == len(l.agents) {
			return nil
		}
		if time.Now().After(deadline) {
			if closed := l.closedSummary(); closed != "" {
				return fmt.Errorf("after %v, %d of %d widgets show their initial status and %d of %d agents are online; sockets closed while waiting: %s", l.cfg.timeout, w, len(l.widgets), a, len(l.agents), closed)
			}
			return fmt.Errorf("after %v, %d of %d widgets show their initial status and %d of %d agents are online: is another agent online on the load-* sites (an earlier run still inside its grace period)?", l.cfg.timeout, w, len(l.widgets), a, len(l.agents))
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// changePhase sends the status changes on schedule and waits for the
// frames they cause.
func (l *loadTest) changePhase(ctx context.Context) (*changeSummary, error) {
	cfg := l.cfg
	nAgents := len(l.agents)
	step := cfg.changeStep()
	cs := &changeSummary{Planned: l.nChanges}
	if cfg.rate > 0 {
		cs.Mode = fmt.Sprintf("%.0f changes/s for %v", cfg.rate, cfg.duration)
	} else {
		cs.Mode = fmt.Sprintf("%d round(s) %v apart, %d agent(s)", cfg.changes, cfg.interval, nAgents)
	}
	fmt.Fprintf(l.stderr, "changing: %d status change(s), %s\n", l.nChanges, cs.Mode)
	l.phase.Store(phaseChanges)
	start := time.Now()
	firstSend := l.now()
	var behind time.Duration
	sent := 0
	for n := range l.nChanges {
		due := start.Add(time.Duration(n) * step)
		if d := time.Until(due); d > 0 {
			if err := sleepCtx(ctx, d); err != nil {
				break
			}
		} else {
			behind = max(behind, -d)
		}
		a := l.agents[n%nAgents]
		msg := fmt.Appendf(nil, `{"type":"set_status","status":%q,"ref":"%d"}`, statusFor(n/nAgents), n)
		l.sendAt[n].Store(l.now())
		if err := l.send(ctx, a, msg); err != nil {
			l.sendAt[n].Store(0)
			if ctx.Err() == nil {
				cs.SendError = fmt.Sprintf("change %d (agent %s/%s): %v", n, a.site, a.id, err)
			}
			break
		}
		sent++
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	lastSend := time.Now()
	cs.Sent = sent
	cs.SendMS = ms(time.Duration(l.now() - firstSend))
	cs.BehindMaxMS = ms(behind)
	// What the sent changes should cause.
	for _, w := range l.widgets {
		if w.agent >= 0 {
			cs.Expected += int64(l.changesOf(w.agent, sent))
		}
	}
	for _, a := range l.agents {
		cs.Expected += int64(l.changesOf(a.idx, sent) * len(a.devices))
	}
	deadline := lastSend.Add(cfg.timeout)
	for l.delivered.Load() < cs.Expected && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	l.phase.Store(phaseDone)
	if last := l.lastDelivery.Load(); last > firstSend {
		cs.DurationMS = ms(time.Duration(last - firstSend))
	}
	cs.firstSend = firstSend
	return cs, nil
}

// stormPhase closes every widget at once, reopens them all at once, and
// measures the time until each has its snapshot.
func (l *loadTest) stormPhase(ctx context.Context) (*stormSummary, error) {
	cfg := l.cfg
	st := &stormSummary{Widgets: len(l.widgets), RatePerSec: cfg.stormRate}
	fmt.Fprintf(l.stderr, "storm: closing %d widgets\n", len(l.widgets))
	closeStart := time.Now()
	l.eachParallel(len(l.widgets), 64, func(i int) {
		w := l.widgets[i]
		w.closing.Store(true)
		w.conn.CloseNow()
	})
	l.widgetReaders.Wait()
	st.CloseMS = ms(time.Since(closeStart))
	for _, w := range l.widgets {
		w.conn = nil
	}
	l.stormStart.Store(l.now())
	l.phase.Store(phaseStorm)
	dialers := len(l.widgets)
	if cfg.stormRate > 0 {
		dialers = cfg.dialers
	}
	fmt.Fprintf(l.stderr, "storm: reopening %d widgets\n", len(l.widgets))
	res, err := l.connectPhase(ctx, "widgets (storm)", len(l.widgets), cfg.stormRate, dialers, true, func(ctx context.Context, i int) error { return l.openWidget(ctx, i, true) })
	if err != nil {
		return nil, err
	}
	st.Failed = res.failed
	if res.firstEr != nil {
		st.FirstError = res.firstEr.Error()
	}
	st.Dial = latencyOf(durationsMicros(res.each), 1)
	want := int64(len(l.widgets) - res.failed)
	deadline := time.Now().Add(cfg.timeout)
	for l.stormSnaps.Load() < want && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	l.phase.Store(phaseDone)
	return st, nil
}

// eachParallel calls fn(i) for i in [0, n) on up to workers goroutines.
func (l *loadTest) eachParallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// closeAll closes every socket: widgets with a normal close, devices with
// bye (so their leases end at once), and anything left over abruptly. It
// returns once every reader has exited.
func (l *loadTest) closeAll() {
	l.phase.Store(phaseDone)
	l.eachParallel(len(l.widgets), 256, func(i int) {
		w := l.widgets[i]
		if w.conn != nil {
			w.closing.Store(true)
			w.conn.Close(websocket.StatusNormalClosure, "load test done")
		}
	})
	var devs []*device
	for _, a := range l.agents {
		for _, d := range a.devices {
			if d.conn != nil {
				devs = append(devs, d)
			}
		}
	}
	l.eachParallel(len(devs), 64, func(i int) {
		d := devs[i]
		d.closing.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		d.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"bye"}`))
	})
	done := make(chan struct{})
	go func() {
		l.deviceReaders.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(writeTimeout):
		for _, d := range devs {
			d.conn.CloseNow()
		}
		<-done
	}
	for _, d := range devs {
		d.conn.CloseNow() // releases the descriptor; the hub closed it after bye
	}
	l.widgetReaders.Wait()
}
