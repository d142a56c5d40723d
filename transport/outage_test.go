package transport_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

// While a replica cannot reach NATS, a device is told the truth: a status
// change NATS did not confirm is "unavailable" (it may still apply), and a
// bye NATS did not store closes with 4004, not 1000. Once NATS is back,
// both land, as a widget on another replica shows.
func TestChangesNATSDidNotTakeAreSaidSo(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	cut := wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:    testSecret,
		Bucket:    store.BucketConfig{LimitMarkerTTL: time.Second},
		Hub:       hub.Config{Grace: time.Hour, MarkerTTL: time.Second, WriteRetry: 300 * time.Millisecond},
		Transport: transport.Config{WriteTimeout: time.Second},
		Wait:      waitTimeout,
		NATSURL:   proxy.URL(),
	})
	a := &replica{hub: cut.Hub, srv: cut.Server, http: cut.HTTP, wsURL: cut.WSURL}
	b := startReplica(t, ns, replicaOptions{})
	w := watchWidget(t, b, "acme", "", "offline", "no_agents")
	alice := connectAgent(t, a, mintToken(t, "acme", "alice"), "", "desktop")
	w.Expect("widget_status", "status", "online")

	proxy.Cut()
	eventually(t, "the replica sees NATS gone", func() bool { return cut.Hub.Healthy() != nil })
	alice.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "maybe"})
	alice.Expect("error", "code", protocol.CodeUnavailable, "ref", "maybe")
	alice.Send(map[string]string{"type": "bye"})
	expectClosedWith(t, alice.Client, websocket.StatusCode(transport.CloseByeNotStored))

	proxy.Restore()
	// The change may land before the bye's purge does (busy, then offline)
	// or not at all; the widget ends offline either way.
	for {
		f := w.Expect("widget_status")
		if f.Str("status") == "offline" {
			break
		}
		if f.Str("status") != "busy" {
			t.Fatalf("got %s, want busy or offline", f)
		}
	}
}
