package transport_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

func TestStatusChangesAreRateLimitedPerDevice(t *testing.T) {
	ns := natstest.Start(t)
	// A burst of 2 that practically never refills.
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{StatusRate: 0.0001, StatusBurst: 2}})
	tok := mintToken(t, "acme", "alice")
	fast := connectAgent(t, r, tok, "", "desktop")
	other := connectAgent(t, r, tok, "", "mobile")
	fast.Expect("devices")
	for i := range 5 {
		fast.Send(map[string]string{"type": "set_status", "status": []string{"busy", "online"}[i%2], "ref": fmt.Sprint("r", i)})
	}
	// Refusals are answered at once, statuses after a round trip through
	// NATS: the two streams interleave, each in order. The two accepted
	// changes write one bucket key twice in a row, and a watch that runs
	// behind may find the second only (docs/protocol.md: a status frame
	// carries the latest status), so r0's frame may not come; r1's must.
	var statuses, refused []string
	for len(refused) < 3 || !slices.Contains(statuses, "r1") {
		f := fast.Next()
		switch f.Str("type") {
		case "status":
			statuses = append(statuses, f.Str("ref"))
		case "error":
			if f.Str("code") != "rate_limited" {
				t.Fatalf("got %s, want a rate_limited error", f)
			}
			refused = append(refused, f.Str("ref"))
		default:
			t.Fatalf("got %s, want a status or an error", f)
		}
	}
	if got := fmt.Sprint(statuses, refused); got != "[r0 r1] [r2 r3 r4]" && got != "[r1] [r2 r3 r4]" {
		t.Fatalf("got statuses and refusals %s, want [r0 r1] [r2 r3 r4] (or r1 alone, r0 replaced before it was read)", got)
	}
	// The limited device is not disconnected, and the limit is per device.
	other.WaitFor("status", "ref", "r1")
	other.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "m1"})
	other.Expect("status", "status", "busy", "ref", "m1")
	fast.Expect("status", "status", "busy", "ref", "m1")
}

func TestDevicesPerAgentAreCapped(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{maxDevices: 2})
	tok := mintToken(t, "acme", "alice")
	first := connectAgent(t, r, tok, "", "desktop")
	connectAgent(t, r, tok, "", "mobile")

	third := dial(t, r.wsURL+"/v1/agent", nil)
	third.Send(map[string]any{"type": "hello", "token": tok, "device": map[string]string{"kind": "web"}})
	third.Expect("error", "code", "forbidden")
	if got := third.ExpectClose(); got != websocket.StatusCode(transport.CloseTooManyDevices) {
		t.Fatalf("got close %d for a third device, want %d", got, transport.CloseTooManyDevices)
	}
	// A device that connects again (before its old session even noticed) is
	// not a new one: it takes its own place over.
	again := connectAgent(t, r, tok, first.device, "desktop")
	first.Expect("devices") // the mobile joined, before any of this
	if got := first.ExpectClose(); got != websocket.StatusCode(transport.CloseReplaced) {
		t.Fatalf("got close %d for the replaced session, want %d", got, transport.CloseReplaced)
	}
	// After a bye there is room again.
	again.Send(map[string]string{"type": "bye"})
	again.ExpectClose()
	connectAgent(t, r, tok, "", "web")
	// Other agents are not affected.
	connectAgent(t, r, mintToken(t, "acme", "bob"), "", "web")
}

func TestWidgetSocketsPerClientAddressAreCapped(t *testing.T) {
	ns := natstest.Start(t)
	reg := prometheus.NewRegistry()
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{MaxWidgetsPerClient: 3, Registerer: reg}})
	// The test's sockets come from 127.0.0.1, a trusted proxy by default:
	// without X-Forwarded-For that is their client address, with it the
	// address the header names.
	var first http.Header
	other := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	third := http.Header{"X-Forwarded-For": {"198.51.100.9"}}

	var widgets []*wstest.Client
	for range 3 {
		widgets = append(widgets, watchWidgetFrom(t, r, first))
	}
	expectWidgetRefused(t, r, first)
	if got := refusedTotal(t, reg, "presencehub_widget_refused_total"); got != 1 {
		t.Fatalf("got presencehub_widget_refused_total{reason=%q} %v after one refusal, want 1", "per_client_limit", got)
	}
	widgets = append(widgets, watchWidgetFrom(t, r, other))

	// A closed socket's slot is free again once the server has seen the
	// close.
	widgets[0].Conn.Close(websocket.StatusNormalClosure, "")
	widgets = append(widgets[1:], watchWidgetWhenFree(t, r, first))

	// A socket refused for a bad site id holds its slot only until it closes.
	for range 3 {
		bad := dial(t, widgetURL(r, "bad%20site", ""), third)
		bad.Expect("error", "code", protocol.CodeBadRequest)
		if got := bad.ExpectClose(); got != websocket.StatusPolicyViolation {
			t.Fatalf("got close %d for a bad site id, want %d", got, websocket.StatusPolicyViolation)
		}
	}
	for range 3 {
		widgets = append(widgets, watchWidgetWhenFree(t, r, third))
	}
	expectWidgetRefused(t, r, third)

	// Nobody else noticed: every open widget follows the site's changes.
	dev := connectAgent(t, r, mintToken(t, "acme", "alice"), "", "desktop")
	for _, w := range widgets {
		w.Expect("widget_status", "status", "online", "reason", "agents_online")
	}
	dev.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "b"})
	for _, w := range widgets {
		w.Expect("widget_status", "status", "busy", "reason", "all_busy")
	}
}

// watchWidgetFrom opens a widget socket on site acme with header and checks
// its first frame.
func watchWidgetFrom(t *testing.T, r *replica, header http.Header) *wstest.Client {
	t.Helper()
	c := dial(t, widgetURL(r, "acme", ""), header)
	c.Expect("widget_status", "site", "acme", "status", "offline", "reason", "no_agents")
	return c
}

// watchWidgetWhenFree is watchWidgetFrom for an address at its cap: it
// dials until the server has released a slot, which it does after it has
// seen a socket close.
func watchWidgetWhenFree(t *testing.T, r *replica, header http.Header) *wstest.Client {
	t.Helper()
	var c *wstest.Client
	eventually(t, "a widget slot is free again", func() bool {
		var resp *http.Response
		var err error
		c, resp, err = wstest.TryDial(t, widgetURL(r, "acme", ""), wstest.Options{Header: header, Wait: waitTimeout})
		if err != nil && (resp == nil || resp.StatusCode != http.StatusTooManyRequests) {
			t.Fatalf("got %v dialing a widget, want a socket or HTTP 429", err)
		}
		return err == nil
	})
	c.Expect("widget_status", "site", "acme", "status", "offline", "reason", "no_agents")
	return c
}

// expectWidgetRefused dials a widget with header and fails unless the
// upgrade is refused with HTTP 429 and a too_many_connections error.
func expectWidgetRefused(t *testing.T, r *replica, header http.Header) {
	t.Helper()
	c, resp, err := wstest.TryDial(t, widgetURL(r, "acme", ""), wstest.Options{Header: header, Wait: waitTimeout})
	if err == nil {
		c.Conn.CloseNow()
		t.Fatal("got a widget socket over the per-client cap, want HTTP 429")
	}
	if resp == nil {
		t.Fatalf("got %v over the per-client cap, want HTTP 429", err)
	}
	expectHTTPError(t, resp, "a widget dial over the per-client cap", http.StatusTooManyRequests, protocol.CodeTooManyConnections)
}
