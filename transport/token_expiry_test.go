package transport_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

// An open session ends when its token expires: an unauthorized error, then
// close 4001. The device's lease then runs out the grace like any drop, so
// nothing else changes at once.
func TestSessionClosesWhenTokenExpires(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	w := watchWidget(t, r, "acme", "", "offline", "no_agents")
	short := connectAgent(t, r, mintTokenTTL(t, "acme", "alice", 2*time.Second), "", "desktop")
	long := connectAgent(t, r, mintToken(t, "acme", "bob"), "", "desktop")
	w.Expect("widget_status", "status", "online")

	f := short.Expect("error", "code", "unauthorized")
	if !strings.Contains(f.Str("message"), "expired") {
		t.Fatalf("got %s, want a message saying the token expired", f)
	}
	if got := short.ExpectClose(); got != websocket.StatusCode(transport.CloseBadHello) {
		t.Fatalf("got close %d, want %d", got, transport.CloseBadHello)
	}
	// Bob's session, on a token that has not expired, goes on.
	long.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "b1"})
	long.Expect("status", "status", "busy", "ref", "b1")
}

// The admin stats socket, too, ends when its token expires: an unauthorized
// error, then close 4001; another admin socket goes on.
func TestAdminStatsCloseWhenTokenExpires(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	short := dial(t, r.wsURL+"/v1/admin", nil)
	short.Send(map[string]string{"type": "hello", "token": mintAdminTokenTTL(t, "acme", 2*time.Second)})
	long := dial(t, r.wsURL+"/v1/admin", nil)
	long.Send(map[string]string{"type": "hello", "token": mintAdminToken(t, "acme")})
	short.Expect("stats")

	f := short.WaitFor("error", "code", "unauthorized")
	if !strings.Contains(f.Str("message"), "expired") {
		t.Fatalf("got %s, want a message saying the token expired", f)
	}
	if got := short.ExpectClose(); got != websocket.StatusCode(transport.CloseBadHello) {
		t.Fatalf("got close %d, want %d", got, transport.CloseBadHello)
	}
	// The stats go on for the admin whose token is valid.
	closed := time.Now()
	for {
		f := long.Expect("stats")
		if at, err := time.Parse(time.RFC3339Nano, f.Str("at")); err == nil && at.After(closed) {
			return
		}
	}
}
