//go:build unix

package natstest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StartProcess runs one nats-server with JetStream in a process of its
// own, stopped when the test ends: for benchmarks that measure the test
// process's heap, which an in-process server (Start) shares and moves.
// Packages that call it remove the binary in TestMain (RemoveBinary).
func StartProcess(t testing.TB) *Node {
	t.Helper()
	bin := serverBinary(t)
	dir := t.TempDir()
	ports := freePorts(t, 2)
	n := &Node{
		t: t, bin: bin, Name: "n1",
		port: ports[0], httpPort: ports[1],
		conf:    filepath.Join(dir, "n1.conf"),
		logPath: filepath.Join(dir, "n1.log"),
	}
	conf := fmt.Sprintf("server_name: n1\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\njetstream { store_dir: %q }\n",
		n.port, n.httpPort, filepath.Join(dir, "n1"))
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			n.logTail()
		}
	})
	n.start()
	n.waitHealthy()
	return n
}
