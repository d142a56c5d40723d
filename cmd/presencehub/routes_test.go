package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/transport"
)

// TestEveryRouteIsDescribed builds the server's mux as serve does, with and
// without --dev, and holds every route it registers against the OpenAPI
// description, both ways: a route missing from the description fails, and
// so does a described operation that no mode serves.
func TestEveryRouteIsDescribed(t *testing.T) {
	described := describedOperations(t)
	auth, err := transport.NewAuth([]byte("a-secret-long-enough-for-the-test-hub"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(map[string]bool) // "METHOD /path", method "" for any
	for _, dev := range []bool{false, true} {
		// No hub: only the routes are wanted, and no request is served.
		srv := transport.NewServer(nil, auth, transport.Config{Ready: func() error { return nil }})
		mountExtras(srv, prometheus.NewRegistry(), auth, dev)
		for _, pattern := range srv.Routes() {
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				method, path = "", pattern
			}
			if path == "/{$}" {
				path = "/" // the home page alone, in OpenAPI's syntax
			}
			served[method+" "+path] = true
		}
	}
	for op := range served {
		method, path, _ := strings.Cut(op, " ")
		if method == "" {
			// A pattern without a method answers every method (today only
			// /dev/token's refusal outside --dev): its path must be there.
			if !slices.ContainsFunc(described, func(d string) bool { return strings.HasSuffix(d, " "+path) }) {
				t.Errorf("the server registers %s (any method), which transport/openapi.json does not describe", path)
			}
			continue
		}
		if !slices.Contains(described, op) {
			t.Errorf("the server registers %s, which transport/openapi.json does not describe", op)
		}
	}
	for _, op := range described {
		if !served[op] {
			t.Errorf("transport/openapi.json describes %s, which the server does not register", op)
		}
	}
}

// describedOperations lists the description's operations as "METHOD /path".
func describedOperations(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(transport.OpenAPI(), &doc); err != nil {
		t.Fatalf("failed to decode the OpenAPI description: %v", err)
	}
	var out []string
	for path, item := range doc.Paths {
		for key := range item {
			switch key {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace", "query":
				out = append(out, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}
