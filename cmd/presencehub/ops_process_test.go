//go:build unix

package main

// Operations, tested on real presencehub processes over a real nats-server
// with real WebSocket clients: the metrics move with traffic, readiness
// flips at the start of a drain, and a rolling restart of two replicas is
// invisible to every widget and agent.

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
)

// opsHubArgs are the serve flags of a hub on ns for the tests in this file.
func opsHubArgs(natsURL, dataDir string, extra ...string) []string {
	return append([]string{"--addr", "127.0.0.1:0", "--nats-url", natsURL, "--grace", "30s",
		"--data-dir", dataDir, "--jwt-secret", procSecret, "--log-level", "info"}, extra...)
}

// TestMetricsMoveWithTraffic drives one hub through connects, status
// changes, a dropped device that comes back inside the grace and a bye, and
// checks that /metrics follows.
func TestMetricsMoveWithTraffic(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, "hub", opsHubArgs(ns.ClientURL(), t.TempDir())...)

	const (
		connections  = "presencehub_connections"
		statusTotal  = "presencehub_status_changes_total"
		framesOut    = "presencehub_frames_out_total"
		framesIn     = "presencehub_frames_in_total"
		graceStarted = "presencehub_grace_started_total"
		graceCancel  = "presencehub_grace_cancelled_total"
		graceExpired = "presencehub_grace_expired_total"
		pendingGrace = "presencehub_pending_grace"
		kvOps        = "presencehub_kv_operations_total"
		kvErrors     = "presencehub_kv_errors_total"
		natsUp       = "presencehub_nats_connected"
		viewLoaded   = "presencehub_view_loaded"
		propagation  = "presencehub_propagation_seconds_count"
		agents       = "presencehub_agents"
	)
	before := opsWaitMetrics(t, h, "before traffic",
		opsEq(1, natsUp), opsEq(1, viewLoaded),
		opsEq(0, connections, "kind", "agent"), opsEq(0, connections, "kind", "widget"),
		opsEq(0, kvOps, "op", "lease"))

	// Three widgets: two for the site, one for group sales. Alice is in no
	// group and bob in sales, so both count for every widget.
	var widgets []*wstest.Client
	for _, q := range []string{"site=acme", "site=acme", "site=acme&group=sales"} {
		w := dialWS(t, "widget?"+q, h.wsURL("/v1/widget?"+q))
		w.Expect("widget_status", "status", "offline", "reason", "no_agents")
		widgets = append(widgets, w)
	}
	widgetsSee := func(status, reason string) {
		t.Helper()
		for _, w := range widgets {
			w.Expect("widget_status", "status", status, "reason", reason)
		}
	}

	aliceToken := opsToken(t, "alice")
	alice, _ := opsConnectDevice(t, h, "alice", aliceToken, "")
	widgetsSee("online", "agents_online")
	bob, _ := opsConnectDevice(t, h, "bob", opsToken(t, "bob", "sales"), "")

	// Three statuses set; each sender waits for its own echo.
	framesSent := 2.0 // the hellos
	setStatus := func(c *agentClient, status, ref string) {
		t.Helper()
		c.Send(map[string]string{"type": "set_status", "status": status, "ref": ref})
		framesSent++
		c.WaitFor("status", "status", status, "ref", ref)
	}
	setStatus(alice, "busy", "m1") // bob is still online: no widget moves
	setStatus(bob, "busy", "m2")
	widgetsSee("busy", "all_busy")
	setStatus(alice, "online", "m3")
	widgetsSee("online", "agents_online")
	const statusesSet = 3
	// Frames the hub handed to sockets' queues so far that the clients saw:
	// three status echoes and three widget changes of three widgets.
	const fannedOut = 3 + 3*3

	// Alice's only device drops without bye: her grace starts. She comes
	// back with the same device id inside the 30s grace: it is cancelled.
	alice.Conn.CloseNow()
	opsWaitMetrics(t, h, "after alice's device dropped",
		opsEq(before.val(graceStarted)+1, graceStarted),
		opsEq(1, pendingGrace),
		opsEq(1, connections, "kind", "agent"))
	_, welcome := opsConnectDevice(t, h, "alice again", aliceToken, alice.device)
	framesSent++
	if got := welcome.Str("status"); got != "online" {
		t.Errorf("got welcome status %q for alice's device back inside the grace, want online", got)
	}
	opsWaitMetrics(t, h, "after alice's device came back",
		opsEq(before.val(graceCancel)+1, graceCancel),
		opsEq(0, pendingGrace))

	// Bob says bye: his only device ends at once, with no grace.
	bob.Send(map[string]string{"type": "bye"})
	framesSent++
	for _, f := range opsExpectClose(t, bob.Client, websocket.StatusNormalClosure) {
		if f.Str("type") != "devices" {
			t.Errorf("bob: got %s after bye, want no frame but devices lists", f)
		}
	}

	after := opsWaitMetrics(t, h, "after the traffic",
		opsEq(3, connections, "kind", "widget"),
		opsEq(1, connections, "kind", "agent"),
		opsEq(1, agents, "status", "online"), // alice
		opsEq(0, agents, "status", "busy"),
		opsEq(1, agents, "status", "offline"), // bob, gone by bye
		opsEq(0, pendingGrace),
		opsEq(before.val(statusTotal)+statusesSet, statusTotal),
		opsAtLeast(before.val(framesOut)+fannedOut, framesOut),
		opsEq(before.val(framesIn, "kind", "agent")+framesSent, framesIn, "kind", "agent"),
		opsEq(before.val(framesIn, "kind", "widget"), framesIn, "kind", "widget"),
		opsEq(before.val(graceStarted)+1, graceStarted),
		opsEq(before.val(graceCancel)+1, graceCancel),
		opsEq(before.val(graceExpired), graceExpired),
		opsAbove(0, kvOps, "op", "lease"),
		opsAbove(0, kvOps, "op", "purge"), // bob's bye
		opsEq(0, kvErrors, "op", "lease"),
		opsEq(0, kvErrors, "op", "purge"),
		opsEq(1, natsUp),
		opsEq(1, viewLoaded),
		opsAtLeast(before.val(propagation)+statusesSet, propagation),
	)
	t.Logf("metrics moved: status_changes %v -> %v, frames_out %v -> %v, frames_in{agent} %v -> %v, kv lease ops %v, propagation count %v -> %v",
		before.val(statusTotal), after.val(statusTotal), before.val(framesOut), after.val(framesOut),
		before.val(framesIn, "kind", "agent"), after.val(framesIn, "kind", "agent"),
		after.val(kvOps, "op", "lease"), before.val(propagation), after.val(propagation))
}

