//go:build unix

package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/client"
)

// A status set through the client reaches the agent's other devices and a
// widget; the answer is the hub's status frame for the change.
func TestSetStatusReachesDevicesAndWidget(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")

	desk, deskEv := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{Kind: client.Desktop}})
	welcome := desk.Welcome()
	if welcome.Device == "" || welcome.Session == "" || welcome.Agent.Site != "acme" || welcome.Agent.ID != "alice" {
		t.Fatalf("got welcome %+v, want alice of acme with a device and a session", welcome)
	}
	if welcome.Status != client.Online || welcome.Grace != time.Minute || len(welcome.Devices) != 1 || welcome.Devices[0].Kind != client.Desktop {
		t.Fatalf("got welcome %+v, want a new agent online, a 1m grace and this desktop", welcome)
	}
	w.waitStatus(client.Online, "agents_online")

	phone, phoneEv := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{Kind: client.Mobile}})
	if got := len(phone.Welcome().Devices); got != 2 {
		t.Fatalf("got %d devices in the phone's welcome, want 2", got)
	}
	deskEv.waitFor(0, "a devices event listing the phone", func(ev client.Event) bool {
		d, ok := ev.(client.Devices)
		return ok && len(d.Devices) == 2
	})

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := desk.SetStatus(ctx, client.Busy)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != client.Busy || st.By != client.ByDevice || st.ByDevice != welcome.Device || st.Ref == "" || st.At.IsZero() {
		t.Fatalf("got %+v, want the status frame of this change", st)
	}
	ev, _ := phoneEv.waitFor(0, "a busy status on the phone", isStatus(client.Busy))
	if got := ev.(client.Status); got.Ref != st.Ref || got.ByDevice != welcome.Device {
		t.Fatalf("the phone got %+v, want the desktop's change %+v", got, st)
	}
	w.waitStatus(client.Busy, "all_busy")

	// The hub's errors come back typed.
	if _, err := desk.SetStatus(ctx, "away"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("got %v setting status away, want a bad_request error", err)
	}
	var herr *client.Error
	if _, err := desk.SetStatus(ctx, "away"); !errors.As(err, &herr) || herr.Ref == "" || herr.Message == "" {
		t.Fatalf("got %v, want an *Error with the call's ref and the hub's message", err)
	}

	// The roster: every agent, then each change.
	roster, err := phone.SubscribeRoster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(roster.Agents) != 1 || roster.Agents[0].ID != "alice" || roster.Agents[0].Status != client.Busy {
		t.Fatalf("got roster %+v, want alice busy", roster)
	}
	dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "bob")})
	phoneEv.waitFor(0, "bob online in the roster", func(ev client.Event) bool {
		a, ok := ev.(client.AgentStatus)
		return ok && a.ID == "bob" && a.Status == client.Online
	})
	w.waitStatus(client.Online, "agents_online")
}

// A mobile device goes to the background and back, confirmed by the hub; a
// desktop cannot, and says why.
func TestBackgroundMode(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	admin := mintToken(t, secret, "acme", "ops", "admin", time.Hour)
	if code := adminCall(t, "PUT", h.url()+"/v1/admin/sites/acme/settings", admin, `{"background":{"max":"10m"}}`); code != http.StatusOK {
		t.Fatalf("got HTTP %d setting background mode on, want 200", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	phone, ev := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{Kind: client.Mobile}})
	if err := phone.Background(ctx); err != nil {
		t.Fatal(err)
	}
	e, next := ev.waitFor(0, "the phone in background state", func(ev client.Event) bool {
		d, ok := ev.(client.Devices)
		return ok && len(d.Devices) == 1 && d.Devices[0].State == client.Background
	})
	if d := e.(client.Devices); d.Devices[0].ID != phone.Welcome().Device {
		t.Fatalf("got %+v, want the phone", d)
	}
	if err := phone.Background(ctx); err != nil { // already: nothing to wait for
		t.Fatal(err)
	}
	if err := phone.Foreground(ctx); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(next, "the phone live again", func(ev client.Event) bool {
		d, ok := ev.(client.Devices)
		return ok && len(d.Devices) == 1 && d.Devices[0].State == client.Live
	})
	if err := phone.Activity(ctx); err != nil {
		t.Fatal(err)
	}

	desk, _ := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "bob"), Device: client.Device{Kind: client.Desktop}})
	err := desk.Background(ctx)
	if !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "mobile") {
		t.Fatalf("got %v for a desktop going to the background, want a bad_request about mobile devices", err)
	}
}

