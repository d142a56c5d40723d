package transport_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
)

func TestStatusChangeReachesOtherDeviceAndWidgetsOnAnotherReplica(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	w1 := watchWidget(t, r1, "acme", "", "offline", "no_agents")
	w2 := watchWidget(t, r2, "acme", "", "offline", "no_agents")

	tok := mintToken(t, "acme", "alice")
	desktop := connectAgent(t, r1, tok, "", "desktop")
	if got := desktop.welcome.Str("status"); got != "online" {
		t.Fatalf("got first-seen status %q, want online", got)
	}
	w1.Expect("widget_status", "status", "online", "reason", "agents_online")
	w2.Expect("widget_status", "status", "online", "reason", "agents_online")

	mobile := connectAgent(t, r2, tok, "", "mobile")
	if got, want := deviceIDs(mobile.welcome), []string{desktop.device, mobile.device}; !slices.Equal(got, want) {
		t.Fatalf("got welcome devices %v, want %v", got, want)
	}
	if got, want := deviceIDs(desktop.Expect("devices")), []string{desktop.device, mobile.device}; !slices.Equal(got, want) {
		t.Fatalf("got devices %v on the desktop, want %v", got, want)
	}

	desktop.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "r1"})
	for _, dev := range []*agent{desktop, mobile} {
		dev.Expect("status", "status", "busy", "by_device", desktop.device, "ref", "r1")
	}
	w1.Expect("widget_status", "status", "busy", "reason", "all_busy")
	w2.Expect("widget_status", "status", "busy", "reason", "all_busy")

	mobile.Send(map[string]string{"type": "set_status", "status": "online"})
	for _, dev := range []*agent{desktop, mobile} {
		dev.Expect("status", "status", "online", "by_device", mobile.device)
	}
	w1.Expect("widget_status", "status", "online", "reason", "agents_online")
	w2.Expect("widget_status", "status", "online", "reason", "agents_online")
}

func TestStoredStatusSurvivesAndIsAdopted(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	tok := mintToken(t, "acme", "alice")

	a := connectAgent(t, r1, tok, "", "desktop")
	a.Send(map[string]string{"type": "set_status", "status": "busy"})
	a.Expect("status", "status", "busy")
	a.Send(map[string]string{"type": "bye"})
	if got := a.ExpectClose(); got != 1000 {
		t.Fatalf("got close code %d after bye, want 1000", got)
	}

	// A new replica (as after a restart) and a new device: the stored status
	// comes back, and the device does not reset it to online.
	r2 := startReplica(t, ns, replicaOptions{})
	b := connectAgent(t, r2, tok, "", "mobile")
	if got := b.welcome.Str("status"); got != "busy" {
		t.Fatalf("got welcome status %q, want the stored busy", got)
	}
	w := watchWidget(t, r2, "acme", "", "busy", "all_busy")
	b.Send(map[string]string{"type": "set_status", "status": "offline"})
	b.Expect("status", "status", "offline")
	w.Expect("widget_status", "status", "offline", "reason", "no_agents")
}

func TestReconnectAfterChangeElsewhereAdoptsNewStatus(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	tok := mintToken(t, "acme", "alice")

	desktop := connectAgent(t, r1, tok, "", "desktop")
	mobile := connectAgent(t, r2, tok, "", "mobile")
	desktop.Expect("devices")
	desktop.Conn.CloseNow() // network loss: no bye
	mobile.Expect("devices")
	mobile.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "x"})
	mobile.Expect("status", "status", "busy", "ref", "x")

	again := connectAgent(t, r1, tok, desktop.device, "desktop")
	if got := again.welcome.Str("status"); got != "busy" {
		t.Fatalf("got welcome status %q after reconnecting, want busy set elsewhere", got)
	}
	if again.device != desktop.device {
		t.Fatalf("got device %q, want the reconnecting device %q", again.device, desktop.device)
	}
}

func TestGraceReconnectInsideIsInvisible(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{grace: 30 * time.Second})
	r2 := startReplica(t, ns, replicaOptions{grace: 30 * time.Second})
	w := watchWidget(t, r2, "acme", "", "offline", "no_agents")
	tok := mintToken(t, "acme", "alice")

	a := connectAgent(t, r1, tok, "", "desktop")
	w.Expect("widget_status", "status", "online")
	roster := connectAgent(t, r2, mintToken(t, "acme", "bob"), "", "web")
	roster.Send(map[string]string{"type": "subscribe_roster"})
	roster.Expect("roster")

	a.Conn.CloseNow() // the last device drops without bye
	back := connectAgent(t, r2, tok, a.device, "desktop")
	if got := back.welcome.Str("status"); got != "online" {
		t.Fatalf("got status %q after reconnecting inside the grace, want online", got)
	}
	// The next widget and roster frames must be the ones this change causes:
	// nothing was sent for the drop and the reconnect.
	back.Send(map[string]string{"type": "set_status", "status": "offline"})
	back.Expect("status", "status", "offline")
	roster.Expect("agent", "id", "alice", "status", "offline")
	// bob is online, so the widget stays online: prove no frame came by
	// making bob busy, which the widget must show next.
	roster.Send(map[string]string{"type": "set_status", "status": "busy"})
	w.Expect("widget_status", "status", "busy", "reason", "all_busy")
}

func TestGraceExpiryGoesOfflineExactlyOnce(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 2 * time.Second
	r1 := startReplica(t, ns, replicaOptions{grace: grace})
	r2 := startReplica(t, ns, replicaOptions{grace: grace})
	w := watchWidget(t, r2, "acme", "", "offline", "no_agents")

	a := connectAgent(t, r1, mintToken(t, "acme", "alice"), "", "desktop")
	w.Expect("widget_status", "status", "online")
	a.Conn.CloseNow()
	w.Expect("widget_status", "status", "offline", "reason", "no_agents")

	// The next frame must be caused by bob, not a repeat of offline.
	connectAgent(t, r1, mintToken(t, "acme", "bob"), "", "desktop")
	w.Expect("widget_status", "status", "online", "reason", "agents_online")
}

