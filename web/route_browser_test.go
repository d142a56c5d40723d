package web_test

import (
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

// recordSockets keeps the URL of every WebSocket a page opens, in
// window.__sockets; the sockets themselves are the browser's own.
const recordSockets = `
window.__sockets = [];
window.WebSocket = class extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    window.__sockets.push(String(url));
  }
};`

// TestPagesNameTheSiteInSocketURLs: the console's agent socket and the
// admin page's stats socket name their token's site in the URL, for load
// balancers that hash on it (docs/routing.md), and are served.
func TestPagesNameTheSiteInSocketURLs(t *testing.T) {
	ctx := browser(t)
	th := startHub(t, natstest.Start(t))
	for i, tc := range []struct{ page, socket, served string }{
		{"/console?dev&agent=rosa", "/v1/agent?site=" + transport.DevSite, `document.querySelector('.avatar[data-status="online"]') !== null`},
		{"/admin?dev", "/v1/admin?site=" + transport.DevSite, `document.getElementById('conn-admin').textContent.trim() === '1'`},
	} {
		tabCtx := ctx
		if i > 0 {
			tabCtx = tab(t, ctx)
		}
		if _, err := chromedp.Call(tabCtx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordSockets}); err != nil {
			t.Fatal(err)
		}
		run(t, tabCtx, "open "+tc.page, chromedp.Navigate(th.url+tc.page))
		waitJS(t, tabCtx, tc.page+" served", tc.served)
		want := "ws://" + th.addr + tc.socket
		if got := eval(t, tabCtx, "read the socket URLs", chromedp.Evaluate[[]string](`window.__sockets`)); len(got) == 0 || got[0] != want {
			t.Fatalf("%s opened sockets %q, want %s first", tc.page, got, want)
		}
	}
}