// A hub that restarts, gracefully (SIGTERM) or not (SIGKILL), on the same
// data and port inside the grace: the client reconnects as the same device,
// does not say its status again (the stored one comes back in the welcome),
// subscribes to the roster again, and the widget never shows the agent
// gone.
func TestReconnectAcrossHubRestart(t *testing.T) {
	addr, data := freeAddr(t), t.TempDir()
	args := hubArgs(addr, data, time.Minute)
	h := startHub(t, "hub", args...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")

	c, ev := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{Kind: client.Desktop},
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	first := c.Welcome()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.SetStatus(ctx, client.Busy); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscribeRoster(ctx); err != nil {
		t.Fatal(err)
	}
	w.waitStatus(client.Busy, "all_busy")

	next := len(ev.all())
	for i, stop := range []func(*hubProc){(*hubProc).terminate, (*hubProc).kill} {
		stop(h)
		var e client.Event
		e, next = ev.waitFor(next, "the client reconnecting", isState(client.Connecting))
		t.Logf("restart %d: %+v", i, e)
		h = startHub(t, "hub-again", args...)
		e, next = ev.waitFor(next, "a welcome after the restart", isWelcome)
		again := e.(client.Welcome)
		if again.Device != first.Device || again.Session == first.Session {
			t.Fatalf("restart %d: got welcome %+v, want device %s in a new session", i, again, first.Device)
		}
		if again.Status != client.Busy {
			t.Fatalf("restart %d: got status %s in the welcome, want the stored busy", i, again.Status)
		}
		if len(again.Devices) != 1 || !again.Devices[0].Since.Equal(first.Devices[0].Since) {
			t.Fatalf("restart %d: got devices %+v, want this device since %v: the grace covered the gap", i, again.Devices, first.Devices[0].Since)
		}
		_, next = ev.waitFor(next, "the roster again", func(ev client.Event) bool { _, ok := ev.(client.Roster); return ok })
	}
	if _, err := c.SetStatus(ctx, client.Online); err != nil {
		t.Fatal(err)
	}
	w.waitStatus(client.Online, "agents_online")
	for _, e := range ev.all() {
		if st, ok := e.(client.Status); ok && st.Status != client.Busy && st.Status != client.Online {
			t.Errorf("got status event %+v, want none but the two the test set", st)
		}
	}
	if h := w.history(); slices.ContainsFunc(h, func(s string) bool {
		return strings.HasPrefix(s, client.Offline+"/") && s != "offline/no_agents/websocket"
	}) ||
		slices.Index(h, "offline/no_agents/websocket") != 0 {
		t.Fatalf("the widget showed %v, want offline only before the agent came", h)
	}
}

// With short-lived tokens, the client gets a new token before each expires
// and moves to a socket opened with it: no drop, no 4001, no widget change.
func TestTokenRefreshBeforeExpiry(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")
	tok := &tokens{t: t, site: "acme", user: "alice", ttl: 8 * time.Second}
	c, ev := dial(t, client.Config{URL: h.url(), TokenFunc: tok.get, Device: client.Device{Kind: client.Desktop}})
	device := c.Welcome().Device
	w.waitStatus(client.Online, "agents_online")

	// Events 0 and 1 are the first welcome and the open state; each
	// refresh is a welcome of a new session.
	sessions := []string{c.Welcome().Session}
	next := 1
	for range 2 {
		var e client.Event
		e, next = ev.waitFor(next, "the welcome of a refreshed session", isWelcome)
		w := e.(client.Welcome)
		if w.Device != device || slices.Contains(sessions, w.Session) {
			t.Fatalf("got welcome %+v after sessions %v, want device %s in a new session", w, sessions, device)
		}
		sessions = append(sessions, w.Session)
	}
	if tok.count() < 3 {
		t.Fatalf("TokenFunc was called %d times, want the first token and two refreshes", tok.count())
	}
	if got := c.Welcome().Device; got != device {
		t.Fatalf("got device %s after the refreshes, want %s", got, device)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.SetStatus(ctx, client.Busy); err != nil {
		t.Fatal(err)
	}
	w.waitStatus(client.Busy, "all_busy")
	for _, e := range ev.all() {
		switch e := e.(type) {
		case client.State:
			if e.State != client.Open {
				t.Errorf("got state %+v, want the client never to drop", e)
			}
		case client.ErrorEvent:
			t.Errorf("got error event %v", e.Err)
		}
	}
	if h := w.history(); len(h) != 3 {
		t.Errorf("the widget showed %v, want offline, online, busy", h)
	}
}

// A token the hub refuses (4001: expired during the session, or bad at the
// hello) makes the client ask TokenFunc for another and come back as the
// same device inside the grace; without TokenFunc, a refused token stops it.
func TestTokenRefusedAskTokenFunc(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")

	// The token expires during the session: the hub closes with 4001.
	tok := &tokens{t: t, site: "acme", user: "alice", ttl: 3 * time.Second}
	cfg := client.Config{URL: h.url(), TokenFunc: tok.get, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	client.NoRefresh(&cfg)
	c, ev := dial(t, cfg)
	device := c.Welcome().Device
	w.waitStatus(client.Online, "agents_online")
	e, next := ev.waitFor(0, "the drop at the token's expiry", isState(client.Connecting))
	st := e.(client.State)
	var herr *client.Error
	if !isClose(st.Err, 4001) || !errors.As(st.Err, &herr) || herr.Code != "unauthorized" {
		t.Fatalf("got %+v, want close 4001 after an unauthorized error", st)
	}
	e, _ = ev.waitFor(next, "the welcome with a new token", isWelcome)
	if got := e.(client.Welcome).Device; got != device {
		t.Fatalf("got device %s after the new token, want %s", got, device)
	}
	if tok.count() < 2 {
		t.Fatalf("TokenFunc was called %d times, want at least 2", tok.count())
	}
	c.Close()
	if h := w.history(); len(h) != 2 || h[1] != "online/agents_online/websocket" {
		t.Fatalf("the widget showed %v, want offline then online only", h)
	}

	// A bad token at Dial: TokenFunc gives a good one.
	bad := mintToken(t, "another-secret", "acme", "bob", "", time.Hour)
	good := &tokens{t: t, site: "acme", user: "bob", ttl: time.Hour}
	bob, _ := dial(t, client.Config{URL: h.url(), Token: bad, TokenFunc: good.get})
	if bob.Welcome().Agent.ID != "bob" || good.count() != 1 {
		t.Fatalf("got welcome %+v after %d tokens, want bob after one", bob.Welcome(), good.count())
	}

	// Without TokenFunc, Dial fails with the hub's reasons.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := client.Dial(ctx, client.Config{URL: h.url(), Token: bad})
	if !errors.Is(err, client.ErrTokenRefused) || !errors.Is(err, client.ErrUnauthorized) || !isClose(err, 4001) {
		t.Fatalf("got %v dialing with a bad token, want close 4001 after an unauthorized error", err)
	}
}

// The same device id connected again (4002): the older client stops, says
// why, and does not take the device back.
func TestReplacedStops(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	first, firstEv := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice")})
	second, secondEv := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{ID: first.Welcome().Device}})
	if second.Welcome().Device != first.Welcome().Device {
		t.Fatalf("got device %s, want %s", second.Welcome().Device, first.Welcome().Device)
	}
	e, _ := firstEv.waitFor(0, "the first client closed", isState(client.Closed))
	if err := e.(client.State).Err; !errors.Is(err, client.ErrReplaced) || !isClose(err, 4002) {
		t.Fatalf("got %v, want ErrReplaced with close 4002", err)
	}
	<-first.Done()
	if !errors.Is(first.Err(), client.ErrReplaced) {
		t.Fatalf("got Err %v, want ErrReplaced", first.Err())
	}
	firstEv.wait()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := first.SetStatus(ctx, client.Busy); !errors.Is(err, client.ErrClosed) || !errors.Is(err, client.ErrReplaced) {
		t.Fatalf("got %v from a replaced client, want ErrClosed and ErrReplaced", err)
	}
	if _, err := second.SetStatus(ctx, client.Busy); err != nil {
		t.Fatal(err)
	}
	for _, e := range secondEv.all() {
		if st, ok := e.(client.State); ok && st.State != client.Open {
			t.Fatalf("the newer client got %+v, want it to stay open", st)
		}
	}
}

// An admin signs the device out (4005): the client stops and says so, and
// the agent is offline at once, with no grace.
func TestRevokedStops(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Hour)...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")
	c, ev := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice")})
	w.waitStatus(client.Online, "agents_online")
	admin := mintToken(t, secret, "acme", "ops", "admin", time.Hour)
	if code := adminCall(t, "DELETE", h.url()+"/v1/admin/sites/acme/agents/alice/devices/"+c.Welcome().Device, admin, ""); code != http.StatusNoContent {
		t.Fatalf("got HTTP %d revoking the device, want 204", code)
	}
	e, _ := ev.waitFor(0, "the client closed", isState(client.Closed))
	if err := e.(client.State).Err; !errors.Is(err, client.ErrRevoked) || !isClose(err, 4005) {
		t.Fatalf("got %v, want ErrRevoked with close 4005", err)
	}
	<-c.Done()
	w.waitStatus(client.Offline, "no_agents") // the grace is an hour: only the revocation does this
}

