package transport_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
)

// TestSettingsRefuseBadRules: the idle rule, sign-off at close, the
// background mode and the uncovered alert are stored and read back; bad values get 400 naming the
// field.
func TestSettingsRefuseBadRules(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	admin := mintAdminToken(t, "acme")
	const path = "/v1/admin/sites/acme/settings"
	for _, tc := range []struct{ body, want string }{
		{`{"idle":{"after":"0s","status":"busy"}}`, "idle.after: 0s is out of range: 1s to 24h0m0s"},
		{`{"idle":{"after":"25h","status":"busy"}}`, "idle.after: 25h0m0s is out of range"},
		{`{"idle":{"after":"soon","status":"busy"}}`, `idle.after: "soon" is not a duration`},
		{`{"idle":{"status":"busy"}}`, "idle.after: missing"},
		{`{"idle":{"after":"15m","status":"away"}}`, `idle.status: "away": want busy or offline`},
		{`{"idle":{"after":"15m","status":"online"}}`, `idle.status: "online"`},
		{`{"idle":{"after":"15m"}}`, `idle.status: "": want busy or offline`},
		{`{"background":{"max":"30s"}}`, "background.max: 30s is out of range: 1m0s to 168h0m0s"},
		{`{"background":{"max":"8d"}}`, `background.max: "8d" is not a duration`},
		{`{"background":{"max":"169h"}}`, "background.max: 169h0m0s is out of range: 1m0s to 168h0m0s"},
		{`{"background":{}}`, "background.max: missing"},
		{`{"sign_off_at_close":"yes"}`, "sign_off_at_close"},
		{`{"uncovered_alert":"0s"}`, "uncovered_alert: 0s is out of range: 1s to 24h0m0s"},
		{`{"uncovered_alert":"500ms"}`, "uncovered_alert: 500ms is out of range"},
		{`{"uncovered_alert":"25h"}`, "uncovered_alert: 25h0m0s is out of range"},
		{`{"uncovered_alert":"soon"}`, `uncovered_alert: "soon" is not a duration`},
		{`{"uncovered_alert":300}`, "uncovered_alert"},
		{`{"idle":{"after":"15m","status":"busy","STATUS":"offline"}}`, "STATUS"},
	} {
		code, body := adminCall(t, r, "PUT", path, admin, tc.body)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("PUT %s: got %d %q, want 400 with %q", tc.body, code, msg, tc.want)
		}
	}
	good := `{"allowed_origins":[],"idle":{"after":"15m","status":"busy"},"sign_off_at_close":true,"background":{"max":"12h"},"uncovered_alert":"5m"}`
	if code, body := adminCall(t, r, "PUT", path, admin, good); code != http.StatusOK {
		t.Fatalf("got %d %v, want 200", code, body)
	}
	code, body := adminCall(t, r, "GET", path, admin, "")
	idle, _ := body["idle"].(map[string]any)
	bg, _ := body["background"].(map[string]any)
	if code != http.StatusOK || idle["after"] != "15m" || idle["status"] != "busy" || body["sign_off_at_close"] != true || bg["max"] != "12h" ||
		body["uncovered_alert"] != "5m" {
		t.Fatalf("got %d %v, want the settings back", code, body)
	}
}

// TestActivityAtAnyRate: a device may say activity as often as it likes,
// and gets no error.
func TestActivityAtAnyRate(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	if code, body := adminCall(t, r, "PUT", "/v1/admin/sites/acme/settings", mintAdminToken(t, "acme"), `{"idle":{"after":"1h","status":"busy"}}`); code != http.StatusOK {
		t.Fatalf("got %d %v", code, body)
	}
	desk := connectAgent(t, r, mintToken(t, "acme", "alice"), "", "desktop")
	for range 200 {
		desk.Send(map[string]string{"type": "activity"})
	}
	desk.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "after-activity"})
	// Frames come in order: an error for any activity would come first.
	for {
		f := desk.Next()
		if f.Str("type") == "error" {
			t.Fatalf("got %s for activity", f)
		}
		if f.Str("type") == "status" && f.Str("ref") == "after-activity" {
			break
		}
	}
	// How often the key is written is counted in the hub's tests
	// (TestActivityWritesAtMostOncePerQuarter).
}

