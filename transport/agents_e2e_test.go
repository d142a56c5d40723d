package transport_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestAgentsAPI reads a site's agents over HTTP while real agent sockets
// hold live and dropped (grace) devices.
func TestAgentsAPI(t *testing.T) {
	ns := natstest.Start(t)
	const grace = time.Hour
	r := startReplica(t, ns, replicaOptions{grace: grace})
	admin := mintAdminToken(t, "acme")

	aliceTok := mintToken(t, "acme", "alice", "support", "sales")
	desk := connectAgent(t, r, aliceTok, "", "desktop")
	phone := connectAgent(t, r, aliceTok, "", "mobile")
	desk.WaitFor("devices")
	desk.Send(map[string]string{"type": "set_status", "status": "busy"})
	desk.WaitFor("status", "status", "busy")
	bobWeb := connectAgent(t, r, mintToken(t, "acme", "bob"), "", "web")
	connectAgent(t, r, mintToken(t, "other", "carol"), "", "web") // another site's agent

	dropped := time.Now()
	phone.Conn.CloseNow() // drops without bye: its lease runs out the grace
	// The desktop hears the phone leave its live devices once this
	// replica's view has the lease in grace.
	if got := deviceIDs(desk.WaitFor("devices")); !slices.Equal(got, []string{desk.device}) {
		t.Fatalf("got live devices %v after the phone dropped, want only the desktop", got)
	}
	answered := time.Now()

	code, body := adminCall(t, r, "GET", "/v1/admin/sites/acme/agents", admin, "")
	if code != http.StatusOK {
		t.Fatalf("got %d %v from the agents list, want 200", code, body)
	}
	list, _ := body["agents"].([]any)
	if len(list) != 2 {
		t.Fatalf("got %d agents, want alice and bob only: %v", len(list), body)
	}
	alice, bob := list[0].(map[string]any), list[1].(map[string]any)
	if alice["id"] != "alice" || bob["id"] != "bob" {
		t.Fatalf("got agents %v, %v, want alice then bob", alice["id"], bob["id"])
	}
	if alice["status"] != "busy" || alice["effective"] != "busy" || !equalAny(alice["groups"], "sales", "support") {
		t.Fatalf("got alice %v, want busy, effective busy, groups sales and support", alice)
	}
	if by, _ := alice["changed_by"].(map[string]any); by["kind"] != "device" || by["id"] != desk.device {
		t.Fatalf("got changed_by %v, want the desktop %s", alice["changed_by"], desk.device)
	}
	if _, err := time.Parse(time.RFC3339, alice["changed_at"].(string)); err != nil {
		t.Fatalf("changed_at: %v", err)
	}
	devices, _ := alice["devices"].([]any)
	if len(devices) != 2 {
		t.Fatalf("got alice's devices %v, want the desktop and the phone", devices)
	}
	for _, d := range devices {
		d := d.(map[string]any)
		switch d["id"] {
		case desk.device:
			if d["kind"] != "desktop" || d["state"] != "live" || d["grace_until"] != nil {
				t.Fatalf("got desktop %v, want kind desktop, live, no grace_until", d)
			}
		case phone.device:
			if d["kind"] != "mobile" || d["state"] != "grace" {
				t.Fatalf("got phone %v, want kind mobile, in grace", d)
			}
			// The lease was written between the drop and the answer, so it
			// runs out between those plus the grace.
			until, err := time.Parse(time.RFC3339, d["grace_until"].(string))
			if err != nil {
				t.Fatalf("grace_until: %v", err)
			}
			if until.Before(dropped.Add(grace).Truncate(time.Millisecond)) || until.After(answered.Add(grace)) {
				t.Fatalf("got grace_until %v, want between %v and %v", until, dropped.Add(grace), answered.Add(grace))
			}
		default:
			t.Fatalf("got unknown device %v", d)
		}
		if _, err := time.Parse(time.RFC3339, d["since"].(string)); err != nil {
			t.Fatalf("since: %v", err)
		}
	}
	// bob connected and chose nothing: online with no author.
	if bob["status"] != "online" || bob["effective"] != "online" || bob["changed_by"] != nil || !equalAny(bob["groups"]) {
		t.Fatalf("got bob %v, want online, no changed_by, no groups", bob)
	}

	code, one := adminCall(t, r, "GET", "/v1/admin/sites/acme/agents/alice", admin, "")
	if code != http.StatusOK || one["id"] != "alice" || len(one["devices"].([]any)) != 2 {
		t.Fatalf("got %d %v for alice, want 200 and her two devices", code, one)
	}
	// After bye bob holds no lease: still known, offline, no devices. The
	// socket closes once this replica's view has the lease gone.
	bobWeb.Send(map[string]string{"type": "bye"})
	if got := bobWeb.ExpectClose(); got != 1000 {
		t.Fatalf("got close code %d after bye, want 1000", got)
	}
	code, one = adminCall(t, r, "GET", "/v1/admin/sites/acme/agents/bob", admin, "")
	if devices, ok := one["devices"].([]any); code != http.StatusOK || one["status"] != "online" || one["effective"] != "offline" || !ok || len(devices) != 0 {
		t.Fatalf("got %d %v for bob after bye, want 200, status online, effective offline, no devices", code, one)
	}
	// A site nobody used has no agents.
	code, body = adminCall(t, r, "GET", "/v1/admin/sites/empty/agents", mintAdminToken(t, "empty"), "")
	if list, ok := body["agents"].([]any); code != http.StatusOK || !ok || len(list) != 0 {
		t.Fatalf("got %d %v for a site with no agents, want 200 and an empty list", code, body)
	}
}

