//go:build unix

package main

// Helpers for the process-level tests in process_test.go: they build the
// presencehub binary once, run it as real child processes, and talk to them
// over real WebSockets.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/proctest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

// procWait bounds every wait for an event in the process tests; it is a
// deadline for failing, never a measurement.
const procWait = 30 * time.Second

// procSecret is the --jwt-secret the test hubs run with.
const procSecret = "process-test-secret"

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBinary()
	natstest.RemoveBinary() // built for the cluster tests
	if code == 0 {
		// No goroutine a test started may still run.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// procBinary is the presencehub binary the process tests run.
func procBinary(t *testing.T) string { return proctest.Binary(t) }

// procEnv returns the test process's environment without any PRESENCE_*
// variable, plus extra, so that the child reads only what a test sets.
func procEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRESENCE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// procResult is the outcome of a short-lived presencehub command.
type procResult struct {
	stdout, stderr string
	code           int
}

// runPresencehub runs the binary with args to completion.
func runPresencehub(t *testing.T, env []string, args ...string) procResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, procBinary(t), args...)
	cmd.Env = procEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := procResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("presencehub %s did not exit within %v; stderr:\n%s", strings.Join(args, " "), procWait, res.stderr)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("failed to run presencehub %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// hubProc is one running `presencehub serve` child process.
type hubProc struct{ *proctest.Proc }

// natsHubArgs are the serve flags of a hub on the NATS at url with grace,
// listening on a free port, with its own data directory.
func natsHubArgs(t *testing.T, url string, grace time.Duration) []string {
	t.Helper()
	return []string{"--addr", "127.0.0.1:0", "--nats-url", url, "--grace", grace.String(), "--liveness-ttl", "2s",
		"--data-dir", t.TempDir(), "--jwt-secret", procSecret, "--log-level", "info"}
}

// startHub runs `presencehub serve args...` and waits until it has logged
// its listening address and that its view loaded. The process is killed
// when the test ends.
func startHub(t *testing.T, name string, args ...string) *hubProc {
	t.Helper()
	return &hubProc{proctest.Start(t, procBinary(t), procEnv(), name, procWait, args...)}
}

// wsURL returns the ws:// URL of path on the hub.
func (p *hubProc) wsURL(path string) string { return "ws://" + p.Addr + path }

// kill sends SIGKILL and returns the time just before it was sent.
func (p *hubProc) kill() time.Time {
	p.T.Helper()
	at := time.Now()
	if err := p.Cmd.Process.Kill(); err != nil {
		p.T.Fatalf("failed to kill hub %s: %v", p.Name, err)
	}
	return at
}

// terminate sends SIGTERM, waits for the process to exit and fails the test
// unless it exits with code 0.
func (p *hubProc) terminate() {
	p.T.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.T.Fatalf("failed to send SIGTERM to hub %s: %v", p.Name, err)
	}
	select {
	case <-p.Exited:
	case <-time.After(procWait):
		p.T.Fatalf("hub %s did not exit within %v of SIGTERM; stderr:\n%s", p.Name, procWait, p.Stderr())
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 || p.WaitErr != nil {
		p.T.Errorf("hub %s exited on SIGTERM with code %d (%v), want code 0; stderr:\n%s", p.Name, code, p.WaitErr, p.Stderr())
	}
}

// mintProcToken mints an agent token signed with secret.
func mintProcToken(t *testing.T, secret, site, agent string) string {
	t.Helper()
	auth, err := transport.NewAuth([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: site, Agent: agent, Role: transport.RoleAgent, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dialWS opens a WebSocket client to url, named name in failure messages,
// that collects what it receives.
func dialWS(t *testing.T, name, url string) *wstest.Client {
	t.Helper()
	return wstest.Dial(t, url, wstest.Options{Name: name, Wait: procWait})
}

// agentClient is a connected agent device.
type agentClient struct {
	*wstest.Client
	// device is the device id the welcome frame gave.
	device string
}

// connectAgent opens an agent socket on p, says hello with token and waits
// for welcome.
func connectAgent(t *testing.T, p *hubProc, name, token string) *agentClient {
	t.Helper()
	c := dialWS(t, name, p.wsURL("/v1/agent"))
	c.Send(map[string]any{"type": "hello", "token": token, "device": map[string]string{"kind": "web"}})
	w := c.Expect("welcome")
	if w.Str("device") == "" {
		t.Fatalf("%s: got welcome %s without a device id, want one", name, w)
	}
	return &agentClient{Client: c, device: w.Str("device")}
}

// rosterView folds the roster and agent frames a roster subscriber receives
// into the agents' statuses.
type rosterView struct {
	t      *testing.T
	c      *wstest.Client
	status map[string]string
}

// subscribeRoster asks c for the roster and reads the roster frame.
func subscribeRoster(t *testing.T, c *agentClient) *rosterView {
	t.Helper()
	c.Send(map[string]string{"type": "subscribe_roster"})
	f := c.Expect("roster")
	r := &rosterView{t: t, c: c.Client, status: make(map[string]string)}
	list, _ := f.Fields["agents"].([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		id, _ := m["id"].(string)
		st, _ := m["status"].(string)
		r.status[id] = st
	}
	return r
}

// nextAgent returns the next frame, which must be an agent frame, before
// deadline; ok is false if none came.
func (r *rosterView) nextAgent(deadline time.Time) (f wstest.Frame, ok bool) {
	r.t.Helper()
	f, ok = r.c.NextBefore(deadline)
	if !ok {
		return f, false
	}
	if f.Str("type") != "agent" {
		r.t.Fatalf("%s: got frame %s, want an agent frame", r.c.Name, f)
	}
	r.status[f.Str("id")] = f.Str("status")
	return f, true
}

// waitStatus reads agent frames until every agent in ids has status.
func (r *rosterView) waitStatus(status string, ids ...string) {
	r.t.Helper()
	deadline := time.Now().Add(procWait)
	for {
		var missing []string
		for _, id := range ids {
			if r.status[id] != status {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if _, ok := r.nextAgent(deadline); !ok {
			slices.Sort(missing)
			r.t.Fatalf("%s: got roster %v after %v, want %v %s", r.c.Name, r.status, procWait, missing, status)
		}
	}
}
