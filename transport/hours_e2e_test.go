package transport_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
)

// everyDay builds a weekly schedule with the same intervals every day.
func everyDay(zone string, intervals string) string {
	var days []string
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		days = append(days, `"`+d+`":`+intervals)
	}
	return `{"timezone":"` + zone + `","weekly":{` + strings.Join(days, ",") + `}}`
}

func nextChange(f wstest.Frame) string {
	s, _ := f.Fields["next_change"].(string)
	return s
}

// Two replicas, hours set through one: widgets on the other flip to
// offline/outside_hours at the boundary and back, with next_change right.
// The hubs' clock is shifted so that a minute boundary is two seconds away;
// the reopening boundary is one real minute later.
func TestHoursFlipWidgetsOnAnotherReplica(t *testing.T) {
	t.Parallel()
	realStart := time.Now()
	day := realStart.UTC().Truncate(24 * time.Hour)
	hubStart := day.Add(12*time.Hour + 58*time.Second) // 12:00:58 UTC
	offset := hubStart.Sub(realStart)
	now := func() time.Time { return time.Now().Add(offset) }

	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{now: now})
	r2 := startReplica(t, ns, replicaOptions{now: now})
	w := watchWidget(t, r2, "acme", "", "offline", "no_agents")
	a := connectAgent(t, r1, mintToken(t, "acme", "alice"), "", "desktop")
	w.Expect("widget_status", "status", "online", "reason", "agents_online", "next_change", "")

	closes := day.Add(12*time.Hour + time.Minute).Format("2006-01-02T15:04:05.000Z")
	reopens := day.Add(12*time.Hour + 2*time.Minute).Format("2006-01-02T15:04:05.000Z")
	closesTomorrow := day.Add(36*time.Hour + time.Minute).Format("2006-01-02T15:04:05.000Z")

	code, body := adminCall(t, r1, "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
		everyDay("UTC", `[{"from":"00:00","to":"12:01"},{"from":"12:02","to":"24:00"}]`))
	if code != http.StatusOK {
		t.Fatalf("got %d %v from PUT hours, want 200", code, body)
	}
	// Open now: the status stands, and widgets and agents learn when the
	// hours close.
	w.Expect("widget_status", "status", "online", "reason", "agents_online", "next_change", closes)
	if f := a.Expect("hours"); f.Fields["open"] != true || nextChange(f) != closes {
		t.Fatalf("got %s, want hours open until %s", f, closes)
	}

	w.Expect("widget_status", "status", "offline", "reason", "outside_hours", "next_change", reopens)
	if f := a.Expect("hours"); f.Fields["open"] != false || nextChange(f) != reopens {
		t.Fatalf("got %s, want hours closed until %s", f, reopens)
	}
	assertHTTPStatus(t, r2, "/v1/sites/acme/status", "offline", "outside_hours")
	late := connectAgent(t, r2, mintToken(t, "acme", "bob"), "", "mobile")
	hours, _ := late.welcome.Fields["hours"].(map[string]any)
	if hours["open"] != false || hours["next_change"] != reopens {
		t.Fatalf("got welcome hours %v while closed, want open=false next_change=%s", hours, reopens)
	}
	// Agents still change their status while closed; the widget stays put.
	a.Send(map[string]string{"type": "set_status", "status": "busy"})
	a.Expect("status", "status", "busy")
	late.Send(map[string]string{"type": "set_status", "status": "busy"})
	late.Expect("status", "status", "busy")

	w.Wait = 90 * time.Second // the hours reopen one real minute after closing
	w.Expect("widget_status", "status", "busy", "reason", "all_busy", "next_change", closesTomorrow)
	assertHTTPStatus(t, r2, "/v1/sites/acme/status", "busy", "all_busy")
}

