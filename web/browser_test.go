package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/presencehub/presencehub/hub"
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
	return shopPageWith(t, th, site, group, "")
}

// shopPageWith is shopPage with script run before the widget's.
func shopPageWith(t *testing.T, th *testHub, site, group, script string) string {
	t.Helper()
	attrs := fmt.Sprintf(`data-site=%q`, site)
	if group != "" {
		attrs += fmt.Sprintf(` data-group=%q`, group)
	}
	page := `<!doctype html><html><head><title>Shop</title></head><body>
<h1>Acme shop</h1><p id="events">0</p>
<script>document.addEventListener('presence:change', function () {
  var e = document.getElementById('events'); e.textContent = String(Number(e.textContent) + 1); });</script>
<script>` + script + `</script>
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

// visible is a JavaScript test that the element matching selector exists
// and takes up space on the page.
func visible(selector string) string {
	return `(function () { var e = document.querySelector('` + selector + `'); return !!e && e.getClientRects().length > 0; })()`
}