// TestAgentsAPIErrors: unknown agents, bad ids and tokens that may not read
// the site.
func TestAgentsAPIErrors(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	connectAgent(t, r, mintToken(t, "acme", "alice"), "", "desktop")
	connectAgent(t, r, mintToken(t, "other", "carol"), "", "desktop")
	tests := []struct {
		name, path, token string
		wantCode          int
		wantError         string
		wantInMessage     string
	}{
		{"never seen", "/v1/admin/sites/acme/agents/zed", mintAdminToken(t, "acme"), 404, "not_found", `"zed"`},
		{"agent of another site", "/v1/admin/sites/acme/agents/carol", mintAdminToken(t, "acme"), 404, "not_found", `"carol"`},
		{"bad agent id", "/v1/admin/sites/acme/agents/a*b", mintAdminToken(t, "acme"), 400, "bad_request", "agent id"},
		{"bad site id", "/v1/admin/sites/a*b/agents", mintAdminToken(t, "acme"), 400, "bad_request", "site id"},
		{"no token", "/v1/admin/sites/acme/agents", "", 401, "unauthorized", "bearer"},
		{"garbage token", "/v1/admin/sites/acme/agents/alice", "nope", 401, "unauthorized", "token"},
		{"agent role", "/v1/admin/sites/acme/agents", mintToken(t, "acme", "alice"), 403, "forbidden", "admin"},
		{"other site's admin", "/v1/admin/sites/acme/agents", mintAdminToken(t, "other"), 403, "forbidden", "another site"},
		{"other site's admin, one agent", "/v1/admin/sites/acme/agents/alice", mintAdminToken(t, "other"), 403, "forbidden", "another site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := adminCall(t, r, "GET", tt.path, tt.token, "")
			e, _ := body["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if code != tt.wantCode || e["code"] != tt.wantError || !strings.Contains(msg, tt.wantInMessage) {
				t.Fatalf("got %d %v, want %d %s with %q in the message", code, body, tt.wantCode, tt.wantError, tt.wantInMessage)
			}
		})
	}
}

// equalAny reports whether v, a decoded JSON array, holds exactly want.
func equalAny(v any, want ...string) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i, x := range list {
		if x != want[i] {
			return false
		}
	}
	return true
}
