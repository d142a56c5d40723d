package transport_test

import (
	"slices"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
)

func TestStatusChangeReachesOtherDeviceAndWidgetsOnAnotherReplica(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	w1 := watchWidget(t, r1, "acme", "", "offline", "no_agents")
	w2 := watchWidget(t, r2, "acme", "", "offline", "no_agents")

	tok := mintToken(t, "acme", "alice")
	desktop := connectAgent(t, r1, tok, "", "desktop")
	if got := desktop.welcome.str("status"); got != "online" {
		t.Fatalf("got first-seen status %q, want online", got)
	}
	w1.expect("widget_status", "status", "online", "reason", "agents_online")
	w2.expect("widget_status", "status", "online", "reason", "agents_online")

	mobile := connectAgent(t, r2, tok, "", "mobile")
	if got, want := deviceIDs(mobile.welcome), []string{desktop.device, mobile.device}; !slices.Equal(got, want) {
		t.Fatalf("got welcome devices %v, want %v", got, want)
	}
	if got, want := deviceIDs(desktop.expect("devices")), []string{desktop.device, mobile.device}; !slices.Equal(got, want) {
		t.Fatalf("got devices %v on the desktop, want %v", got, want)
	}

	desktop.send(map[string]string{"type": "set_status", "status": "busy", "ref": "r1"})
	for _, dev := range []*agent{desktop, mobile} {
		dev.expect("status", "status", "busy", "by_device", desktop.device, "ref", "r1")
	}
	w1.expect("widget_status", "status", "busy", "reason", "all_busy")
	w2.expect("widget_status", "status", "busy", "reason", "all_busy")

	mobile.send(map[string]string{"type": "set_status", "status": "online"})
	for _, dev := range []*agent{desktop, mobile} {
		dev.expect("status", "status", "online", "by_device", mobile.device)
	}
	w1.expect("widget_status", "status", "online", "reason", "agents_online")
	w2.expect("widget_status", "status", "online", "reason", "agents_online")
}

func TestStoredStatusSurvivesAndIsAdopted(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	tok := mintToken(t, "acme", "alice")

	a := connectAgent(t, r1, tok, "", "desktop")
	a.send(map[string]string{"type": "set_status", "status": "busy"})
	a.expect("status", "status", "busy")
	a.send(map[string]string{"type": "bye"})
	if got := a.expectClose(); got != 1000 {
		t.Fatalf("got close code %d after bye, want 1000", got)
	}

	// A new replica (as after a restart) and a new device: the stored status
	// comes back, and the device does not reset it to online.
	r2 := startReplica(t, ns, replicaOptions{})
	b := connectAgent(t, r2, tok, "", "mobile")
	if got := b.welcome.str("status"); got != "busy" {
		t.Fatalf("got welcome status %q, want the stored busy", got)
	}
	w := watchWidget(t, r2, "acme", "", "busy", "all_busy")
	b.send(map[string]string{"type": "set_status", "status": "offline"})
	b.expect("status", "status", "offline")
	w.expect("widget_status", "status", "offline", "reason", "no_agents")
}

