//go:build unix

package natstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A real three-node JetStream cluster of nats-server processes on loopback,
// for tests of what a hub does when one node dies, freezes or restarts.
// Processes, not in-process servers, because only a process can be frozen
// (SIGSTOP) the way an overloaded or paused machine freezes, and killed
// (SIGKILL) without a clean shutdown.

// clusterWait bounds every wait of the harness (a node starting, a leader
// being elected); it is a deadline for failing, never a measurement.
const clusterWait = 60 * time.Second

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// serverBinary builds nats-server from the module's own dependency on first
// use, into a temporary directory shared by the package's tests, so every
// test runs the version go.mod names. RemoveBinary deletes it.
func serverBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "natstest-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "nats-server")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("failed to build nats-server: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// RemoveBinary deletes the nats-server binary built for the package's
// tests; TestMain calls it after the tests ran.
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Cluster is a three-node JetStream cluster of nats-server processes.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// Node is one nats-server process of a Cluster. It keeps its ports and its
// store across Kill and Restart, as a restarted machine does.
type Node struct {
	t        testing.TB
	bin      string
	Name     string
	port     int
	httpPort int
	conf     string
	logPath  string

	mu     sync.Mutex
	cmd    *exec.Cmd     // guarded by mu; nil while the node is down
	exited chan struct{} // guarded by mu; closed when cmd has been waited for
	frozen bool          // guarded by mu
}

// StartCluster starts three clustered nats-server processes with JetStream
// on loopback ports and waits until they have elected a meta leader. Every
// process is killed when the test ends, frozen or not.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping NATS cluster test in -short mode: it builds and runs nats-server processes")
	}
	bin := serverBinary(t)
	dir := t.TempDir()
	ports := freePorts(t, 9)
	c := &Cluster{t: t}
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i+1]))
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		store := filepath.Join(dir, name)
		n := &Node{
			t: t, bin: bin, Name: name,
			port: ports[3*i], httpPort: ports[3*i+2],
			conf:    filepath.Join(dir, name+".conf"),
			logPath: filepath.Join(dir, name+".log"),
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: natstest
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, name, n.port, n.httpPort, store, ports[3*i+1], strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			n.stop()
		}
		if t.Failed() {
			for _, n := range c.Nodes {
				n.logTail()
			}
		}
	})
	for _, n := range c.Nodes {
		n.start()
	}
	for _, n := range c.Nodes {
		n.waitHealthy()
	}
	c.waitMetaLeader()
	return c
}

// waitMetaLeader waits until JetStream answers an account-info request
// through every node: a node is healthy before the cluster has elected its
// meta leader, and a stream created before then can wait out its timeout.
func (c *Cluster) waitMetaLeader() {
	c.t.Helper()
	for _, n := range c.Nodes {
		nc, err := nats.Connect(n.URL())
		if err != nil {
			c.t.Fatalf("failed to connect to node %s: %v", n.Name, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			c.t.Fatal(err)
		}
		deadline := time.Now().Add(clusterWait)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := js.AccountInfo(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				nc.Close()
				c.t.Fatalf("JetStream does not answer through node %s after %v: %v", n.Name, clusterWait, err)
			}
			time.Sleep(100 * time.Millisecond) // polling the cluster, not synchronising with the test
		}
		nc.Close()
	}
}

// MetaLeader returns the node that leads the JetStream meta group as the
// live nodes' monitoring endpoints (/jsz) report it, or nil while they name
// none, or none of them answers.
func (c *Cluster) MetaLeader() *Node {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, n := range c.Nodes {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", n.httpPort))
		if err != nil {
			continue
		}
		var jsz struct {
			Meta *struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err == nil && jsz.Meta != nil && jsz.Meta.Leader != "" {
			return c.Node(jsz.Meta.Leader)
		}
	}
	return nil
}

// URLs is the comma list of every node's client URL, as --nats-url takes it.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Connect opens a client connection to the cluster that reconnects to any
// node and closes when the test ends. It pings every 250ms, so that it
// leaves a frozen node quickly.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond),
		nats.PingInterval(250 * time.Millisecond), nats.MaxPingsOutstanding(2)}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		t.Fatalf("failed to connect to the NATS cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StreamLeader returns the node that leads stream now, waiting until it has
// a leader. It asks through js, which must reach a live node.
func (c *Cluster) StreamLeader(t testing.TB, js jetstream.JetStream, stream string) *Node {
	t.Helper()
	var leader *Node
	c.pollStream(t, js, stream, "has no leader", func(info *jetstream.StreamInfo) error {
		if leader = c.Node(info.Cluster.Leader); leader == nil {
			return fmt.Errorf("unknown leader %q", info.Cluster.Leader)
		}
		return nil
	})
	return leader
}

// WaitStreamCurrent waits until stream has a leader and every replica is
// current, as a rolling restart must before it takes the next node down:
// a replica still catching up does not count towards the quorum.
func (c *Cluster) WaitStreamCurrent(t testing.TB, js jetstream.JetStream, stream string) {
	t.Helper()
	c.pollStream(t, js, stream, "not current on every node", func(info *jetstream.StreamInfo) error {
		if len(info.Cluster.Replicas) != len(c.Nodes)-1 {
			return fmt.Errorf("%d followers", len(info.Cluster.Replicas))
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return errors.New("a follower is behind")
			}
		}
		return nil
	})
}

