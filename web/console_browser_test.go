package web_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

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

// TestConsoleSecondTabTakesTheDeviceOver: two tabs of one browser are one
// device (the id is kept in localStorage), so the second tab's session
// replaces the first's (4002). The first says so and does not reconnect by
// itself; "Use this tab" takes the device back, and the agent's status
// never changed on the way.
func TestConsoleSecondTabTakesTheDeviceOver(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	first := ctx
	second := tab(t, ctx)
	online := `document.querySelector('.avatar[data-status="online"]') !== null`
	replaced := visible("#notice") + ` && document.getElementById('notice-text').textContent.includes('connected again elsewhere')` +
		` && document.getElementById('reconnect').textContent === 'Use this tab'`
	run(t, first, "open the console", chromedp.Navigate(th.url+"/console?dev&device=desktop"))
	waitJS(t, first, "the first tab is online", online)
	device := eval(t, first, "read the device id", chromedp.Evaluate[string](
		`document.querySelector('#devices .this-device').dataset.device`))

	run(t, second, "open the console in another tab", chromedp.Navigate(th.url+"/console?dev&device=desktop"))
	waitJS(t, second, "the second tab is online as the same device",
		online+` && document.querySelector('#devices .this-device').dataset.device === '`+device+`'`)
	waitJS(t, first, "the first tab says another session took over", replaced)
	if got := eval(t, first, "read the connection", chromedp.Text(chromedp.CSS("#conn"))); got != "Disconnected" {
		t.Errorf("got connection %q in the replaced tab, want Disconnected (and no reconnecting)", got)
	}

	run(t, first, "use the first tab", chromedp.Click(chromedp.CSS("#reconnect")))
	waitJS(t, first, "the first tab is online again", online+` && !`+visible("#notice"))
	waitJS(t, second, "the second tab says another session took over", replaced)
	if n := eval(t, first, "count devices", chromedp.Evaluate[int](`document.querySelectorAll('#devices li').length`)); n != 1 {
		t.Errorf("got %d devices listed, want 1: both tabs are one device", n)
	}
}
