// Package proctest runs `presencehub serve` processes for tests: it starts
// one, logs its stderr to the test, waits until it says where it listens
// and that its view loaded, and kills it when the test ends.
//
// Goroutines: two per process, one reading its stderr and one waiting for
// it to exit; both end when the process does.
package proctest

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proc is one running `presencehub serve`.
type Proc struct {
	T    testing.TB
	Name string
	Cmd  *exec.Cmd
	// Addr is the HTTP address (host:port) the hub logged it listens on.
	Addr string
	// Exited is closed once the process exited; WaitErr is set then.
	Exited  chan struct{}
	WaitErr error

	addrCh   chan string   // the listening address, once
	loaded   chan struct{} // closed when the hub logs that its view loaded
	readDone chan struct{} // closed when stderr reached EOF

	mu     sync.Mutex
	stderr strings.Builder // guarded by mu
}

var (
	listeningLine  = regexp.MustCompile(`\bmsg=listening addr=(\S+)`)
	viewLoadedLine = regexp.MustCompile(`\bmsg="view loaded"`)
)

// Start runs `binary serve args...` with env, named name in the test's log,
// and waits up to wait until it has logged its listening address and that
// its view loaded; it fails the test if the process exits or wait passes
// first. The process is killed when the test ends.
func Start(t testing.TB, binary string, env []string, name string, wait time.Duration, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Env = env
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start hub %s: %v", name, err)
	}
	p := &Proc{T: t, Name: name, Cmd: cmd, Exited: make(chan struct{}),
		addrCh: make(chan string, 1), loaded: make(chan struct{}), readDone: make(chan struct{})}
	go p.readStderr(pipe)
	go func() {
		<-p.readDone // Wait closes the pipe, so all reads must be done first
		p.WaitErr = cmd.Wait()
		close(p.Exited)
	}()
	t.Cleanup(func() {
		p.Cmd.Process.Kill() // fails harmlessly if it already exited
		<-p.Exited
	})

	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case p.Addr = <-p.addrCh:
	case <-p.Exited:
		t.Fatalf("hub %s exited before listening (%v); stderr:\n%s", name, p.WaitErr, p.Stderr())
	case <-deadline.C:
		t.Fatalf("hub %s logged no listening address within %v; stderr:\n%s", name, wait, p.Stderr())
	}
	select {
	case <-p.loaded:
	case <-p.Exited:
		t.Fatalf("hub %s exited before its view loaded (%v); stderr:\n%s", name, p.WaitErr, p.Stderr())
	case <-deadline.C:
		t.Fatalf("hub %s did not log that its view loaded within %v; stderr:\n%s", name, wait, p.Stderr())
	}
	return p
}

// readStderr logs the child's stderr lines and spots the ones Start waits
// for. It returns at EOF, which comes when the process exits.
func (p *Proc) readStderr(r io.Reader) {
	defer close(p.readDone)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sentAddr, sawLoaded := false, false
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.stderr.WriteString(line + "\n")
		p.mu.Unlock()
		p.T.Logf("%s: %s", p.Name, line)
		if m := listeningLine.FindStringSubmatch(line); m != nil && !sentAddr {
			sentAddr = true
			p.addrCh <- m[1]
		}
		if !sawLoaded && viewLoadedLine.MatchString(line) {
			sawLoaded = true
			close(p.loaded)
		}
	}
	io.Copy(io.Discard, r) // after a scan error, keep the child from blocking on a full pipe
}

// Stderr returns what the process wrote to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}
