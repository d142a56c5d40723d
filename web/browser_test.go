package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/web"
)

// These tests drive the pages in real headless Chromium against a real hub
// on a real nats-server. Without Chromium they skip, except in CI, where
// .ci/run installs it and a missing browser is a failure.

const browserTimeout = 30 * time.Second

var testSecret = []byte("browser-test-secret")

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium not found; .ci/run installs it with: apt-get update && apt-get install -y chromium")
	}
	t.Skip("Chromium not found; install it to run the browser tests: apt-get update && apt-get install -y chromium")
	return ""
}

// browser starts a headless Chromium for the test and returns the context
// of its first tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, consoleLog(t))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // the first run, without a deadline, starts the browser
		t.Fatalf("failed to start Chromium: %v", err)
	}
	return ctx
}

// consoleLog collects a tab's console messages and uncaught exceptions and
// logs them if the test fails.
func consoleLog(t *testing.T) chromedp.ContextOption {
	var (
		mu    sync.Mutex
		lines []string
	)
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				t.Log("browser:", l)
			}
		}
	})
	return chromedp.WithListener(func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		case *cdpruntime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				line += " " + ev.ExceptionDetails.Exception.Description
			}
		default:
			return
		}
		mu.Lock()
		lines = append(lines, line)
		mu.Unlock()
	})
}

// tab opens another tab in the same browser.
func tab(t *testing.T, browserCtx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, consoleLog(t))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("failed to open a tab: %v", err)
	}
	return ctx
}

// run runs browser actions with a deadline.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("failed to %s: %v", what, err)
	}
}