func TestReconnectAfterChangeElsewhereAdoptsNewStatus(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	tok := mintToken(t, "acme", "alice")

	desktop := connectAgent(t, r1, tok, "", "desktop")
	mobile := connectAgent(t, r2, tok, "", "mobile")
	desktop.expect("devices")
	desktop.c.CloseNow() // network loss: no bye
	mobile.expect("devices")
	mobile.send(map[string]string{"type": "set_status", "status": "busy", "ref": "x"})
	mobile.expect("status", "status", "busy", "ref", "x")

	again := connectAgent(t, r1, tok, desktop.device, "desktop")
	if got := again.welcome.str("status"); got != "busy" {
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
	w.expect("widget_status", "status", "online")
	roster := connectAgent(t, r2, mintToken(t, "acme", "bob"), "", "web")
	roster.send(map[string]string{"type": "subscribe_roster"})
	roster.expect("roster")

	a.c.CloseNow() // the last device drops without bye
	back := connectAgent(t, r2, tok, a.device, "desktop")
	if got := back.welcome.str("status"); got != "online" {
		t.Fatalf("got status %q after reconnecting inside the grace, want online", got)
	}
	// The next widget and roster frames must be the ones this change causes:
	// nothing was sent for the drop and the reconnect.
	back.send(map[string]string{"type": "set_status", "status": "offline"})
	back.expect("status", "status", "offline")
	roster.expect("agent", "id", "alice", "status", "offline")
	// bob is online, so the widget stays online: prove no frame came by
	// making bob busy, which the widget must show next.
	roster.send(map[string]string{"type": "set_status", "status": "busy"})
	w.expect("widget_status", "status", "busy", "reason", "all_busy")
}

func TestGraceExpiryGoesOfflineExactlyOnce(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 2 * time.Second
	r1 := startReplica(t, ns, replicaOptions{grace: grace})
	r2 := startReplica(t, ns, replicaOptions{grace: grace})
	w := watchWidget(t, r2, "acme", "", "offline", "no_agents")

	a := connectAgent(t, r1, mintToken(t, "acme", "alice"), "", "desktop")
	w.expect("widget_status", "status", "online")
	a.c.CloseNow()
	w.expect("widget_status", "status", "offline", "reason", "no_agents")

	// The next frame must be caused by bob, not a repeat of offline.
	connectAgent(t, r1, mintToken(t, "acme", "bob"), "", "desktop")
	w.expect("widget_status", "status", "online", "reason", "agents_online")
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
	w.expect("widget_status", "status", "online")
	desktop.expect("devices") // the mobile joined

	desktop.send(map[string]string{"type": "bye"})
	if got := desktop.expectClose(); got != 1000 {
		t.Fatalf("got close code %d, want 1000", got)
	}
	if got := deviceIDs(mobile.expect("devices")); !slices.Equal(got, []string{mobile.device}) {
		t.Fatalf("got devices %v after the desktop's bye, want only the mobile", got)
	}
	mobile.send(map[string]string{"type": "bye"})
	mobile.expectClose()
	w.expect("widget_status", "status", "offline", "reason", "no_agents")
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
	site.expect("widget_status", "status", "online", "reason", "agents_online")
	sales.expect("widget_status", "group", "sales", "status", "online", "reason", "agents_online")

	floater := connectAgent(t, r, mintToken(t, "acme", "uma"), "", "desktop") // in no group
	support.expect("widget_status", "group", "support", "status", "online", "reason", "agents_online")

	floater.send(map[string]string{"type": "set_status", "status": "busy"})
	support.expect("widget_status", "group", "support", "status", "busy", "reason", "all_busy")

	seller.send(map[string]string{"type": "set_status", "status": "offline"})
	sales.expect("widget_status", "group", "sales", "status", "busy", "reason", "all_busy")
	site.expect("widget_status", "status", "busy", "reason", "all_busy")

	floater.send(map[string]string{"type": "set_status", "status": "offline"})
	for _, w := range []*client{site, sales, support} {
		w.expect("widget_status", "status", "offline", "reason", "no_agents")
	}
	// The HTTP endpoint reads the same view.
	assertHTTPStatus(t, r, "/v1/sites/acme/status?group=sales", "offline", "no_agents")
	seller.send(map[string]string{"type": "set_status", "status": "online"})
	sales.expect("widget_status", "status", "online")
	assertHTTPStatus(t, r, "/v1/sites/acme/status?group=sales", "online", "agents_online")
	assertHTTPStatus(t, r, "/v1/sites/acme/status?group=support", "offline", "no_agents")
}

func TestRoster(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	connectAgent(t, r, mintToken(t, "acme", "sam", "sales"), "", "desktop")
	bob := connectAgent(t, r, mintToken(t, "acme", "bob"), "", "web")
	bob.send(map[string]string{"type": "subscribe_roster"})
	f := bob.expect("roster")
	agents, _ := f.fields["agents"].([]any)
	if len(agents) != 2 {
		t.Fatalf("got roster %s, want 2 agents", f)
	}
	first, _ := agents[0].(map[string]any)
	if first["id"] != "bob" || first["status"] != "online" {
		t.Fatalf("got first roster agent %v, want bob online", first)
	}
	uma := connectAgent(t, r, mintToken(t, "acme", "uma"), "", "mobile")
	bob.expect("agent", "id", "uma", "status", "online")
	uma.send(map[string]string{"type": "set_status", "status": "busy"})
	bob.expect("agent", "id", "uma", "status", "busy")
	uma.send(map[string]string{"type": "bye"})
	bob.expect("agent", "id", "uma", "status", "offline")
}