// Bye: the logout is stored, the agent is offline at once, the client stops
// with no error.
func TestByeLogsOut(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Hour)...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")
	c, ev := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice")})
	w.waitStatus(client.Online, "agents_online")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	w.waitStatus(client.Offline, "no_agents")
	ev.wait()
	all := ev.all()
	if last, ok := all[len(all)-1].(client.State); !ok || last.State != client.Closed || last.Err != nil {
		t.Fatalf("got last event %+v, want closed with no error", all[len(all)-1])
	}
	if c.Err() != nil {
		t.Fatalf("got Err %v after bye, want nil", c.Err())
	}
	if err := c.Activity(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("got %v after bye, want ErrClosed", err)
	}
}

// Close drops the device without logging out: the agent keeps their status
// for the grace, and a client started again with the saved device id
// continues the device.
func TestCloseKeepsTheGrace(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Hour)...)
	w := watchWidget(t, h.url(), "acme", "")
	w.waitStatus(client.Offline, "no_agents")
	c, _ := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{Kind: client.Desktop}})
	first := c.Welcome()
	w.waitStatus(client.Online, "agents_online")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	again, _ := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), Device: client.Device{ID: first.Device, Kind: client.Desktop}})
	if d := again.Welcome().Devices; len(d) != 1 || d[0].ID != first.Device || !d[0].Since.Equal(first.Devices[0].Since) {
		t.Fatalf("got devices %+v, want the same device since %v", d, first.Devices[0].Since)
	}
	if h := w.history(); len(h) != 2 {
		t.Fatalf("the widget showed %v, want offline then online only", h)
	}
}

