//go:build unix

package main

// Process tests of the embedded store's durability (docs/operations.md#durability):
// the lock on --data-dir, a full disk, a damaged store, backup and restore.

import (
	"strconv"
	"strings"
	"testing"
)

// embeddedHubArgs are the serve flags of a hub running the embedded
// nats-server on dataDir, listening on a free port.
func embeddedHubArgs(dataDir string, extra ...string) []string {
	return append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--jwt-secret", procSecret,
		"--grace", "1h", "--log-level", "info"}, extra...)
}

// TestSecondProcessOnADataDirFails: a second process on the --data-dir of a
// running hub stops at once, naming the directory and the first one's pid;
// after a SIGKILL of the first, a new process starts on the directory with
// nothing cleaned up by hand.
func TestSecondProcessOnADataDirFails(t *testing.T) {
	dir := t.TempDir()
	a := startHub(t, "A", embeddedHubArgs(dir)...)

	res := runPresencehub(t, nil, append([]string{"serve"}, embeddedHubArgs(dir)...)...)
	pid := strconv.Itoa(a.cmd.Process.Pid)
	if res.code != 1 || !strings.Contains(res.stderr, "--data-dir "+dir+" is in use by another presencehub process (pid "+pid+")") {
		t.Fatalf("second process on %s: got exit code %d and stderr\n%s\nwant 1 and a message naming the directory and pid %s", dir, res.code, res.stderr, pid)
	}
	if strings.Contains(res.stderr, "listening") {
		t.Errorf("second process: got stderr\n%s\nwant it stopped before it served", res.stderr)
	}

	a.kill()
	<-a.exited
	b := startHub(t, "B", embeddedHubArgs(dir)...)
	b.terminate()
}