func TestByeGoesOfflineAtOnce(t *testing.T) {
	ns := natstest.Start(t)
	// With an hour of grace, only bye can make the widget go offline.
	r1 := startReplica(t, ns, replicaOptions{grace: time.Hour})
	r2 := startReplica(t, ns, replicaOptions{grace: time.Hour})
	w := watchWidget(t, r2, "acme", "", "offline", "no_agents")
	tok := mintToken(t, "acme", "alice")
	desktop := connectAgent(t, r1, tok, "", "desktop")
	mobile := connectAgent(t, r2, tok, "", "mobile")
	w.Expect("widget_status", "status", "online")
	desktop.Expect("devices") // the mobile joined

	desktop.Send(map[string]string{"type": "bye"})
	if got := desktop.ExpectClose(); got != 1000 {
		t.Fatalf("got close code %d, want 1000", got)
	}
	if got := deviceIDs(mobile.Expect("devices")); !slices.Equal(got, []string{mobile.device}) {
		t.Fatalf("got devices %v after the desktop's bye, want only the mobile", got)
	}
	mobile.Send(map[string]string{"type": "bye"})
	mobile.ExpectClose()
	w.Expect("widget_status", "status", "offline", "reason", "no_agents")
}

// The help article's group rules: agents count for their groups' widgets,
// and an agent in no group counts for every group and so the whole site.
func TestGroupWidgets(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	site := watchWidget(t, r, "acme", "", "offline", "no_agents")
	sales := watchWidget(t, r, "acme", "sales", "offline", "no_agents")
	support := watchWidget(t, r, "acme", "support", "offline", "no_agents")

	seller := connectAgent(t, r, mintToken(t, "acme", "sam", "sales"), "", "desktop")
	site.Expect("widget_status", "status", "online", "reason", "agents_online")
	sales.Expect("widget_status", "group", "sales", "status", "online", "reason", "agents_online")

	floater := connectAgent(t, r, mintToken(t, "acme", "uma"), "", "desktop") // in no group
	support.Expect("widget_status", "group", "support", "status", "online", "reason", "agents_online")

	floater.Send(map[string]string{"type": "set_status", "status": "busy"})
	support.Expect("widget_status", "group", "support", "status", "busy", "reason", "all_busy")

	seller.Send(map[string]string{"type": "set_status", "status": "offline"})
	sales.Expect("widget_status", "group", "sales", "status", "busy", "reason", "all_busy")
	site.Expect("widget_status", "status", "busy", "reason", "all_busy")

	floater.Send(map[string]string{"type": "set_status", "status": "offline"})
	for _, w := range []*wstest.Client{site, sales, support} {
		w.Expect("widget_status", "status", "offline", "reason", "no_agents")
	}
	// The HTTP endpoint reads the same view.
	assertHTTPStatus(t, r, "/v1/sites/acme/status?group=sales", "offline", "no_agents")
	seller.Send(map[string]string{"type": "set_status", "status": "online"})
	sales.Expect("widget_status", "status", "online")
	assertHTTPStatus(t, r, "/v1/sites/acme/status?group=sales", "online", "agents_online")
	assertHTTPStatus(t, r, "/v1/sites/acme/status?group=support", "offline", "no_agents")
}

func TestRoster(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	connectAgent(t, r, mintToken(t, "acme", "sam", "sales"), "", "desktop")
	bob := connectAgent(t, r, mintToken(t, "acme", "bob"), "", "web")
	bob.Send(map[string]string{"type": "subscribe_roster"})
	f := bob.Expect("roster")
	agents, _ := f.Fields["agents"].([]any)
	if len(agents) != 2 {
		t.Fatalf("got roster %s, want 2 agents", f)
	}
	first, _ := agents[0].(map[string]any)
	if first["id"] != "bob" || first["status"] != "online" {
		t.Fatalf("got first roster agent %v, want bob online", first)
	}
	uma := connectAgent(t, r, mintToken(t, "acme", "uma"), "", "mobile")
	bob.Expect("agent", "id", "uma", "status", "online")
	uma.Send(map[string]string{"type": "set_status", "status": "busy"})
	bob.Expect("agent", "id", "uma", "status", "busy")
	uma.Send(map[string]string{"type": "bye"})
	bob.Expect("agent", "id", "uma", "status", "offline")
}

// TestManyWidgetsFollowEveryChange: enough widget sockets that the hub
// splits its fan-out over goroutines; each socket gets every change once,
// in order, and the agent's own device its confirmations.
func TestManyWidgetsFollowEveryChange(t *testing.T) {
	prev := runtime.GOMAXPROCS(4) // split even on a one-core machine
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	widgets := make([]*wstest.Client, 150)
	for i := range widgets {
		widgets[i] = watchWidget(t, r, "acme", "", "offline", "no_agents")
	}
	dev := connectAgent(t, r, mintToken(t, "acme", "alice"), "", "desktop")
	for _, w := range widgets {
		w.Expect("widget_status", "status", "online", "reason", "agents_online")
	}
	for i, status := range []string{"busy", "online", "busy"} {
		ref := fmt.Sprintf("r%d", i)
		dev.Send(map[string]string{"type": "set_status", "status": status, "ref": ref})
		dev.Expect("status", "status", status, "ref", ref)
		for _, w := range widgets {
			w.Expect("widget_status", "status", status)
		}
	}
}
