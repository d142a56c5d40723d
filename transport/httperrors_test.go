package transport_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestHTTPErrorsAreJSON: what no route takes, a plain request to a socket
// endpoint and a body over the limit are answered in the API's JSON errors,
// with the status and headers HTTP wants (405 with Allow, 426 with Upgrade),
// never in net/http's plain text.
func TestHTTPErrorsAreJSON(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	admin := mintAdminToken(t, "demo")
	do := func(method, path, body string, header http.Header) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, r.http.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	bearer := http.Header{"Authorization": {"Bearer " + admin}}

	t.Run("wrong method", func(t *testing.T) {
		for _, tc := range []struct{ method, path, allow string }{
			{"POST", "/v1/admin/sites/demo/settings", "GET, HEAD, PUT"},
			{"POST", "/v1/sites/demo/status", "GET, HEAD"},
			{"DELETE", "/v1/admin/sites/demo/agents", "GET, HEAD"},
			{"PUT", "/v1/admin/sites/demo/webhooks", "GET, HEAD, POST"},
			{"POST", "/v1/agent", "GET, HEAD"},
			{"POST", "/openapi.json", "GET, HEAD"},
		} {
			resp := do(tc.method, tc.path, "{}", bearer)
			// Not checked against the OpenAPI description, which has no
			// operation for a method the path does not take.
			msg := expectJSONError(t, resp, tc.method+" "+tc.path, http.StatusMethodNotAllowed, "method_not_allowed")
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: got Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			}
			if !strings.Contains(msg, tc.method) || !strings.Contains(msg, tc.allow) {
				t.Errorf("%s %s: got message %q, want it to name the method and what is allowed", tc.method, tc.path, msg)
			}
		}
	})
	t.Run("no such path", func(t *testing.T) {
		for _, path := range []string{"/nope", "/v1/sites/demo", "/v1/admin/sites/demo/unknown", "/v2/agent"} {
			msg := expectJSONError(t, do("GET", path, "", nil), "GET "+path, http.StatusNotFound, "not_found")
			if !strings.Contains(msg, path) {
				t.Errorf("GET %s: got message %q, want it to name the path", path, msg)
			}
		}
	})
	t.Run("socket without upgrade", func(t *testing.T) {
		for _, path := range []string{"/v1/agent", "/v1/admin", "/v1/widget?site=demo"} {
			resp := do("GET", path, "", nil)
			checkOpenAPI(t, resp)
			msg := expectJSONError(t, resp, "GET "+path, http.StatusUpgradeRequired, "upgrade_required")
			if resp.Header.Get("Upgrade") != "websocket" || !strings.Contains(msg, "WebSocket") {
				t.Errorf("GET %s: got Upgrade %q and message %q, want Upgrade websocket and a message saying it is a WebSocket", path, resp.Header.Get("Upgrade"), msg)
			}
		}
		// A handshake with another version: 426 naming the one wanted.
		resp := do("GET", "/v1/agent", "", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}})
		checkOpenAPI(t, resp)
		expectJSONError(t, resp, "a version 8 handshake", http.StatusUpgradeRequired, "upgrade_required")
		if resp.Header.Get("Sec-Websocket-Version") != "13" {
			t.Errorf("got Sec-WebSocket-Version %q, want 13", resp.Header.Get("Sec-Websocket-Version"))
		}
		// A broken handshake: 400, in JSON too.
		resp = do("GET", "/v1/agent", "", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"short"}})
		checkOpenAPI(t, resp)
		expectJSONError(t, resp, "a handshake with a bad key", http.StatusBadRequest, "bad_request")
	})
	t.Run("body over the limit", func(t *testing.T) {
		for _, path := range []string{"/v1/admin/sites/demo/settings", "/v1/admin/sites/demo/hours", "/v1/admin/sites/demo/agents/alice/status"} {
			resp := do("PUT", path, `{"x":"`+strings.Repeat("x", 65<<10)+`"}`, bearer)
			checkOpenAPI(t, resp)
			expectJSONError(t, resp, "PUT "+path+" with 65 KiB", http.StatusRequestEntityTooLarge, "too_large")
		}
	})
}

// expectJSONError is expectHTTPError without the OpenAPI check, for answers
// the description has no operation for.
func expectJSONError(t *testing.T, resp *http.Response, what string, wantStatus int, wantCode string) string {
	t.Helper()
	return expectHTTPErrorChecked(t, resp, what, wantStatus, wantCode, false)
}
