//go:build unix

package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/presencehub/presencehub/client"
	"github.com/presencehub/presencehub/internal/natstest"
)

// A bye the hub could not store in time (its NATS is cut off: close 4004)
// is said again after a reconnect, and Bye returns once it is stored.
func TestByeRetriedAfterNotStored(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Hour,
		"--nats-url", proxy.URL(), "--nats-write-retry", "300ms", "--write-timeout", "1s")...)
	c, ev := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})

	proxy.Cut()
	waitReady(t, h, http.StatusServiceUnavailable)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	bye := make(chan error, 1)
	go func() { bye <- c.Bye(ctx) }()
	e, _ := ev.waitFor(0, "the bye not stored", isState(client.Connecting))
	if st := e.(client.State); !isClose(st.Err, 4004) {
		t.Fatalf("got %+v, want close 4004", st)
	}
	select {
	case err := <-bye:
		t.Fatalf("Bye returned %v before NATS was back, want it to wait", err)
	default:
	}
	proxy.Restore()
	if err := <-bye; err != nil {
		t.Fatalf("got %v, want the bye stored once NATS is back", err)
	}
	waitReady(t, h, http.StatusOK)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents") // the grace is an hour: only the bye does this
}

// waitReady polls the hub's /readyz until it answers code.
func waitReady(t *testing.T, h *hubProc, code int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(h.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d within %v", code, wait)
		}
		<-tick.C
	}
}
