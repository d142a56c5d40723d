package transport_test

import (
	"fmt"
	"testing"

	"github.com/presencehub/presencehub/internal/natstest"
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
	// NATS: the two streams interleave, each in order.
	var statuses, refused []string
	for range 5 {
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
	if got, want := fmt.Sprint(statuses, refused), "[r0 r1] [r2 r3 r4]"; got != want {
		t.Fatalf("got statuses and refusals %s, want %s", got, want)
	}
	// The limited device is not disconnected, and the limit is per device.
	other.Expect("status", "ref", "r0")
	other.Expect("status", "ref", "r1")
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
	if got := third.ExpectClose(); got != transport.CloseTooManyDevices {
		t.Fatalf("got close %d for a third device, want %d", got, transport.CloseTooManyDevices)
	}
	// A device that connects again (before its old session even noticed) is
	// not a new one: it takes its own place over.
	again := connectAgent(t, r, tok, first.device, "desktop")
	first.Expect("devices") // the mobile joined, before any of this
	if got := first.ExpectClose(); got != transport.CloseReplaced {
		t.Fatalf("got close %d for the replaced session, want %d", got, transport.CloseReplaced)
	}
	// After a bye there is room again.
	again.Send(map[string]string{"type": "bye"})
	again.ExpectClose()
	connectAgent(t, r, tok, "", "web")
	// Other agents are not affected.
	connectAgent(t, r, mintToken(t, "acme", "bob"), "", "web")
}
