package transport_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
)

// TestSocketsNameTheirSite: agent and admin sockets may name their site in
// the URL (?site=S), for load balancers that hash on it (docs/routing.md).
// A URL that names the token's site is served, one that names another site
// is refused after the hello with an error naming site and close 4001, an
// invalid site id is refused before the upgrade with 400 naming site, and a
// URL without site is served as before. Bystanders on another site keep
// working throughout.
func TestSocketsNameTheirSite(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	by := startBystanders(t, r)
	const site = "route"
	for _, kind := range []struct {
		name, path string
		token      func(site string) string
		first      string // the first frame of a socket that is served
	}{
		{"agent", "/v1/agent", func(site string) string { return mintToken(t, site, "rita") }, "welcome"},
		{"admin", "/v1/admin", func(site string) string { return mintAdminToken(t, site) }, "stats"},
	} {
		socketURL := func(query string) string { return r.wsURL + kind.path + query }
		t.Run(kind.name+" names the token's site", func(t *testing.T) {
			c := dial(t, socketURL("?site="+site), nil)
			c.Send(helloFrame(kind.token(site)))
			c.Expect(kind.first)
		})
		t.Run(kind.name+" names no site", func(t *testing.T) {
			c := dial(t, socketURL(""), nil)
			c.Send(helloFrame(kind.token(site)))
			c.Expect(kind.first)
		})
		t.Run(kind.name+" names another site", func(t *testing.T) {
			c := dial(t, socketURL("?site="+bystanderSite), nil)
			c.Send(helloFrame(kind.token(site)))
			msg := expectErrorFrame(t, c, protocol.CodeForbidden, "")
			if !strings.HasPrefix(msg, "site: ") || !strings.Contains(msg, `"`+site+`"`) || !strings.Contains(msg, `"`+bystanderSite+`"`) {
				t.Fatalf("got error message %q, want it to start with site: and name both sites", msg)
			}
			ce := expectClosedWith(t, c, 4001)
			mustContain(t, "close reason", ce.Reason, "site: ")
			by.check(t, kind.name+" socket naming another site")
		})
		t.Run(kind.name+" names an invalid site", func(t *testing.T) {
			for _, bad := range []string{"", "a*b", "é", strings.Repeat("s", 65)} {
				what := kind.path + " with site=" + bad
				c, resp, err := wstest.TryDial(t, socketURL("?"+url.Values{"site": {bad}}.Encode()), wstest.Options{Wait: waitTimeout})
				if err == nil {
					c.Conn.CloseNow()
					t.Fatalf("%s: got a socket, want HTTP 400", what)
				}
				if resp == nil {
					t.Fatalf("%s: got %v, want HTTP 400", what, err)
				}
				msg := expectHTTPError(t, resp, what, http.StatusBadRequest, protocol.CodeBadRequest)
				if !strings.HasPrefix(msg, "site: ") {
					t.Errorf("%s: got message %q, want it to start with site:", what, msg)
				}
			}
			by.check(t, kind.name+" sockets with invalid sites")
		})
	}
}
