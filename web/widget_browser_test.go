package web_test

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

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

// TestWidgetOnUnlistedOriginIsRefused: allowed_origins restricts which
// pages may embed the site's widget (docs/security.md), by the socket and
// by polling alike. A page on an origin the site does not list is refused
// its socket (403 at the upgrade), falls back to polling, and is refused
// that too (403): it shows nothing. Listing its origin lets it in. (The hub's
// own /demo page is the exception TestDemoWidgetPollsWhenOriginsRestricted
// shows: a browser sends no Origin on a same-origin GET.)
func TestWidgetOnUnlistedOriginIsRefused(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	adminPut(t, th, "acme", "/settings", `{"allowed_origins":["https://shop.example"]}`)
	// The page records how each of the widget's polls ended: the answer's
	// status, or "refused" when the browser refused to hand it over (a
	// cross-origin 403 without CORS headers is one).
	spy := `window.polls = []; var realFetch = window.fetch;
window.fetch = function (u, o) { return realFetch(u, o).then(function (r) { window.polls.push(String(r.status)); return r; },
  function (e) { window.polls.push('refused'); throw e; }); };`
	shop := shopPageWith(t, th, "acme", "", spy)
	run(t, ctx, "open the shop page", chromedp.Navigate(shop))
	waitJS(t, ctx, "the widget polls, its socket refused", `window.polls.length > 0`)
	polls := eval(t, ctx, "read the polls' answers", chromedp.Evaluate[[]string](`window.polls`))
	if slices.Contains(polls, "200") {
		t.Fatalf("got polls answered %v, want them refused: the page's origin is not in allowed_origins", polls)
	}
	// What the browser refused to show is a 403 (the hub checks Origin).
	req, _ := http.NewRequest("GET", th.url+"/v1/sites/acme/status", nil)
	req.Header.Set("Origin", strings.TrimSuffix(shop, "/"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a poll from the page's origin: got %d, want 403", resp.StatusCode)
	}
	shows := eval(t, ctx, "read the widget", chromedp.Evaluate[bool](`window.PresenceWidget.status !== null ||
  !document.getElementById('presencehub-widget').shadowRoot.querySelector('.phw').hidden`))
	if shows {
		t.Fatal("the widget shows a status on a page the site does not allow")
	}

	origin := strings.TrimSuffix(shop, "/")
	adminPut(t, th, "acme", "/settings", `{"allowed_origins":["https://shop.example","`+origin+`"]}`)
	run(t, ctx, "reload the shop page", chromedp.Reload())
	waitJS(t, ctx, "the widget is on its socket", widgetIs("offline")+` && window.PresenceWidget.transport === 'websocket'`)
}