// TestReadinessFlipsDuringDrain sends SIGTERM to a hub with a shutdown
// delay: /readyz turns 503 and new sockets are refused while the open ones
// stay, then those close with 1001 and the process exits 0.
func TestReadinessFlipsDuringDrain(t *testing.T) {
	const delay = 3 * time.Second
	ns := natstest.Start(t)
	h := startHub(t, "hub", opsHubArgs(ns.ClientURL(), t.TempDir(), "--shutdown-delay", delay.String())...)

	if code, body := opsGet(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("GET /readyz before SIGTERM: got %d %q, want 200", code, body)
	}
	widget := dialWS(t, "widget", h.wsURL("/v1/widget?site=acme"))
	widget.Expect("widget_status", "status", "offline", "reason", "no_agents")
	agent, _ := opsConnectDevice(t, h, "agent", opsToken(t, "alice"), "")
	widget.Expect("widget_status", "status", "online", "reason", "agents_online")

	sigterm := h.opsSigterm()
	opsWaitHTTPStatus(t, h, "/readyz", http.StatusServiceUnavailable)
	flipped := time.Since(sigterm)
	// Everything below until the sockets close relies on the delay not
	// having run out yet; the failure messages say how long it had been.
	inDelay := func() string {
		return "(" + time.Since(sigterm).Round(time.Millisecond).String() + " after SIGTERM, shutdown delay " + delay.String() + ")"
	}

	// The open widget socket is still served: it answers a ping and got no
	// frame, let alone a close.
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	if err := widget.Conn.Ping(ctx); err != nil {
		t.Fatalf("widget: got ping error %v while /readyz is 503 %s, want the open socket still served", err, inDelay())
	}
	opsNoFrameYet(t, widget, "while /readyz is 503 "+inDelay())
	opsNoFrameYet(t, agent.Client, "while /readyz is 503 "+inDelay())

	// New sockets of either kind are refused with 503 at the upgrade.
	for _, path := range []string{"/v1/widget?site=acme", "/v1/agent"} {
		c, resp, err := websocket.Dial(ctx, h.wsURL(path), nil)
		if err == nil {
			c.CloseNow()
			t.Fatalf("dial %s while draining: got a socket %s, want HTTP 503", path, inDelay())
		}
		if resp == nil {
			t.Fatalf("dial %s while draining: got error %v and no HTTP response %s, want HTTP 503", path, err, inDelay())
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("dial %s while draining: got HTTP %d %s, want 503", path, resp.StatusCode, inDelay())
		}
		if got := resp.Header.Get("Retry-After"); got == "" {
			t.Errorf("dial %s while draining: got no Retry-After header, want one", path)
		}
	}
	if code, _ := opsGet(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz while draining: got %d %s, want 200 while the process runs", code, inDelay())
	}

	// Then the open sockets close with 1001, with nothing sent before.
	if frames := opsExpectClose(t, widget, websocket.StatusGoingAway); len(frames) != 0 {
		t.Errorf("widget: got frames %v before the 1001 close, want none", frames)
	}
	widgetClosed := time.Since(sigterm)
	for _, f := range opsExpectClose(t, agent.Client, websocket.StatusGoingAway) {
		t.Errorf("agent: got frame %s before the 1001 close, want none", f)
	}
	exited := h.opsWaitExit0(sigterm)
	t.Logf("after SIGTERM: /readyz 503 seen at %v, widget closed (1001) at %v, process exited 0 at %v (shutdown delay %v)",
		flipped.Round(time.Millisecond), widgetClosed.Round(time.Millisecond), exited.Round(time.Millisecond), delay)
}