// TestBackgroundMode: a mobile device in background mode keeps its agent
// online after its socket drops, past the grace, with a lease that lasts the
// site's background max; a desktop, or a site with the mode off, is refused
// with bad_request saying why.
func TestBackgroundMode(t *testing.T) {
	ns := natstest.Start(t)
	const grace = time.Second
	r := startReplica(t, ns, replicaOptions{grace: grace})
	admin := mintAdminToken(t, "acme")
	if code, body := adminCall(t, r, "PUT", "/v1/admin/sites/acme/settings", admin, `{"background":{"max":"10m"}}`); code != http.StatusOK {
		t.Fatalf("got %d %v", code, body)
	}
	widget := watchWidget(t, r, "acme", "", "offline", "no_agents")
	phone := connectAgent(t, r, mintToken(t, "acme", "alice"), "", "mobile")
	widget.WaitFor("widget_status", "status", "online")
	bob := connectAgent(t, r, mintToken(t, "acme", "bob"), "", "desktop")
	bob.Send(map[string]string{"type": "background", "ref": "b1"})
	if f := bob.WaitFor("error", "code", "bad_request", "ref", "b1"); !strings.Contains(f.Str("message"), "only mobile devices") {
		t.Fatalf("got %s, want the desktop refused", f)
	}
	carol := connectAgent(t, r, mintToken(t, "acme", "carol"), "", "desktop")
	roster := carol.Client
	carol.Send(map[string]string{"type": "subscribe_roster"})
	roster.WaitFor("roster")

	phone.Send(map[string]string{"type": "background"})
	f := phone.WaitFor("devices")
	if devs, _ := f.Fields["devices"].([]any); len(devs) != 1 || devs[0].(map[string]any)["state"] != "background" {
		t.Fatalf("got %s, want the phone in state background", f)
	}
	code, one := adminCall(t, r, "GET", "/v1/admin/sites/acme/agents/alice", admin, "")
	if devs, _ := one["devices"].([]any); code != http.StatusOK || len(devs) != 1 || devs[0].(map[string]any)["state"] != "background" {
		t.Fatalf("got %d %v, want the phone in background in the agents API", code, one)
	}
	// The app is suspended: its socket drops without bye. So does bob's
	// desktop, whose agent goes offline after the grace; alice does not.
	phone.Conn.CloseNow()
	bob.Conn.CloseNow()
	roster.WaitFor("agent", "id", "bob", "status", "offline")
	code, one = adminCall(t, r, "GET", "/v1/admin/sites/acme/agents/alice", admin, "")
	if code != http.StatusOK || one["effective"] != "online" {
		t.Fatalf("got %d %v after the grace, want alice still online", code, one)
	}
	// The widget saw alice online throughout: a frame now would be a
	// change.
	select {
	case f := <-widget.Frames():
		t.Fatalf("the widget got %s while alice's phone was in the background", f)
	default:
	}
	// The lease lasts the background max from the drop, kept by NATS.
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, "KV_"+store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "$KV."+store.DefaultBucket+".d.acme.alice."+phone.device)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := msg.Header.Get("Nats-TTL"); ttl != "10m0s" && ttl != "600" && ttl != "600s" {
		t.Fatalf("got the phone's lease TTL %q, want the background max, 10m", ttl)
	}

	// With the mode off, background is refused and the device drops with
	// the grace as usual.
	other := connectAgent(t, r, mintToken(t, "other", "dave"), "", "mobile")
	other.Send(map[string]string{"type": "background", "ref": "b2"})
	if f := other.WaitFor("error", "code", "bad_request", "ref", "b2"); !strings.Contains(f.Str("message"), "background mode is off") {
		t.Fatalf("got %s, want background refused for a site with the mode off", f)
	}
}