func TestGroupHoursOverrideSiteHours(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	site := watchWidget(t, r2, "acme", "", "offline", "no_agents")
	night := watchWidget(t, r2, "acme", "night", "offline", "no_agents")
	connectAgent(t, r1, mintToken(t, "acme", "nina", "night"), "", "desktop")
	site.Expect("widget_status", "status", "online")
	night.Expect("widget_status", "status", "online")

	admin := mintAdminToken(t, "acme")
	closedForever := `{"timezone":"Europe/Prague"}`
	if code, body := adminCall(t, r1, "PUT", "/v1/admin/sites/acme/hours", admin, closedForever); code != http.StatusOK {
		t.Fatalf("got %d %v, want 200", code, body)
	}
	site.Expect("widget_status", "status", "offline", "reason", "outside_hours", "next_change", "")
	night.Expect("widget_status", "status", "offline", "reason", "outside_hours")

	always := everyDay("America/New_York", `[{"from":"00:00","to":"24:00"}]`)
	if code, body := adminCall(t, r1, "PUT", "/v1/admin/sites/acme/groups/night/hours", admin, always); code != http.StatusOK {
		t.Fatalf("got %d %v, want 200", code, body)
	}
	night.Expect("widget_status", "group", "night", "status", "online", "reason", "agents_online")
	assertHTTPStatus(t, r2, "/v1/sites/acme/status?group=night", "online", "agents_online")
	assertHTTPStatus(t, r2, "/v1/sites/acme/status", "offline", "outside_hours")

	code, body := adminCall(t, r2, "GET", "/v1/admin/sites/acme/groups/night/hours", admin, "")
	if code != http.StatusOK || body["timezone"] != "America/New_York" {
		t.Fatalf("got %d %v from GET group hours, want 200 with America/New_York", code, body)
	}
	if code, _ := adminCall(t, r1, "DELETE", "/v1/admin/sites/acme/hours", admin, ""); code != http.StatusNoContent {
		t.Fatalf("got %d from DELETE hours, want 204", code)
	}
	site.Expect("widget_status", "status", "online", "reason", "agents_online", "next_change", "")
	if code, _ := adminCall(t, r2, "GET", "/v1/admin/sites/acme/hours", admin, ""); code != http.StatusNotFound {
		t.Fatalf("got %d from GET deleted hours, want 404", code)
	}
	if code, _ := adminCall(t, r2, "DELETE", "/v1/admin/sites/acme/hours", admin, ""); code != http.StatusNotFound {
		t.Fatalf("got %d from DELETE of no hours, want 404", code)
	}
}

