package client

import (
	"fmt"
	"net/url"
	"strings"
)

// endpoint returns the URL of path (such as "/v1/agent") on the hub at
// base: an http, https, ws or wss URL of the hub, with or without a path
// prefix (a hub behind a proxy under /presence). A base that already ends
// with path is taken as it is. ws is true for a WebSocket URL (ws, wss),
// false for an HTTP one.
func endpoint(base, path string, ws bool) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("invalid hub URL %q: %w", base, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
		if ws {
			u.Scheme = "ws"
		}
	case "https", "wss":
		u.Scheme = "https"
		if ws {
			u.Scheme = "wss"
		}
	default:
		return nil, fmt.Errorf("invalid hub URL %q: want an http, https, ws or wss URL", base)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid hub URL %q: no host", base)
	}
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	if !strings.HasSuffix(u.Path, path) {
		u.Path = strings.TrimSuffix(u.Path, "/") + path
	}
	return u, nil
}

// agentURL returns the URL of the agent socket at base (endpoint's, which
// has no query) for a hello with token: with ?site= and the token's site,
// read without verifying the token, so that a load balancer in front of the
// hubs can hash on it (docs/routing.md). A token whose site cannot be read
// or is no valid id gets base as it is: the hub refuses such a token at the
// hello (4001), which the client handles as any refused token.
func agentURL(base, token string) string {
	site := readToken(token).site
	if !validID(site) {
		return base
	}
	return base + "?site=" + site // an id needs no escaping
}

// validID reports whether s is a site, agent or group id: 1 to 64
// characters of A-Za-z0-9_-.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