// pollStream asks through js for stream's info until it has a leader and
// done accepts it (returns nil), failing the test with what after
// clusterWait.
func (c *Cluster) pollStream(t testing.TB, js jetstream.JetStream, stream, what string, done func(*jetstream.StreamInfo) error) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	last := errors.New("not asked yet")
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, stream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		switch {
		case err != nil:
			last = err
		case info.Cluster == nil || info.Cluster.Leader == "":
			last = errors.New("no leader")
		default:
			if last = done(info); last == nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the cluster, not synchronising with the test
	}
	t.Fatalf("stream %s %s after %v: %v", stream, what, clusterWait, last)
}

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// Kill ends the node's process with SIGKILL, as a crash or a power cut does:
// no clean shutdown, no leadership handed over.
func (n *Node) Kill() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
}

// Freeze stops the node's process with SIGSTOP: its sockets stay open but
// nothing answers, as on a machine that is paused or swapping.
func (n *Node) Freeze() {
	n.t.Helper()
	n.signal(syscall.SIGSTOP, false)
}

// Thaw resumes a frozen node with SIGCONT.
func (n *Node) Thaw() {
	n.t.Helper()
	n.signal(syscall.SIGCONT, true)
}

// signal sends SIGSTOP or SIGCONT to a running node that is frozen (or not)
// as the signal expects.
func (n *Node) signal(sig syscall.Signal, frozen bool) {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.frozen != frozen {
		n.t.Fatalf("cannot send %v to node %s: running %v, frozen %v", sig, n.Name, n.cmd != nil, n.frozen)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("failed to send %v to node %s: %v", sig, n.Name, err)
	}
	if sig == syscall.SIGSTOP {
		waitStopped(n.cmd.Process.Pid)
	}
	n.frozen = !frozen
}

// Restart starts a killed node again on its ports with its store, and waits
// until it is healthy (caught up with the cluster's meta state).
func (n *Node) Restart() {
	n.t.Helper()
	n.start()
	n.waitHealthy()
}

// RestartNow kills the node and starts it again at once, as a rolling
// restart does.
func (n *Node) RestartNow() {
	n.t.Helper()
	n.Kill()
	n.Restart()
}

// start runs the node's process; its output goes to the node's log file.
func (n *Node) start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.t.Fatalf("node %s is running already", n.Name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("failed to start node %s: %v", n.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	n.cmd, n.exited, n.frozen = cmd, exited, false
}

// killLocked kills the process and waits for it. Guarded by n.mu.
func (n *Node) killLocked() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill() // a stopped process dies of SIGKILL too
	<-n.exited
	n.cmd, n.exited, n.frozen = nil, nil, false
}

// stop kills the node at cleanup, whatever state it is in.
func (n *Node) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.frozen {
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
	n.killLocked()
}

// waitHealthy waits until the node's monitoring endpoint says JetStream is
// healthy on it.
func (n *Node) waitHealthy() {
	n.t.Helper()
	client := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.httpPort)
	deadline := time.Now().Add(clusterWait)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond) // polling the process, not synchronising with the test
	}
	n.t.Fatalf("node %s not healthy after %v: %s", n.Name, clusterWait, last)
}

// logTail writes the end of the node's log to the test log.
func (n *Node) logTail() {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return
	}
	const tail = 4000
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	n.t.Logf("nats-server %s log (end):\n%s", n.Name, b)
}

// freePorts returns n distinct free loopback ports. They are free when
// asked; a node that cannot bind one fails to become healthy.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}
