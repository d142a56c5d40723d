// Package natstest runs real NATS for tests: a nats-server with JetStream
// inside the test process (Start), a three-node JetStream cluster of
// nats-server processes that a test can kill, freeze and restart
// (StartCluster; the binary is built once from go.mod's nats-server, and
// RemoveBinary deletes it), and a TCP proxy that cuts a client off a server
// as a partition does (NewProxy). Every server, process and proxy it starts
// is stopped when the test ends.
//
// Goroutines: an in-process server runs nats-server's own. A cluster node
// has one goroutine waiting for its process to exit. A proxy has one
// goroutine accepting and two per proxied connection, all waited for when
// the test ends.
package natstest

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Start runs a nats-server with JetStream on a free loopback port, storing
// under a temporary directory, and stops it when the test ends.
func Start(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		t.Fatalf("failed to create nats-server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server did not become ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// Connect opens a client connection to ns that closes when the test ends.
func Connect(t testing.TB, ns *natsserver.Server) *nats.Conn {
	t.Helper()
	return ConnectURL(t, ns.ClientURL())
}

// ConnectURL connects to the NATS at url (a Proxy, say) until the test
// ends, reconnecting for ever.
func ConnectURL(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("failed to connect to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Restart shuts ns down and starts a new server on the same port with the
// same store, as an operator restarting NATS does; clients reconnect to it.
func Restart(t testing.TB, ns *natsserver.Server) *natsserver.Server {
	t.Helper()
	port := ns.Addr().(*net.TCPAddr).Port
	store := ns.JetStreamConfig().StoreDir
	ns.Shutdown()
	ns.WaitForShutdown()
	next, err := natsserver.NewServer(&natsserver.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  filepath.Dir(store),
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		t.Fatalf("failed to create nats-server: %v", err)
	}
	next.Start()
	if !next.ReadyForConnections(10 * time.Second) {
		next.Shutdown()
		t.Fatal("restarted nats-server did not become ready")
	}
	t.Cleanup(func() {
		next.Shutdown()
		next.WaitForShutdown()
	})
	return next
}
