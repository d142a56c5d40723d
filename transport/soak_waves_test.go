//go:build soak

package transport_test

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"testing"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

var (
	soakWaves     = flag.Int("soak-waves", 20, "waves of widget sockets in TestSoakWidgetWaves")
	soakWaveWidth = flag.Int("soak-wave", 5000, "widget sockets per wave (the test process holds both ends: keep twice this under the descriptor limit)")
)

// TestSoakWidgetWaves opens -soak-wave widget sockets at once, -soak-waves
// times (100,000 by default), and closes each wave before the next: with
// every wave open, the replica runs no goroutine per socket (epoll; with
// PRESENCEHUB_TEST_POLLER=goroutine, one each), and after each wave the
// goroutines are back to their baseline and the heap within 8 MiB of it.
// Run: go test -tags soak -run TestSoakWidgetWaves -timeout 30m ./transport/
func TestSoakWidgetWaves(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{MaxWidgetsPerClient: -1}})
	settle := func() (int, uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapAlloc
	}
	baseG, baseHeap := settle()
	t.Logf("baseline: %d goroutines, %d KiB heap", baseG, baseHeap>>10)
	epoll := wstest.TestPoller() != wsconn.PollerGoroutine && wsconn.DefaultPoller == wsconn.PollerEpoll
	for wave := range *soakWaves {
		conns := make([]net.Conn, *soakWaveWidth)
		for i := range conns {
			conns[i] = dialWidget(t, r.wsURL+fmt.Sprintf("/v1/widget?site=wave%d", i%50))
		}
		openG, openHeap := settle()
		t.Logf("wave %d open: %d sockets, %d goroutines, %d KiB heap", wave, len(conns), openG, openHeap>>10)
		if epoll {
			// The handlers' goroutines end after the upgrades.
			eventually(t, "no goroutine per open socket", func() bool {
				openG, _ = settle()
				return openG < baseG+len(conns)/10
			})
		}
		for _, c := range conns {
			c.Close()
		}
		// Served by the poller, a closing socket has no goroutine to wait
		// for: the heap says when the hub is done with them. What stays
		// above the baseline is the runtime's: it keeps the descriptor of
		// every goroutine that ever ran at once (480 bytes each, their
		// stacks freed): on the goroutine path a wave's 5,000 readers
		// (about 5-7 MiB), once, not per wave; on epoll, whose workers are
		// bounded, a few (0.4-0.6 MiB).
		var g int
		var heap uint64
		eventually(t, "goroutines back at the baseline and the heap within 8 MiB of it", func() bool {
			g, heap = settle()
			return g <= baseG+5 && heap <= baseHeap+8<<20
		})
		t.Logf("wave %d closed: %d goroutines, %d KiB heap", wave, g, heap>>10)
	}
}

// dialWidget opens a widget socket with nothing of a client library: a
// TCP connection, the opening handshake and its answer; the hub's first
// frame is left unread.
func dialWidget(t *testing.T, rawURL string) net.Conn {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatalf("failed to dial: %v", err)
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("failed to write the handshake: %v", err)
	}
	// What the reader takes of the first frame is dropped with it.
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 16), nil)
	if err != nil {
		t.Fatalf("failed to read the handshake's answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %s, want 101", resp.Status)
	}
	return c
}