// eval runs a browser action that returns a value, with a deadline.
func eval[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("failed to %s: %v", what, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is true in the tab.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	eval(t, ctx, "wait until "+what, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
}

// screenshot saves the tab as name.png in the test's artifact directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := eval(t, ctx, "take a screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// testHub is a hub replica serving the pages, restartable on the same port.
type testHub struct {
	t    *testing.T
	ns   *natsserver.Server
	id   string // the replica id; "" for the hub's default
	addr string
	url  string
	r    *wstest.Replica
}

func startHub(t *testing.T, ns *natsserver.Server) *testHub {
	return startHubNamed(t, ns, "")
}

// startHubNamed starts a replica with the given id (hub.Config.ID).
func startHubNamed(t *testing.T, ns *natsserver.Server, id string) *testHub {
	t.Helper()
	th := &testHub{t: t, ns: ns, id: id}
	th.start()
	return th
}

func (th *testHub) start() {
	th.t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	th.r = wstest.StartReplica(th.t, th.ns, wstest.ReplicaOptions{
		Secret:    testSecret,
		Hub:       hub.Config{ID: th.id, Grace: time.Minute, Logger: discard},
		Transport: transport.Config{Logger: discard},
		Setup: func(srv *transport.Server, auth *transport.Auth) {
			srv.Handle("/", web.Handler(web.Options{Dev: true}))
			srv.Handle("GET /dev/token", transport.DevTokenHandler(auth))
		},
		Addr: th.addr,
		Wait: browserTimeout,
	})
	th.addr = th.r.Addr
	th.url = th.r.URL
}

// restart stops the hub and starts a new one on the same address, as a
// deploy or a crash-and-restart does.
func (th *testHub) restart() {
	th.r.Stop()
	th.start()
}

// wsAgent is an agent device driven from Go over a real WebSocket.
type wsAgent struct {
	*wstest.Client
	t *testing.T
}

func connectAgent(t *testing.T, th *testHub, site, agent string, groups ...string) *wsAgent {
	t.Helper()
	tok, err := th.r.Auth.Mint(transport.TokenRequest{Site: site, Agent: agent, Groups: groups, Role: transport.RoleAgent, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a := &wsAgent{Client: wstest.Dial(t, "ws://"+th.addr+"/v1/agent", wstest.Options{Wait: browserTimeout}), t: t}
	a.Send(map[string]any{"type": "hello", "token": tok, "device": map[string]string{"kind": "desktop"}})
	a.WaitFor("welcome")
	return a
}

func (a *wsAgent) setStatus(status string) {
	a.t.Helper()
	a.Send(map[string]string{"type": "set_status", "status": status})
	a.WaitFor("status")
}

// shopPage serves a page on its own origin that embeds the hub's widget,
// as a customer's site does.
func shopPage(t *testing.T, th *testHub, site, group string) string {
	t.Helper()
	attrs := fmt.Sprintf(`data-site=%q`, site)
	if group != "" {
		attrs += fmt.Sprintf(` data-group=%q`, group)
	}
	page := `<!doctype html><html><head><title>Shop</title></head><body>
<h1>Acme shop</h1><p id="events">0</p>
<script>document.addEventListener('presence:change', function () {
  var e = document.getElementById('events'); e.textContent = String(Number(e.textContent) + 1); });</script>
<script src="` + th.url + `/widget.js" ` + attrs + ` async></script></body></html>`
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// widgetIs is a JavaScript test that the widget on the page shows status,
// both in its API and in its shadow DOM.
func widgetIs(status string) string {
	return `(function () {
  var w = window.PresenceWidget, host = document.getElementById('presencehub-widget');
  if (!w || w.status !== '` + status + `' || !host || !host.shadowRoot) return false;
  var root = host.shadowRoot.querySelector('.phw');
  return !!root && root.getAttribute('data-status') === '` + status + `';
})()`
}

func TestWidgetOnAnotherOriginFollowsAgent(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	shop := shopPage(t, th, "acme", "")
	run(t, ctx, "open the shop page", chromedp.Navigate(shop))
	waitJS(t, ctx, "the widget shows offline", widgetIs("offline"))
	screenshot(t, ctx, "widget-offline")

	alice := connectAgent(t, th, "acme", "alice")
	waitJS(t, ctx, "the widget shows online", widgetIs("online"))
	screenshot(t, ctx, "widget-online")
	alice.setStatus("busy")
	waitJS(t, ctx, "the widget shows busy", widgetIs("busy"))
	text := eval(t, ctx, "read the widget's text", chromedp.Evaluate[string](
		`document.getElementById('presencehub-widget').shadowRoot.querySelector('.phw-text').textContent`))
	if !strings.Contains(text, "busy") {
		t.Fatalf("got widget text %q, want the busy message", text)
	}
	screenshot(t, ctx, "widget-busy")
	alice.setStatus("offline")
	waitJS(t, ctx, "the widget shows offline again", widgetIs("offline"))

	// The widget's styles stay in its shadow root: the page's own heading
	// keeps the browser's default look.
	leaks := eval(t, ctx, "check for style leaks", chromedp.Evaluate[bool](
		`document.styleSheets.length > 0 || getComputedStyle(document.querySelector('h1')).position !== 'static'`))
	if leaks {
		t.Fatal("got styles in the page's document, want them only inside the widget's shadow root")
	}
	events := eval(t, ctx, "count presence:change events", chromedp.Text(chromedp.CSS("#events")))
	if events != "4" {
		t.Fatalf("got %s presence:change events, want 4 (offline, online, busy, offline)", events)
	}
}

// adminPut sends an admin API PUT for site to the hub with an admin token
// and fails the test unless it answers 200.
func adminPut(t *testing.T, th *testHub, site, path, body string) {
	t.Helper()
	auth, _ := transport.NewAuth(testSecret)
	admin, _ := auth.Mint(transport.TokenRequest{Site: site, Agent: "ops", Role: transport.RoleAdmin, TTL: time.Hour})
	req, _ := http.NewRequest("PUT", th.url+"/v1/admin/sites/"+site+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d for PUT %s %s, want 200", resp.StatusCode, path, body)
	}
}

func TestWidgetShowsBackAtOutsideHours(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	connectAgent(t, th, "acme", "alice")
	// Closed all week but for one hour the day after tomorrow (in the
	// schedule's zone): whatever the day the test runs, the hours are closed
	// now and there is a "back at" to show.
	prague, err := time.LoadLocation("Europe/Prague")
	if err != nil {
		t.Fatal(err)
	}
	openDay := strings.ToLower(time.Now().In(prague).AddDate(0, 0, 2).Weekday().String())
	adminPut(t, th, "acme", "/hours", `{"timezone":"Europe/Prague","weekly":{"`+openDay+`":[{"from":"09:00","to":"10:00"}]}}`)
	run(t, ctx, "open the shop page", chromedp.Navigate(shopPage(t, th, "acme", "")))
	waitJS(t, ctx, "the widget shows offline with a back-at time", widgetIs("offline")+
		` && window.PresenceWidget.reason === 'outside_hours' && window.PresenceWidget.nextChange instanceof Date`)
	back := eval(t, ctx, "read back-at", chromedp.Evaluate[string](
		`document.getElementById('presencehub-widget').shadowRoot.querySelector('.phw-back').textContent`))
	if !strings.Contains(back, "Back") {
		t.Fatalf("got back-at text %q, want a \"Back ...\" line", back)
	}
	screenshot(t, ctx, "widget-back-at")
}

func TestConsoleSyncsDevicesAndWidget(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	desktop := ctx
	mobile := tab(t, ctx)
	shop := tab(t, ctx)
	run(t, desktop, "open the desktop console", chromedp.Navigate(th.url+"/console?dev&device=desktop"))
	waitJS(t, desktop, "the desktop console is online", `document.querySelector('.avatar[data-status="online"]') !== null`)
	run(t, mobile, "open the mobile console", chromedp.Navigate(th.url+"/console?dev&device=mobile"))
	waitJS(t, mobile, "the mobile console is online", `document.querySelector('.avatar[data-status="online"]') !== null`)
	waitJS(t, desktop, "the desktop sees the mobile", `document.querySelectorAll('#devices li').length === 2`)
	run(t, shop, "open the demo shop", chromedp.Navigate(shopPage(t, th, transport.DevSite, "")))
	waitJS(t, shop, "the widget shows online", widgetIs("online"))

	run(t, desktop, "choose busy", chromedp.Click(chromedp.CSS(".avatar")), chromedp.Click(chromedp.CSS("#set-busy")))
	waitJS(t, mobile, "the mobile console shows busy", `document.querySelector('.avatar[data-status="busy"]') !== null && document.getElementById('my-status').textContent.toLowerCase().includes('busy')`)
	waitJS(t, shop, "the widget shows busy", widgetIs("busy"))
	screenshot(t, desktop, "console-desktop-busy")
	screenshot(t, mobile, "console-mobile-busy")

	run(t, mobile, "choose online", chromedp.Click(chromedp.CSS(".avatar")), chromedp.Click(chromedp.CSS("#set-online")))
	waitJS(t, desktop, "the desktop console shows online", `document.querySelector('.avatar[data-status="online"]') !== null`)
	waitJS(t, shop, "the widget shows online", widgetIs("online"))
	waitJS(t, desktop, "the roster lists alice online", `document.querySelector('#roster [data-agent="alice"][data-status="online"]') !== null`)
}

func TestAdminShowsLiveConnectionCounts(t *testing.T) {
	ctx := browser(t)
	// Named as presencehub serve names a replica by default (host:port), so
	// that the screenshot shows what an operator sees.
	th := startHubNamed(t, natstest.Start(t), "hub-1:8080")
	run(t, ctx, "open the admin page", chromedp.Navigate(th.url+"/admin?dev"))
	waitJS(t, ctx, "one admin connection", `document.getElementById('conn-admin').textContent.trim() === '1'`)
	for i := 0; i < 3; i++ {
		c, _, err := websocket.Dial(context.Background(), "ws://"+th.addr+"/v1/widget?site=demo", nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() { // read and discard the widget's frames
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		t.Cleanup(func() { c.CloseNow() })
	}
	connectAgent(t, th, transport.DevSite, "alice")
	waitJS(t, ctx, "three widgets and one agent",
		`document.getElementById('conn-widget').textContent.trim() === '3' && document.getElementById('conn-agent').textContent.trim() === '1'`)
	waitJS(t, ctx, "alice online", `document.getElementById('agents-online').textContent.trim() === '1'`)
	waitJS(t, ctx, "one replica row", `document.querySelectorAll('#replicas [data-hub]').length === 1`)
	waitJS(t, ctx, "alice keeps the chat open", `document.querySelector('#keepers tr[data-agent="alice"][data-status="online"]') !== null`)
	screenshot(t, ctx, "admin")
}

func TestWidgetRecoversAfterHubRestart(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	alice := connectAgent(t, th, "acme", "alice")
	run(t, ctx, "open the shop page", chromedp.Navigate(shopPage(t, th, "acme", "")))
	waitJS(t, ctx, "the widget shows online", widgetIs("online"))

	alice.Conn.CloseNow()
	th.restart()
	// Only a widget that reconnected can see a change made after the restart.
	bob := connectAgent(t, th, "acme", "alice")
	bob.setStatus("busy")
	waitJS(t, ctx, "the widget reconnected and shows busy", widgetIs("busy")+` && window.PresenceWidget.transport === 'websocket'`)
	screenshot(t, ctx, "widget-after-restart")
}

// TestWidgetBackOnSocketAfterLongOutage: a hub away long enough for the
// widget to give up on its socket and poll (three failed sockets and a
// failed poll) must not leave it polling for a minute once the hub is back:
// with polls unanswered too it keeps backing off on the socket.
func TestWidgetBackOnSocketAfterLongOutage(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	run(t, ctx, "open the shop page", chromedp.Navigate(shopPage(t, th, "acme", "")))
	waitJS(t, ctx, "the widget shows offline", widgetIs("offline")+` && window.PresenceWidget.transport === 'websocket'`)

	th.r.Stop()
	down := standInForDownHub(t, th.addr)
	down.waitFor(t, "three failed sockets and a failed poll", func(sockets, polls int) bool { return sockets >= 3 && polls >= 1 })
	down.close()
	th.start()
	alice := connectAgent(t, th, "acme", "alice")
	alice.setStatus("online")
	waitJS(t, ctx, "the widget is back on its socket", widgetIs("online")+` && window.PresenceWidget.transport === 'websocket'`)
}

// downHub stands in for a hub that is down: it accepts on the hub's
// address, counts the widget's socket and poll requests, and closes each
// without an answer.
type downHub struct {
	ln      net.Listener
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on each request; guarded by mu
	sockets int           // guarded by mu
	polls   int           // guarded by mu
	done    chan struct{}
}

func standInForDownHub(t *testing.T, addr string) *downHub {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("failed to listen on the stopped hub's address: %v", err)
	}
	d := &downHub{ln: ln, changed: make(chan struct{}), done: make(chan struct{})}
	go d.serve()
	t.Cleanup(d.close)
	return d
}

func (d *downHub) serve() {
	defer close(d.done)
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		line := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := io.ReadAtLeast(c, line, 20)
		c.Close()
		req := string(line[:n])
		d.mu.Lock()
		switch {
		case strings.HasPrefix(req, "GET /v1/widget"):
			d.sockets++
		case strings.HasPrefix(req, "GET /v1/sites/"):
			d.polls++
		}
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
}

func (d *downHub) waitFor(t *testing.T, what string, ok func(sockets, polls int) bool) {
	t.Helper()
	deadline := time.After(browserTimeout)
	for {
		d.mu.Lock()
		done, changed := ok(d.sockets, d.polls), d.changed
		d.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("failed to wait until %s", what)
		}
	}
}

func (d *downHub) close() {
	d.ln.Close()
	<-d.done
}

// visible is a JavaScript test that the element matching selector exists
// and takes up space on the page.
func visible(selector string) string {
	return `(function () { var e = document.querySelector('` + selector + `'); return !!e && e.getClientRects().length > 0; })()`
}

// TestConsoleLogoutShowsOnlySignedOut: after Log out nothing of the session
// stays on the page (status, this device, the Log out button), only the
// signed-out notice; signing in again brings the session back.
func TestConsoleLogoutShowsOnlySignedOut(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	run(t, ctx, "open the console", chromedp.Navigate(th.url+"/console?dev&device=desktop"))
	waitJS(t, ctx, "the console is online", `document.querySelector('.avatar[data-status="online"]') !== null`)
	waitJS(t, ctx, "this device is listed", visible("#devices .this-device"))

	run(t, ctx, "log out", chromedp.Click(chromedp.CSS("#logout")))
	waitJS(t, ctx, "the signed-out notice", visible("#notice")+
		` && document.getElementById('notice-text').textContent.includes('signed out')`+
		` && document.getElementById('conn').textContent === 'Signed out'`)
	for _, sel := range []string{"#app", "#logout", "#my-status", "#avatar", "#devices .this-device", "#roster li", "#signin-panel"} {
		shown := eval(t, ctx, "check "+sel, chromedp.Evaluate[bool](visible(sel)))
		if shown {
			t.Errorf("got %s visible after Log out, want only the signed-out state", sel)
		}
	}
	if title := eval(t, ctx, "read the title", chromedp.Title()); strings.Contains(title, "Online") || strings.Contains(title, "alice") {
		t.Errorf("got title %q after Log out, want none of the session in it", title)
	}
	screenshot(t, ctx, "console-signed-out")

	run(t, ctx, "sign in again", chromedp.Click(chromedp.CSS("#reconnect")))
	waitJS(t, ctx, "the console is online again", `document.querySelector('.avatar[data-status="online"]') !== null`+
		` && `+visible("#logout")+` && `+visible("#devices .this-device")+` && !`+visible("#notice"))
}

// TestAdminNamesReplicasByID: two replicas on one host are two rows, each
// named by its replica id, not twice by the host name.
func TestAdminNamesReplicasByID(t *testing.T) {
	ctx := browser(t)
	ns := natstest.Start(t)
	a := startHubNamed(t, ns, "shop-host:8080")
	startHubNamed(t, ns, "shop-host:8081")
	run(t, ctx, "open the admin page", chromedp.Navigate(a.url+"/admin?dev"))
	waitJS(t, ctx, "two replica rows named by id", `(function () {
  var names = Array.from(document.querySelectorAll('#replicas [data-hub] .rname'), function (e) { return e.textContent; });
  return names.join(',') === 'shop-host:8080,shop-host:8081';
})()`)
	screenshot(t, ctx, "admin-two-replicas")
}

// TestDemoWidgetPollsWhenOriginsRestricted shows what the README warns of:
// once a site's allowed_origins leave out the hub's own origin, the /demo
// page (served by the hub) is refused a widget socket and its widget falls
// back to polling; listing the hub's origin too keeps it on the socket.
func TestDemoWidgetPollsWhenOriginsRestricted(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	adminPut(t, th, transport.DevSite, "/settings", `{"allowed_origins":["https://shop.example"]}`)
	run(t, ctx, "open the demo page", chromedp.Navigate(th.url+"/demo"))
	waitJS(t, ctx, "the widget polls", widgetIs("offline")+` && window.PresenceWidget.transport === 'polling'`)

	adminPut(t, th, transport.DevSite, "/settings", `{"allowed_origins":["https://shop.example","`+th.url+`"]}`)
	run(t, ctx, "reload the demo page", chromedp.Reload())
	waitJS(t, ctx, "the widget is on its socket", widgetIs("offline")+` && window.PresenceWidget.transport === 'websocket'`)
}

// TestHomePageLeadsToThePages: in dev mode / links the pages, and its
// console link signs an agent in.
func TestHomePageLeadsToThePages(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	run(t, ctx, "open /", chromedp.Navigate(th.url+"/"))
	waitJS(t, ctx, "links to the pages", visible(`#pages a[href="/demo"]`)+` && `+visible(`#pages a[href="/admin"]`))
	screenshot(t, ctx, "home-dev")
	// Following the link by navigating to it, not by a click: Navigate
	// returns once the new page has loaded, so the wait below cannot run in
	// the page being left.
	href := eval(t, ctx, "read the console link", chromedp.Evaluate[string](`document.querySelector('#pages a[href^="/console"]').href`))
	run(t, ctx, "follow the console link", chromedp.Navigate(href))
	waitJS(t, ctx, "the console is online", `document.querySelector('.avatar[data-status="online"]') !== null`)
}

// keepersReady is a JavaScript test that the admin page's "Who keeps the
// chat open" panel shows sam online (console, group sales) and kim busy
// (a WebSocket device, group support), each scope with its own agents.
const keepersReady = `(function () {
  var sam = document.querySelector('#keepers tr[data-agent="sam"][data-status="online"]');
  var kim = document.querySelector('#keepers tr[data-agent="kim"][data-status="busy"]');
  var scope = function (g) { return document.querySelector('#scopes li[data-scope="' + g + '"]'); };
  return !!sam && !!kim && !!sam.querySelector('button[aria-label="Set sam offline"]') &&
    /^\d\d:\d\d$/.test(sam.querySelector('.last-activity').textContent) &&
    sam.querySelectorAll('.devs li[data-state="live"] button[aria-label^="End sam\'s web device "]').length === 1 &&
    kim.querySelectorAll('.devs li[data-state="live"] button[aria-label^="End kim\'s desktop device "]').length === 1 &&
    !!scope('') && scope('').dataset.status === 'online' &&
    !!scope('sales') && scope('sales').dataset.status === 'online' &&
    scope('sales').textContent.includes('sam') && !scope('sales').textContent.includes('kim') &&
    !!scope('support') && scope('support').dataset.status === 'busy' && !scope('support').textContent.includes('sam');
})()`

// TestAdminPanelSignsOffForgottenAgent: an agent who left their console
// open keeps the chat "online"; the admin page names them in "Who keeps
// the chat open", and Set offline turns the widget offline and tells the
// agent's console why. End device ends another agent's device session.
func TestAdminPanelSignsOffForgottenAgent(t *testing.T) {
	ctx := browser(t)
	th := startHubNamed(t, natstest.Start(t), "hub-1:8080")
	// An idle rule far off, so that the agents API reports last activity.
	adminPut(t, th, transport.DevSite, "/settings", `{"idle":{"after":"15m","status":"busy"}}`)
	console := ctx
	demo := tab(t, ctx)
	admin := tab(t, ctx)
	run(t, console, "open the forgotten console", chromedp.Navigate(th.url+"/console?dev&agent=sam&groups=sales"))
	waitJS(t, console, "the console is online", `document.querySelector('.avatar[data-status="online"]') !== null`)
	kim := connectAgent(t, th, transport.DevSite, "kim", "support")
	kim.setStatus("busy")
	run(t, demo, "open the demo page for sales", chromedp.Navigate(th.url+"/demo?group=sales"))
	waitJS(t, demo, "the sales widget shows online", widgetIs("online"))

	run(t, admin, "open the admin page", chromedp.Navigate(th.url+"/admin?dev"))
	waitJS(t, admin, "the panel lists sam and kim by scope", keepersReady)
	waitJS(t, admin, "the stats count this page", `document.getElementById('conn-admin').textContent.trim() === '1'`)
	screenshot(t, admin, "admin-keepers")

	run(t, admin, "click Set offline for sam", chromedp.Click(chromedp.CSS(`button[aria-label="Set sam offline"]`)))
	waitJS(t, demo, "the sales widget shows offline", widgetIs("offline"))
	waitJS(t, console, "the console says an admin set it offline", `document.querySelector('.avatar[data-status="offline"]') !== null &&
  document.getElementById('status-note').textContent === 'set by an admin (admin)'`)
	screenshot(t, console, "console-set-by-admin")
	waitJS(t, admin, "sam leaves the panel and sales has nobody", `(function () {
  var sales = document.querySelector('#scopes li[data-scope="sales"]');
  return !document.querySelector('#keepers tr[data-agent="sam"]') && !!document.querySelector('#keepers tr[data-agent="kim"]') &&
    !!sales && sales.dataset.status === 'offline' && sales.textContent.includes('nobody');
})()`)

	run(t, admin, "click End device for kim's desktop", chromedp.Click(chromedp.CSS(`button[aria-label^="End kim's desktop device "]`)))
	kim.FramesUntilEnd()
	var ce websocket.CloseError
	if !errors.As(kim.CloseErr(), &ce) || ce.Code != 4005 {
		t.Fatalf("got kim's socket ended with %v, want close 4005 (revoked)", kim.CloseErr())
	}
	waitJS(t, admin, "nobody keeps the chat open", `document.querySelector('#keepers tr[data-agent]') === null &&
  document.querySelector('#keepers tr.empty') !== null && document.querySelector('#scopes li[data-scope=""]').dataset.status === 'offline'`)
	if shown := eval(t, admin, "check for errors", chromedp.Evaluate[bool](visible("#keepers-error"))); shown {
		t.Fatal("got an error shown in the panel, want none")
	}
}

// TestAdminPanelShowsErrors: an action that fails is said plainly in the
// panel, naming the agent and what went wrong.
func TestAdminPanelShowsErrors(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	connectAgent(t, th, transport.DevSite, "kim")
	run(t, ctx, "open the admin page", chromedp.Navigate(th.url+"/admin?dev"))
	waitJS(t, ctx, "kim is listed", visible(`#keepers tr[data-agent="kim"] button[aria-label="Set kim offline"]`))
	// The hub goes away: the panel keeps what it last loaded, and says
	// why a click does nothing.
	th.r.Stop()
	run(t, ctx, "click Set offline", chromedp.Click(chromedp.CSS(`button[aria-label="Set kim offline"]`)))
	waitJS(t, ctx, "the failure is shown", visible("#keepers-error")+
		` && document.getElementById('keepers-error-text').textContent.startsWith('Could not set kim offline: could not reach the hub')`)
	screenshot(t, ctx, "admin-keepers-error")
}

// TestConsoleSaysWhyIdleChangedStatus: on a site with an idle rule, a
// console nobody touches turns busy and says why; a key press brings the
// agent back online at once, and says so; so does the window getting
// focus. Activity is sent at most once per 30 s, or per half the idle delay
// when that is shorter (here 2 s).
func TestConsoleSaysWhyIdleChangedStatus(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	adminPut(t, th, transport.DevSite, "/settings", `{"idle":{"after":"4s","status":"busy"}}`)
	// Record the DOM event during which the page sends each activity
	// message. The page is kept focused, so that the key presses below
	// bring no focus event of their own.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
window.__activity = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === 'string' && data.includes('"type":"activity"')) window.__activity.push(window.event ? window.event.type : 'none');
  return send.call(this, data);
};`}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	idle := `document.querySelector('.avatar[data-status="busy"]') !== null &&
  document.getElementById('status-note').textContent === 'set to busy after 4 s without activity'`
	back := `document.querySelector('.avatar[data-status="online"]') !== null &&
  document.getElementById('status-note').textContent === 'back online: activity'`
	run(t, ctx, "open the console", chromedp.Navigate(th.url+"/console?dev&agent=sam"))
	waitJS(t, ctx, "the idle rule sets busy and the console says why", idle)
	screenshot(t, ctx, "console-idle")

	run(t, ctx, "press keys", chromedp.KeyEvent("a"), chromedp.KeyEvent("b"), chromedp.KeyEvent("c"))
	waitJS(t, ctx, "back online, saying why", back)
	if got := eval(t, ctx, "read the activity sent", chromedp.Evaluate[[]string](`window.__activity`)); !slices.Equal(got, []string{"keydown"}) {
		t.Fatalf("got activity sent during %q for three key presses, want once, on keydown", got)
	}

	// Nobody types: idle again; the window getting focus is activity too.
	waitJS(t, ctx, "idle again", idle)
	eval(t, ctx, "focus the window", chromedp.Evaluate[bool](`window.dispatchEvent(new FocusEvent('focus'))`))
	waitJS(t, ctx, "back online on focus", back)
	if got := eval(t, ctx, "read the activity sent", chromedp.Evaluate[[]string](`window.__activity`)); !slices.Equal(got, []string{"keydown", "focus"}) {
		t.Fatalf("got activity sent during %q, want on keydown, then on focus", got)
	}
}
