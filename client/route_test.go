//go:build unix

package client_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/client"
)

// Every agent socket the client opens, the first one and the one a token
// refresh opens, names the token's site in its URL, where a load balancer
// in front of the hubs can hash on it: here a reverse proxy that records
// the query of each upgrade it forwards.
func TestAgentSocketURLNamesTheSite(t *testing.T) {
	h := startHub(t, "hub", hubArgs("127.0.0.1:0", t.TempDir(), time.Minute)...)
	target, _ := url.Parse(h.url())
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var queries []string
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/agent" {
			mu.Lock()
			queries = append(queries, r.URL.RawQuery)
			mu.Unlock()
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(proxy.Close)

	tok := &tokens{t: t, site: "acme", user: "alice", ttl: 8 * time.Second}
	c, ev := dial(t, client.Config{URL: proxy.URL, TokenFunc: tok.get})
	if got := c.Welcome().Agent.Site; got != "acme" {
		t.Fatalf("got welcome for site %q, want acme", got)
	}
	// Events 0 and 1 are the first welcome and the open state; the next
	// welcome is the refreshed token's socket.
	ev.waitFor(1, "the welcome of a refreshed session", isWelcome)
	mu.Lock()
	defer mu.Unlock()
	if len(queries) < 2 {
		t.Fatalf("the proxy saw %d agent sockets, want the first and the refresh's", len(queries))
	}
	for i, q := range queries {
		if q != "site=acme" {
			t.Errorf("agent socket %d had query %q, want site=acme", i, q)
		}
	}
}
