package main

import (
	"encoding/json"
	"net/http/httptest"
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

// TestWrongMethodAndUnknownPathAreJSON: with the pages mounted as serve
// mounts them, a wrong method on an API path is 405 with Allow (not the
// pages' 404), and a path nobody serves is a JSON 404; the pages still
// answer.
func TestWrongMethodAndUnknownPathAreJSON(t *testing.T) {
	auth, err := transport.NewAuth([]byte("a-secret-long-enough-for-the-test-hub"))
	if err != nil {
		t.Fatal(err)
	}
	srv := transport.NewServer(nil, auth, transport.Config{Ready: func() error { return nil }})
	mountExtras(srv, prometheus.NewRegistry(), auth, false)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"POST", "/v1/admin/sites/demo/settings", 405, "method_not_allowed", "GET, HEAD, PUT"},
		{"POST", "/v1/sites/demo/status", 405, "method_not_allowed", "GET, HEAD"},
		{"DELETE", "/console", 405, "method_not_allowed", "GET, HEAD"},
		{"POST", "/", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/nope", 404, "not_found", ""},
		{"GET", "/console/", 404, "not_found", ""},
		{"GET", "/static/nope.js", 404, "not_found", ""},
		{"POST", "/dev/token", 404, "not_found", ""},
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tc.status || body.Error.Code != tc.code ||
			rec.Header().Get("Allow") != tc.allow || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: got %d (Allow %q, %s) %s, want %d %s with Allow %q", tc.method, tc.path, rec.Code,
				rec.Header().Get("Allow"), rec.Header().Get("Content-Type"), rec.Body, tc.status, tc.code, tc.allow)
		}
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/console", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /console: got %d %s, want the page", rec.Code, rec.Header().Get("Content-Type"))
	}
}
