package web_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

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

// keepersFit is a JavaScript test that every button of the "Who keeps the
// chat open" panel lies inside the panel's card, with no part of its table
// scrolled out of sight. It returns "" when they fit, else what does not.
const keepersFit = `(function () {
  var card = document.getElementById('keepers-panel').getBoundingClientRect();
  var out = [];
  document.querySelectorAll('#keepers-panel button').forEach(function (b) {
    var r = b.getBoundingClientRect();
    if (r.left < card.left || r.right > card.right) out.push(b.getAttribute('aria-label') + ' at ' + Math.round(r.left) + '-' + Math.round(r.right));
  });
  var s = document.querySelector('#keepers-panel .scroll');
  if (s.scrollWidth > s.clientWidth) out.push('the table is ' + s.scrollWidth + 'px wide in ' + s.clientWidth + 'px');
  return out.length ? 'card ' + Math.round(card.left) + '-' + Math.round(card.right) + ': ' + out.join('; ') : '';
})()`

// TestAdminKeepersFitAt1280: on a 1280 px wide screen, an agent with two
// devices in grace (each with its times and End device) keeps Set offline
// inside its card, as every other button.
func TestAdminKeepersFitAt1280(t *testing.T) {
	ctx := browser(t)
	th := startHubNamed(t, natstest.Start(t), "hub-1:8080")
	adminPut(t, th, transport.DevSite, "/settings", `{"idle":{"after":"15m","status":"busy"}}`)
	for i := 0; i < 2; i++ {
		d := connectAgent(t, th, transport.DevSite, "lee-from-support", "support", "sales")
		d.Conn.CloseNow() // dropped without bye: the device is in grace
	}
	connectAgent(t, th, transport.DevSite, "sam", "sales")
	run(t, ctx, "open the admin page at 1280 px", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(th.url+"/admin?dev"))
	waitJS(t, ctx, "lee is listed with two devices in grace",
		`document.querySelectorAll('#keepers tr[data-agent="lee-from-support"] .devs li[data-state="grace"]').length === 2 &&
  document.querySelector('#keepers tr[data-agent="sam"]') !== null`)
	screenshot(t, ctx, "admin-keepers-grace-1280")
	if out := eval(t, ctx, "measure the panel", chromedp.Evaluate[string](keepersFit)); out != "" {
		t.Fatalf("at 1280 px, not everything fits in its card: %s", out)
	}
}
