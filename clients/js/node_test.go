//go:build unix

package jsclient_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeTimeout bounds the whole run of the SDK's tests; each of their waits
// is bounded far below it (test/support/hub.js, WAIT).
const nodeTimeout = 10 * time.Minute

// TestNodeSDK runs the JavaScript SDK's tests (test/*.test.js, with node's
// test runner) against real presencehub processes: it builds the binary,
// and the tests start hubs from it (embedded NATS, their own data
// directories, a --jwt-secret they sign tokens with), kill and restart
// them, and cut one off NATS. Without Node.js 20 or later the test skips
// and says so, except in CI (.ci/run installs it), where that fails.
func TestNodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the JavaScript SDK's tests in -short mode: they build and run presencehub processes")
	}
	node := nodePath(t)
	files, err := filepath.Glob(filepath.Join("test", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("found no test/*.test.js (%v)", err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "presencehub")
	build := exec.Command("go", "build", "-o", bin, "github.com/presencehub/presencehub/cmd/presencehub")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build presencehub: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec", "--test-concurrency=1", "--test-timeout=120000"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	env := []string{"PRESENCEHUB_BIN=" + bin, "TMPDIR=" + tmp}
	if !hasWebSocket(t, node) {
		// Node 20 has WebSocket behind a flag; 22 and later by default.
		env = append(env, "NODE_OPTIONS=--experimental-websocket")
	}
	cmd.Env = append(withoutEnv(os.Environ(), "PRESENCE_", "PRESENCEHUB_", "NODE_OPTIONS=", "TMPDIR="), env...)
	// The test files start hubs: in a process group of their own, they all
	// go when the run ends, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what a crashed test file left; fails harmlessly when none
	}
	t.Logf("node %s:\n%s", strings.Join(args, " "), out.String())
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the JavaScript SDK's tests did not end within %v", nodeTimeout)
	case err != nil:
		t.Fatalf("the JavaScript SDK's tests failed (%v); node's report is above", err)
	}
	if !regexp.MustCompile(`\bpass [1-9]`).Match(out.Bytes()) {
		t.Fatal("node's report names no passing test")
	}
}

// nodePath finds node 20 or later, or skips (fails in CI).
func nodePath(t *testing.T) string {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatal(why + "; .ci/run installs it with: apt-get install -y nodejs")
		}
		t.Skip(why + "; install Node.js 20 or later to run the JavaScript SDK's tests (clients/js/test)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found")
	}
	v, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing("node --version failed: " + err.Error())
	}
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(v)), "v"), ".", 2)[0])
	if major < 20 {
		missing("node " + strings.TrimSpace(string(v)) + " is older than 20")
	}
	return node
}

// hasWebSocket reports whether node has a global WebSocket without flags.
func hasWebSocket(t *testing.T, node string) bool {
	t.Helper()
	return exec.Command(node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)").Run() == nil
}

// withoutEnv returns env without the variables whose NAME=value starts
// with one of the prefixes.
func withoutEnv(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