// opsRollAgent is one agent of the rolling restart.
type opsRollAgent struct {
	id     string
	groups []string
	token  string
	// status is the agent's chosen status, which every welcome must carry.
	status string
}

// opsRollDevice is one device of a opsRollAgent and its current socket.
type opsRollDevice struct {
	agent *opsRollAgent
	name  string
	c     *agentClient
	hub   *hubProc
}

// opsRollWidget is one widget and its current socket.
type opsRollWidget struct {
	name  string
	group string
	c     *wstest.Client
	hub   *hubProc
	// last is the last widget_status frame it received.
	last wstest.Frame
}

// TestRollingRestartZeroWidgetMessages rolls two replicas one after the
// other, the way a deployment does: SIGTERM, and every socket the hub closes
// with 1001 reconnects to the other replica (agents with the device id their
// welcome gave). No widget may see a frame it would not have seen without
// the roll, and no agent a status change: a widget that moves gets its
// status as it was as the first frame on its new socket, and after each roll
// the next frames every widget gets are those of a marker (working hours
// set and removed), which no roll could produce.
func TestRollingRestartZeroWidgetMessages(t *testing.T) {
	ns := natstest.Start(t)
	dataA, dataB := t.TempDir(), t.TempDir()
	hubA := startHub(t, "A", opsHubArgs(ns.ClientURL(), dataA, "--shutdown-delay", "0")...)
	hubB := startHub(t, "B", opsHubArgs(ns.ClientURL(), dataB, "--shutdown-delay", "0")...)

	// Three widgets per replica: two for the site, one for group sales.
	var widgets []*opsRollWidget
	dialWidget := func(w *opsRollWidget, p *hubProc) wstest.Frame {
		t.Helper()
		url := "/v1/widget?site=acme"
		if w.group != "" {
			url += "&group=" + w.group
		}
		w.hub = p
		w.c = dialWS(t, w.name+"@"+p.Name, p.wsURL(url))
		f := w.c.Next()
		if f.Str("type") != "widget_status" || f.Str("site") != "acme" || f.Str("group") != w.group {
			t.Fatalf("%s: got first frame %s, want widget_status of site acme, group %q", w.c.Name, f, w.group)
		}
		return f
	}
	for _, p := range []*hubProc{hubA, hubB} {
		for i, group := range []string{"", "", "sales"} {
			w := &opsRollWidget{name: "widget" + string(rune('1'+i)), group: group}
			if group != "" {
				w.name = "widget-" + group
			}
			w.name += "-from-" + p.Name
			w.last = dialWidget(w, p)
			widgets = append(widgets, w)
		}
	}

	// Five agents, each with a device on A; alice and bob also on B. Erin,
	// in no group, counts for every widget and is the only one online.
	agents := []*opsRollAgent{
		{id: "alice", groups: []string{"sales"}, status: "busy"},
		{id: "bob", groups: []string{"support"}, status: "busy"},
		{id: "carol", groups: []string{"sales"}, status: "busy"},
		{id: "dave", groups: []string{"support"}, status: "busy"},
		{id: "erin", status: "online"},
	}
	var devices []*opsRollDevice
	for _, a := range agents {
		a.token = opsToken(t, a.id, a.groups...)
		d := &opsRollDevice{agent: a, name: a.id + "-1", hub: hubA}
		d.c, _ = opsConnectDevice(t, hubA, d.name+"@A", a.token, "")
		devices = append(devices, d)
	}
	for _, a := range agents[:2] {
		d := &opsRollDevice{agent: a, name: a.id + "-2", hub: hubB}
		d.c, _ = opsConnectDevice(t, hubB, d.name+"@B", a.token, "")
		devices = append(devices, d)
	}
	for _, a := range agents {
		if a.status == "online" {
			continue
		}
		var first *opsRollDevice
		for _, d := range devices {
			if d.agent == a && first == nil {
				first = d
				d.c.Send(map[string]string{"type": "set_status", "status": a.status, "ref": "setup"})
			}
		}
		for _, d := range devices { // every device of the agent hears it
			if d.agent == a {
				d.c.WaitFor("status", "status", a.status, "ref", "setup")
			}
		}
	}
	// Setup settles with every widget online thanks to erin; from here on
	// nothing may change for anyone until the deliberate changes below.
	for _, w := range widgets {
		w.last = w.c.WaitFor("widget_status", "status", "online", "reason", "agents_online")
	}

	// checkNoStatus fails on any frame but device lists and the site's
	// hours (which the markers below move): once set up, the agents' devices
	// must never hear of a status change they did not make.
	checkNoStatus := func(d *opsRollDevice, frames []wstest.Frame, when string) {
		t.Helper()
		for _, f := range frames {
			if typ := f.Str("type"); typ != "devices" && typ != "hours" {
				t.Errorf("%s: got %s %s, want no frame but devices and hours", d.c.Name, f, when)
			}
		}
	}
	// roll sends SIGTERM to from and moves every socket it closes with 1001
	// to to, as a load balancer does, then waits for from to exit 0.
	roll := func(from, to *hubProc) {
		t.Helper()
		sigterm := from.opsSigterm()
		for _, d := range devices {
			if d.hub != from {
				continue
			}
			checkNoStatus(d, opsExpectClose(t, d.c.Client, websocket.StatusGoingAway), "before hub "+from.Name+" closed it")
			c, welcome := opsConnectDevice(t, to, d.name+"@"+to.Name, d.agent.token, d.c.device)
			if got := welcome.Str("status"); got != d.agent.status {
				t.Errorf("%s: got welcome %s with status %q on reconnecting, want %q unchanged", c.Name, welcome, got, d.agent.status)
			}
			d.c, d.hub = c, to
		}
		lastClosed := time.Since(sigterm)
		for _, w := range widgets {
			if w.hub != from {
				continue
			}
			if frames := opsExpectClose(t, w.c, websocket.StatusGoingAway); len(frames) != 0 {
				t.Errorf("%s: got frames %v before hub %s closed it, want none", w.c.Name, frames, from.Name)
			}
			prev := w.last
			w.last = dialWidget(w, to)
			if !opsSameWidgetState(prev, w.last) {
				t.Errorf("%s: got first frame %s on reconnecting, want the status it had, %s (but its at)", w.c.Name, w.last, prev)
			}
		}
		exited := from.opsWaitExit0(sigterm)
		t.Logf("roll of hub %s: its agent sockets had all closed and moved %v after SIGTERM; it exited 0 %v after SIGTERM",
			from.Name, lastClosed.Round(time.Millisecond), exited.Round(time.Millisecond))
	}
	// everyWidgetNext checks that the next frame every widget gets, wherever
	// it is now, is the status it must take, so that nothing came between.
	everyWidgetNext := func(status, reason, after string) {
		t.Helper()
		for _, w := range widgets {
			f := w.c.Next()
			if f.Str("type") != "widget_status" || f.Str("status") != status || f.Str("reason") != reason || f.Str("group") != w.group {
				t.Errorf("%s: got %s as the next frame after %s, want widget_status %s/%s", w.c.Name, f, after, status, reason)
			}
			w.last = f
		}
	}
	// marker proves that no widget got a frame since its last checked one:
	// working hours that keep the site closed are set and removed again, so
	// every widget's next two frames must be offline/outside_hours and then
	// its state before. A roll can never produce outside_hours, so a stray
	// frame cannot pass for the marker.
	marker := func(via *hubProc, after string) {
		t.Helper()
		opsAdmin(t, via, http.MethodPut, "/v1/admin/sites/acme/hours", `{"timezone":"UTC"}`, http.StatusOK)
		before := make(map[*opsRollWidget]wstest.Frame)
		for _, w := range widgets {
			before[w] = w.last
		}
		everyWidgetNext("offline", "outside_hours", after)
		opsAdmin(t, via, http.MethodDelete, "/v1/admin/sites/acme/hours", "", http.StatusNoContent)
		for _, w := range widgets {
			f := w.c.Next()
			if !opsSameWidgetState(before[w], f) {
				t.Errorf("%s: got %s when the site's hours were removed again, want its state before, %s (but its at)", w.c.Name, f, before[w])
			}
			w.last = f
		}
	}

	// Roll A onto B, then bring A back (a new process, same flags and data
	// directory, maybe a new port) and let new visitors land on it.
	roll(hubA, hubB)
	hubA2 := startHub(t, "A2", opsHubArgs(ns.ClientURL(), dataA, "--shutdown-delay", "0")...)
	for i, group := range []string{"", "", "sales"} {
		w := &opsRollWidget{name: "widget" + string(rune('1'+i)) + "-new-on-A2", group: group}
		if group != "" {
			w.name = "widget-" + group + "-new-on-A2"
		}
		w.last = dialWidget(w, hubA2)
		if w.last.Str("status") != "online" || w.last.Str("reason") != "agents_online" {
			t.Errorf("%s: got first frame %s from the restarted hub, want online/agents_online", w.c.Name, w.last)
		}
		widgets = append(widgets, w)
	}

	// Nothing reached any widget during roll A and the restart: the next
	// frames are the marker's.
	marker(hubA2, "roll A and the restart of A")

	// Erin, the only agent online, turns busy: the next frame of every
	// widget is that change, and roll B happens with every widget busy.
	var erin *opsRollDevice
	for _, d := range devices {
		if d.agent.id == "erin" {
			erin = d
		}
	}
	erin.agent.status = "busy"
	erin.c.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "barrier"})
	for {
		f := erin.c.Next()
		if typ := f.Str("type"); typ == "devices" || typ == "hours" {
			continue
		}
		if f.Str("type") != "status" || f.Str("status") != "busy" || f.Str("ref") != "barrier" {
			t.Fatalf("%s: got %s, want the echo of its busy with ref barrier", erin.c.Name, f)
		}
		break
	}
	everyWidgetNext("busy", "all_busy", "erin turning busy")

	// Roll B onto the new A; again nothing may reach any widget.
	roll(hubB, hubA2)
	marker(hubA2, "roll B")

	// Three more rolls, alternating, each onto a process just brought back
	// on the other replica's data directory: five rolls in all.
	live, downData := hubA2, dataB
	for i := 3; i <= 5; i++ {
		back := startHub(t, fmt.Sprintf("R%d", i), opsHubArgs(ns.ClientURL(), downData, "--shutdown-delay", "0")...)
		roll(live, back)
		marker(back, fmt.Sprintf("roll %d", i))
		if downData == dataB {
			downData = dataA
		} else {
			downData = dataB
		}
		live = back
	}

	// The end: every device says bye. Everyone is busy, so each widget
	// changes once, when its last agent goes: its next frame must be
	// offline/no_agents, and the marker after it shows that it was the
	// only one.
	for _, d := range devices {
		d.c.Send(map[string]string{"type": "bye"})
		checkNoStatus(d, opsExpectClose(t, d.c.Client, websocket.StatusNormalClosure), "before its bye closed it")
	}
	everyWidgetNext("offline", "no_agents", "every agent's bye")
	marker(live, "every agent's bye")
}

// opsSameWidgetState reports whether two widget_status frames say the same
// thing: every field but at, when the replica saw the status take its value.
func opsSameWidgetState(a, b wstest.Frame) bool {
	for _, m := range []map[string]any{a.Fields, b.Fields} {
		if m == nil {
			return false
		}
	}
	keys := make(map[string]bool)
	for k := range a.Fields {
		keys[k] = true
	}
	for k := range b.Fields {
		keys[k] = true
	}
	for k := range keys {
		if k == "at" {
			continue
		}
		av, aok := a.Fields[k]
		bv, bok := b.Fields[k]
		if aok != bok || av != bv {
			return false
		}
	}
	return true
}
