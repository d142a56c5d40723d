package transport_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

// pendingStatusChange starts a replica that reaches ns through a proxy,
// connects alice to it, cuts it off NATS and has alice ask for busy: the
// change is pending, waiting for NATS, when it returns.
func pendingStatusChange(t *testing.T, ns *natsserver.Server) (*wstest.Replica, *natstest.Proxy, *agent) {
	t.Helper()
	proxy := natstest.NewProxy(t, ns.Addr().String())
	r := wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret: testSecret,
		Bucket: store.BucketConfig{LimitMarkerTTL: time.Second},
		// The change waits for NATS however long it takes.
		Hub:       hub.Config{Grace: time.Hour, MarkerTTL: time.Second, WriteRetry: time.Hour},
		Transport: transport.Config{WriteTimeout: time.Second},
		Wait:      waitTimeout,
		NATSURL:   proxy.URL(),
	})
	alice := connectAgent(t, &replica{hub: r.Hub, srv: r.Server, http: r.HTTP, wsURL: r.WSURL}, mintToken(t, "acme", "alice"), "", "desktop")
	proxy.Cut()
	eventually(t, "the replica sees NATS gone", func() bool { return r.Hub.Healthy() != nil })
	alice.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "r1"})
	// Answered at once, so read after the change: the change is queued.
	alice.Send(map[string]string{"type": "nonsense"})
	alice.WaitFor("error", "code", protocol.CodeBadRequest)
	return r, proxy, alice
}

// A change a device asked for just before its socket dropped is still
// carried out: the device's operations outlive its socket, and its session
// ends (the grace starts) after them.
func TestOperationsOfAClosedSocketStillRun(t *testing.T) {
	ns := natstest.Start(t)
	b := startReplica(t, ns, replicaOptions{})
	w := watchWidget(t, b, "acme", "", "offline", "no_agents")
	_, proxy, alice := pendingStatusChange(t, ns)
	w.Expect("widget_status", "status", "online")

	alice.Conn.CloseNow()
	proxy.Restore()
	w.Expect("widget_status", "status", "busy")
}

// A shutdown does not wait on NATS for a device's pending operations: their
// contexts end with the server's, the socket closes with 1001, the session
// ends as a drop, and no goroutine is left behind (the package's goleak
// check).
func TestShutdownAbandonsPendingOperations(t *testing.T) {
	ns := natstest.Start(t)
	r, _, alice := pendingStatusChange(t, ns)
	r.Stop() // fails the test if the sockets do not close in time
	alice.FramesUntilEnd()
	if got := websocket.CloseStatus(alice.CloseErr()); got != websocket.StatusGoingAway {
		t.Fatalf("got close %d (%v), want 1001", got, alice.CloseErr())
	}
}
