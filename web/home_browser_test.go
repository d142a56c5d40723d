package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/presencehub/presencehub/internal/natstest"
)

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