// A widget behind a proxy that refuses WebSockets falls back to polling
// GET /v1/sites/{site}/status.
func TestWatchWidgetPolls(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Hour)...)
	c, _ := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice")})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.SetStatus(ctx, client.Busy); err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(h.url())
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(rw, "no WebSockets here", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(proxy.Close)
	w := watchWidget(t, proxy.URL, "acme", "")
	if got := w.waitStatus(client.Busy, "all_busy"); got.Transport != client.TransportPolling || got.Site != "acme" {
		t.Fatalf("got %+v, want busy by polling", got)
	}
	if _, err := client.WatchWidget(ctx, h.url(), "not a site", ""); err == nil {
		t.Fatal("got no error watching a bad site id")
	}
}

// While the hub is away, calls wait for a connection up to their context,
// and Close stops the reconnecting client with nothing left running.
func TestCloseWhileReconnecting(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	c, ev := dial(t, client.Config{URL: h.url(), Token: agentToken(t, "acme", "alice"), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	h.terminate()
	ev.waitFor(0, "the client reconnecting", isState(client.Connecting))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.SetStatus(ctx, client.Busy); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v from SetStatus with the hub away, want its context's deadline", err)
	}
	if err := c.Activity(ctx); err != nil {
		t.Fatalf("got %v from Activity while reconnecting, want nil (the reconnect's hello is activity)", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ev.wait()
	all := ev.all()
	if last, ok := all[len(all)-1].(client.State); !ok || last.State != client.Closed || last.Err != nil {
		t.Fatalf("got last event %+v, want closed with no error", all[len(all)-1])
	}
	if _, err := c.SetStatus(context.Background(), client.Busy); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("got %v after Close, want ErrClosed", err)
	}
}