func TestAdminAPIErrors(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	good := `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"17:00"}]}}`
	tests := []struct {
		name, method, path, token, body string
		wantCode                        int
		wantError                       string // error code
		wantInMessage                   string
	}{
		{"no token", "PUT", "/v1/admin/sites/acme/hours", "", good, 401, "unauthorized", "bearer"},
		{"garbage token", "PUT", "/v1/admin/sites/acme/hours", "nope", good, 401, "unauthorized", "token"},
		{"agent role", "PUT", "/v1/admin/sites/acme/hours", mintToken(t, "acme", "alice"), good, 403, "forbidden", "admin"},
		{"other site", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "other"), good, 403, "forbidden", "another site"},
		{"other site settings", "GET", "/v1/admin/sites/acme/settings", mintAdminToken(t, "other"), "", 403, "forbidden", "another site"},
		{"bad zone", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"), `{"timezone":"Mars/Olympus"}`, 400, "bad_request", "timezone"},
		{"bad time", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","weekly":{"monday":[{"from":"25:00","to":"26:00"}]}}`, 400, "bad_request", "weekly.monday[0].from"},
		{"overlap", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"12:00"},{"from":"11:00","to":"13:00"}]}}`, 400, "bad_request", "overlaps"},
		{"from equals to", "PUT", "/v1/admin/sites/acme/groups/sales/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"09:00"}]}}`, 400, "bad_request", "weekly.monday[0]"},
		{"not JSON", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"), `{`, 400, "bad_request", "JSON"},
		{"bad group id", "PUT", "/v1/admin/sites/acme/groups/a*b/hours", mintAdminToken(t, "acme"), good, 400, "bad_request", "group"},
		{"bad origin", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":["https://ok.example","shop.example/path"]}`, 400, "bad_request", "allowed_origins[1]"},
		{"unknown settings field", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origin":["https://ok.example"]}`, 400, "bad_request", "allowed_origin"},
		// encoding/json alone would take a key in another case for the
		// field, and keep the last of two keys: the body would mean one
		// thing to whoever reads it and another to the hub.
		{"settings field in another case", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":["https://a.example"],"ALLOWED_ORIGINS":[]}`, 400, "bad_request", `field "ALLOWED_ORIGINS" must be spelled "allowed_origins"`},
		{"settings field in another case, last", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":[],"Allowed_Origins":["https://a.example"]}`, 400, "bad_request", `"Allowed_Origins"`},
		{"settings field twice", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":[],"allowed_origins":["https://a.example"]}`, 400, "bad_request", `duplicate key "allowed_origins"`},
		{"settings trailing data", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":[]} {"allowed_origins":["https://a.example"]}`, 400, "bad_request", "after the JSON value"},
		{"hours field in another case", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","Weekly":{"monday":[{"from":"09:00","to":"17:00"}]}}`, 400, "bad_request", `field "Weekly" must be spelled "weekly"`},
		{"interval field in another case", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","To":"17:00"}]}}`, 400, "bad_request", `field "To" in weekly.monday[0] must be spelled "to"`},
		{"exception field in another case", "PUT", "/v1/admin/sites/acme/groups/sales/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","exceptions":[{"date":"2026-12-24","CLOSED":true}]}`, 400, "bad_request", `field "CLOSED" in exceptions[0] must be spelled "closed"`},
		{"weekday twice", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","weekly":{"monday":[],"monday":[{"from":"09:00","to":"17:00"}]}}`, 400, "bad_request", `duplicate key "monday" in weekly`},
		{"body too large", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large", "bytes"},
		{"settings body too large", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":["` + strings.Repeat("x", 70<<10) + `"]}`, 413, "too_large", "65536 bytes"},
		// Type mismatches name the field in JSON's words, never Go's types.
		{"hours not an object", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"), `[]`, 400, "bad_request",
			"invalid schedule JSON: want an object, got an array"},
		{"interval of the wrong type", "PUT", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"),
			`{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"12:00"},{"from":13,"to":"17:00"}]}}`, 400, "bad_request",
			"weekly.monday[1].from: want a string, got a number"},
		{"origins not an array", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"allowed_origins":"https://shop.example"}`, 400, "bad_request", "allowed_origins: want an array of strings, got a string"},
		{"idle not an object", "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"),
			`{"idle":"15m"}`, 400, "bad_request", "idle: want an object, got a string"},
		{"status not a string", "PUT", "/v1/admin/sites/acme/agents/alice/status", mintAdminToken(t, "acme"),
			`{"status":1}`, 400, "bad_request", "status: want a string, got a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := adminCall(t, r, tt.method, tt.path, tt.token, tt.body)
			e, _ := body["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if code != tt.wantCode || e["code"] != tt.wantError || !strings.Contains(msg, tt.wantInMessage) {
				t.Fatalf("got %d %v, want %d %s with %q in the message", code, body, tt.wantCode, tt.wantError, tt.wantInMessage)
			}
			if strings.Contains(msg, "Go ") || strings.Contains(msg, "struct") {
				t.Fatalf("the message %q shows Go's types", msg)
			}
		})
	}
	// Nothing above stored anything.
	if code, _ := adminCall(t, r, "GET", "/v1/admin/sites/acme/hours", mintAdminToken(t, "acme"), ""); code != http.StatusNotFound {
		t.Fatalf("got %d from GET hours after refused writes, want 404", code)
	}
	if code, _ := adminCall(t, r, "GET", "/v1/admin/sites/acme/groups/sales/hours", mintAdminToken(t, "acme"), ""); code != http.StatusNotFound {
		t.Fatalf("got %d from GET group hours after refused writes, want 404", code)
	}
	code, body := adminCall(t, r, "GET", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"), "")
	if list, _ := body["allowed_origins"].([]any); code != http.StatusOK || len(list) != 0 {
		t.Fatalf("got %d %v from GET settings after refused writes, want 200 and no allowed_origins", code, body)
	}
}

func TestWidgetAllowedOrigins(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	admin := mintAdminToken(t, "acme")
	code, body := adminCall(t, r1, "PUT", "/v1/admin/sites/acme/settings", admin, `{"allowed_origins":["HTTPS://Shop.Example"]}`)
	if code != http.StatusOK {
		t.Fatalf("got %d %v, want 200", code, body)
	}
	origins, _ := body["allowed_origins"].([]any)
	if len(origins) != 1 || origins[0] != "https://shop.example" {
		t.Fatalf("got allowed_origins %v, want [https://shop.example]", origins)
	}
	// The other replica applies the change as soon as its watch delivers it.
	eventually(t, "settings reach the other replica", func() bool {
		code, body := adminCall(t, r2, "GET", "/v1/admin/sites/acme/settings", admin, "")
		list, _ := body["allowed_origins"].([]any)
		return code == http.StatusOK && len(list) == 1
	})

	dialWidget := func(origin string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		h := http.Header{}
		h.Set("Origin", origin)
		c, resp, err := websocket.Dial(ctx, r2.wsURL+"/v1/widget?site=acme", &websocket.DialOptions{HTTPHeader: h})
		if c != nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		return c, resp, err
	}
	if _, resp, err := dialWidget("https://evil.example"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("got err=%v resp=%v for a foreign origin, want 403", err, resp)
	}
	if _, _, err := dialWidget("https://shop.example"); err != nil {
		t.Fatalf("got %v for the allowed origin, want a socket", err)
	}
	// Other sites are not affected.
	watchWidget(t, r2, "other", "", "offline", "no_agents")

	req, _ := http.NewRequest("GET", r2.http.URL+"/v1/sites/acme/status", nil)
	req.Header.Set("Origin", "https://shop.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != 200 || got != "https://shop.example" {
		t.Fatalf("got %d with Access-Control-Allow-Origin %q, want 200 and the origin", resp.StatusCode, got)
	}
	req.Header.Set("Origin", "https://evil.example")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("got %d for a foreign origin, want 403", resp.StatusCode)
	}
}
