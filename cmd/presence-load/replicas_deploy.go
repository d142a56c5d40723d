package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A deployment of `presence-load replicas`: one nats-server and N
// `presencehub serve` processes on it, on loopback, in a directory of
// their own (replicas_measure.go measures them).

// stopWait bounds how long a stopped process may take to exit before it
// is killed.
const stopWait = 15 * time.Second

// proc is one child process whose stderr (and stdout) go to a log file.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed once the process was waited for
	err    error         // the wait's; set before exited is closed
}

// startProc runs bin with args, copies its output to dir/name.log, and
// waits up to wait until every pattern has matched a line of its stderr;
// it returns each pattern's first submatch. Patterns are waited for, not
// slept for: a process that exits first, or is too slow, is an error.
func startProc(ctx context.Context, dir, name, bin string, args []string, wait time.Duration, patterns ...*regexp.Regexp) (*proc, []string, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	pipe, err := cmd.StderrPipe()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	found := make(chan []string, 1)
	go func() {
		defer close(p.exited)
		matches := make([]string, len(patterns))
		left := len(patterns)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			for i, re := range patterns {
				if m := re.FindStringSubmatch(line); m != nil && matches[i] == "" && left > 0 {
					matches[i] = m[len(m)-1]
					if left--; left == 0 {
						found <- matches
					}
				}
			}
		}
		io.Copy(f, pipe) // after a scan error, keep the child from blocking on a full pipe
		p.err = cmd.Wait()
		f.Close()
	}()
	if len(patterns) == 0 {
		found <- nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-found:
		return p, m, nil
	case <-p.exited:
		return nil, nil, fmt.Errorf("%s exited before it was ready (%v); see %s", name, p.err, logPath)
	case <-t.C:
		err = fmt.Errorf("%s was not ready within %v; see %s", name, wait, logPath)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.stop()
	return nil, nil, err
}

// stop asks the process to stop (SIGTERM), kills it after stopWait, and
// waits for it.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopWait)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// alive returns an error once the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v); see %s", p.name, p.err, p.log)
	default:
		return nil
	}
}

var (
	natsListening = regexp.MustCompile(`Listening for client connections on (\S+)`)
	natsReady     = regexp.MustCompile(`(Server is ready)`)
	hubListening  = regexp.MustCompile(`\bmsg=listening addr=(\S+)`)
	hubDebug      = regexp.MustCompile(`\bmsg="debug listener" addr=(\S+)`)
	hubLoaded     = regexp.MustCompile(`\bmsg=("view loaded")`)
)

// replica is one `presencehub serve` of a deployment.
type replica struct {
	*proc
	url   string // http://HOST:PORT
	debug string // http://HOST:PORT of --debug-addr
}

// deployment is one nats-server and its replicas.
type deployment struct {
	cfg      *replicasConfig
	dir      string
	natsURL  string
	natsProc *proc              // the standalone nats-server, or nil
	ns       *natsserver.Server // the in-process one, or nil
	nc       *nats.Conn
	js       jetstream.JetStream
	http     *http.Client
	replicas []*replica
}

// deploy starts a nats-server and n replicas on it in dir/name, one after
// the other, each waited for until its view loaded, with partitions
// partitions of sites.
func deploy(ctx context.Context, cfg *replicasConfig, name string, n, partitions int) (d *deployment, err error) {
	d = &deployment{cfg: cfg, dir: filepath.Join(cfg.dir, name), http: &http.Client{Timeout: 10 * time.Second,
		// Uncompressed: a replica that gzips a scrape keeps a compressor
		// of about a megabyte in a pool, which its heap would count.
		Transport: &http.Transport{Proxy: nil, DisableCompression: true}}}
	defer func() {
		if err != nil {
			d.stop()
			d = nil
		}
	}()
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: a fresh deployment needs a --dir without an earlier run's", err)
	}
	if err := d.startNATS(ctx); err != nil {
		return nil, err
	}
	if d.nc, err = nats.Connect(d.natsURL); err != nil {
		return nil, fmt.Errorf("failed to connect to NATS: %w", err)
	}
	if d.js, err = jetstream.New(d.nc); err != nil {
		return nil, err
	}
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		args := []string{"serve", "--nats-url", d.natsURL, "--addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0",
			"--jwt-secret", cfg.secret, "--grace", cfg.grace.String(), "--liveness-ttl", cfg.livenessTTL.String(),
			"--replica-id", id, "--data-dir", filepath.Join(d.dir, id), "--log-level", "info",
			"--max-http-conns-per-client", "-1", "--shutdown-timeout", "5s"}
		args = append(args, cfg.serveArgs...)
		args = append(args, "--partitions", strconv.Itoa(partitions)) // last: --serve-args does not set it
		p, m, err := startProc(ctx, d.dir, id, cfg.presencehub, args, cfg.timeout, hubListening, hubDebug, hubLoaded)
		if err != nil {
			return nil, err
		}
		d.replicas = append(d.replicas, &replica{proc: p, url: "http://" + m[0], debug: "http://" + m[1]})
	}
	return d, nil
}

// startNATS starts the standalone nats-server of --nats-server, or one in
// this process.
func (d *deployment) startNATS(ctx context.Context) error {
	store := filepath.Join(d.dir, "nats")
	if d.cfg.natsServer != "" {
		p, m, err := startProc(ctx, d.dir, "nats-server", d.cfg.natsServer,
			[]string{"-a", "127.0.0.1", "-p", "-1", "-js", "-sd", store}, d.cfg.timeout, natsListening, natsReady)
		if err != nil {
			return err
		}
		d.natsProc, d.natsURL = p, "nats://"+m[0]
		return nil
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(d.cfg.timeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return errors.New("the in-process nats-server did not start")
	}
	d.ns, d.natsURL = ns, ns.ClientURL()
	return nil
}

// stop stops the replicas, then NATS, and waits for them.
func (d *deployment) stop() {
	done := make(chan struct{}, len(d.replicas))
	for _, r := range d.replicas {
		go func() {
			r.stop()
			done <- struct{}{}
		}()
	}
	for range d.replicas {
		<-done
	}
	if d.nc != nil {
		d.nc.Close()
	}
	if d.natsProc != nil {
		d.natsProc.stop()
	}
	if d.ns != nil {
		d.ns.Shutdown()
		d.ns.WaitForShutdown()
	}
	d.http.CloseIdleConnections()
}
