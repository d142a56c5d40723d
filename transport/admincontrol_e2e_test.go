package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

// TestAdminSetsAgentStatusOnEveryReplica: an admin sets an agent offline
// through one replica; the agent's devices on both replicas get the status
// frame saying an admin did it, the agents API and the event stream say
// which admin, and widgets follow.
func TestAdminSetsAgentStatusOnEveryReplica(t *testing.T) {
	ns := natstest.Start(t)
	er := openEvents(t, ns)
	r1 := startReplica(t, ns, replicaOptions{events: true})
	r2 := startReplica(t, ns, replicaOptions{events: true})
	tok := mintToken(t, "acme", "alice", "sales")
	desk := connectAgent(t, r1, tok, "", "desktop")
	phone := connectAgent(t, r2, tok, "", "mobile")
	widget := watchWidget(t, r1, "acme", "sales", "online", "agents_online")
	ops := mintAdminTokenAs(t, "acme", "ops")

	code, body := adminCall(t, r2, "PUT", "/v1/admin/sites/acme/agents/alice/status", ops, `{"status":"offline"}`)
	if code != http.StatusOK || body["status"] != "offline" || body["effective"] != "offline" {
		t.Fatalf("got %d %v, want 200 and alice offline", code, body)
	}
	if by, _ := body["changed_by"].(map[string]any); by["kind"] != "admin" || by["id"] != "ops" {
		t.Fatalf("got changed_by %v, want the admin ops", body["changed_by"])
	}
	for _, d := range []*agent{desk, phone} {
		f := d.WaitFor("status", "status", "offline")
		if f.Str("by") != "admin" || f.Str("by_agent") != "ops" || f.Fields["by_device"] != nil || f.Fields["ref"] != nil {
			t.Fatalf("got %s, want by admin, by_agent ops, no by_device, no ref", f)
		}
	}
	widget.WaitFor("widget_status", "status", "offline")
	// The replica the admin did not use shows the change too (its view
	// applied it before it told the desktop).
	code, one := adminCall(t, r1, "GET", "/v1/admin/sites/acme/agents/alice", ops, "")
	if by, _ := one["changed_by"].(map[string]any); code != http.StatusOK || one["status"] != "offline" || by["kind"] != "admin" || by["id"] != "ops" {
		t.Fatalf("got %d %v from the other replica, want alice offline, changed by the admin ops", code, one)
	}
	if devices, _ := one["devices"].([]any); len(devices) != 2 {
		t.Fatalf("got devices %v, want both still connected", one["devices"])
	}
	er.waitFor(t, events.TypeAgentStatus, map[string]any{
		"agent": "alice", "status": "offline", "previous": "online", "by": map[string]any{"kind": "admin", "id": "ops"},
	})
	er.waitFor(t, events.TypeAgentAvailability, map[string]any{
		"agent": "alice", "status": "offline", "previous": "online", "cause": events.CauseStatusSet,
	})

	// A device's own change still says so.
	desk.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "back"})
	f := phone.WaitFor("status", "status", "busy", "by", "device", "by_device", desk.device, "ref", "back")
	if f.Fields["by_agent"] != nil {
		t.Fatalf("got %s, want no by_agent for a device's change", f)
	}
	er.waitFor(t, events.TypeAgentStatus, map[string]any{
		"agent": "alice", "status": "busy", "previous": "offline", "by": map[string]any{"kind": "device", "id": desk.device},
	})
	code, one = adminCall(t, r2, "GET", "/v1/admin/sites/acme/agents/alice", ops, "")
	if by, _ := one["changed_by"].(map[string]any); code != http.StatusOK || by["kind"] != "device" || by["id"] != desk.device {
		t.Fatalf("got %d %v, want alice changed by the desktop", code, one)
	}
}

// TestAdminRevokesDeviceOnAnyReplica revokes devices whose sessions are on
// the replica the admin uses and on the other one: each socket closes with
// 4005 "revoked" at once, with no grace, the other devices hear it leave,
// the device may sign in again, and the agent goes offline at once when its
// last device is revoked.
func TestAdminRevokesDeviceOnAnyReplica(t *testing.T) {
	ns := natstest.Start(t)
	er := openEvents(t, ns)
	r1 := startReplica(t, ns, replicaOptions{events: true})
	r2 := startReplica(t, ns, replicaOptions{events: true})
	tok := mintToken(t, "acme", "alice")
	desk, deskID := connectRawAgent(t, r1, tok, "")
	phone := connectAgent(t, r2, tok, "", "mobile")
	// r2 applied the desktop's lease before the phone's own, which its
	// welcome waited for.
	if got := deviceIDs(phone.welcome); !slices.Contains(got, deskID) {
		t.Fatalf("got devices %v in the phone's welcome, want the desktop %s", got, deskID)
	}
	widget := watchWidget(t, r1, "acme", "", "online", "agents_online")
	ops := mintAdminTokenAs(t, "acme", "ops")

	// The desktop's session is on r1; the admin asks r2.
	code, body := adminCall(t, r2, "DELETE", "/v1/admin/sites/acme/agents/alice/devices/"+deskID, ops, "")
	if code != http.StatusNoContent {
		t.Fatalf("got %d %v revoking the desktop, want 204", code, body)
	}
	expectRawClose(t, desk, transport.CloseRevoked, "revoked")
	if got := deviceIDs(phone.WaitFor("devices")); !slices.Equal(got, []string{phone.device}) {
		t.Fatalf("got devices %v after the revocation, want only the phone", got)
	}
	er.waitFor(t, events.TypeDeviceEnded, map[string]any{"agent": "alice", "device": deskID, "cause": events.CauseRevoked})
	code, one := adminCall(t, r2, "GET", "/v1/admin/sites/acme/agents/alice", ops, "")
	if got := agentDeviceIDs(one); code != http.StatusOK || !slices.Equal(got, []string{phone.device}) {
		t.Fatalf("got %d %v, want only the phone, the desktop without grace", code, one)
	}

	// The device signs in again with a new hello, keeping its id.
	desk, again := connectRawAgent(t, r1, tok, deskID)
	if again != deskID {
		t.Fatalf("got device %s signing in again, want %s", again, deskID)
	}
	phone.WaitFor("devices") // the desktop is back
	// Revoked where its session is, then the phone, the last device,
	// from the other replica: the agent is offline at once.
	if code, body := adminCall(t, r1, "DELETE", "/v1/admin/sites/acme/agents/alice/devices/"+deskID, ops, ""); code != http.StatusNoContent {
		t.Fatalf("got %d %v revoking the desktop again, want 204", code, body)
	}
	expectRawClose(t, desk, transport.CloseRevoked, "revoked")
	if code, body := adminCall(t, r1, "DELETE", "/v1/admin/sites/acme/agents/alice/devices/"+phone.device, ops, ""); code != http.StatusNoContent {
		t.Fatalf("got %d %v revoking the phone, want 204", code, body)
	}
	phone.FramesUntilEnd()
	var ce websocket.CloseError
	if !errors.As(phone.CloseErr(), &ce) || ce.Code != websocket.StatusCode(transport.CloseRevoked) || ce.Reason != "revoked" {
		t.Fatalf("the phone's socket ended with %v, want close %d revoked", phone.CloseErr(), transport.CloseRevoked)
	}
	widget.WaitFor("widget_status", "status", "offline", "reason", "no_agents")
	er.waitFor(t, events.TypeDeviceEnded, map[string]any{"agent": "alice", "device": phone.device, "cause": events.CauseRevoked})
	er.waitFor(t, events.TypeAgentAvailability, map[string]any{
		"agent": "alice", "status": "offline", "previous": "online", "cause": events.CauseRevoked,
	})
	code, one = adminCall(t, r1, "GET", "/v1/admin/sites/acme/agents/alice", ops, "")
	if got := agentDeviceIDs(one); code != http.StatusOK || one["effective"] != "offline" || len(got) != 0 {
		t.Fatalf("got %d %v, want alice offline with no device", code, one)
	}
	// Nothing left to revoke.
	code, body = adminCall(t, r2, "DELETE", "/v1/admin/sites/acme/agents/alice/devices/"+phone.device, ops, "")
	if e, _ := body["error"].(map[string]any); code != http.StatusNotFound || e["code"] != "not_found" {
		t.Fatalf("got %d %v revoking a device with no lease, want 404 not_found", code, body)
	}

	// A device in its grace (dropped without bye; the grace here is an
	// hour) is revoked too: its agent is offline at once.
	bob := connectAgent(t, r2, mintToken(t, "acme", "bob"), "", "web")
	widget.WaitFor("widget_status", "status", "online")
	bob.Conn.CloseNow()
	eventually(t, "bob's device in grace on r1", func() bool {
		_, one := adminCall(t, r1, "GET", "/v1/admin/sites/acme/agents/bob", ops, "")
		devices, _ := one["devices"].([]any)
		if len(devices) != 1 {
			return false
		}
		d, _ := devices[0].(map[string]any)
		return d["state"] == "grace"
	})
	if code, body := adminCall(t, r1, "DELETE", "/v1/admin/sites/acme/agents/bob/devices/"+bob.device, ops, ""); code != http.StatusNoContent {
		t.Fatalf("got %d %v revoking bob's device in grace, want 204", code, body)
	}
	widget.WaitFor("widget_status", "status", "offline", "reason", "no_agents")
	er.waitFor(t, events.TypeDeviceEnded, map[string]any{"agent": "bob", "device": bob.device, "cause": events.CauseRevoked})
	er.waitFor(t, events.TypeAgentAvailability, map[string]any{
		"agent": "bob", "status": "offline", "previous": "online", "cause": events.CauseRevoked,
	})
}

// TestAdminControlRefused: agent tokens and other sites' admins may not
// use admin control, bad bodies and ids get a 400 naming what is wrong,
// unknown agents and devices a 404, and none of them changes anything.
func TestAdminControlRefused(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	tok := mintToken(t, "acme", "alice")
	alice := connectAgent(t, r, tok, "", "desktop")
	connectAgent(t, r, mintToken(t, "other", "carol"), "", "desktop")
	admin := mintAdminTokenAs(t, "acme", "ops")
	const status = "/v1/admin/sites/acme/agents/alice/status"
	device := "/v1/admin/sites/acme/agents/alice/devices/" + alice.device
	tests := []struct {
		name, method, path, token, body string
		wantCode                        int
		wantError                       string
		wantInMessage                   string
	}{
		{"agent token sets status", "PUT", status, tok, `{"status":"offline"}`, 403, "forbidden", "admin"},
		{"other site's admin sets status", "PUT", status, mintAdminTokenAs(t, "other", "ops"), `{"status":"offline"}`, 403, "forbidden", "another site"},
		{"agent token revokes", "DELETE", device, tok, "", 403, "forbidden", "admin"},
		{"other site's admin revokes", "DELETE", device, mintAdminTokenAs(t, "other", "ops"), "", 403, "forbidden", "another site"},
		{"no token", "PUT", status, "", `{"status":"offline"}`, 401, "unauthorized", "bearer"},
		{"unknown status", "PUT", status, admin, `{"status":"away"}`, 400, "bad_request", `status: invalid status "away"`},
		{"bad JSON", "PUT", status, admin, `{"status":"offline"`, 400, "bad_request", "invalid status JSON"},
		{"unknown key", "PUT", status, admin, `{"status":"offline","mood":"grumpy"}`, 400, "bad_request", `"mood"`},
		{"key in another case", "PUT", status, admin, `{"Status":"offline"}`, 400, "bad_request", `"Status"`},
		{"status not a string", "PUT", status, admin, `{"status":1}`, 400, "bad_request", "status"},
		{"no status", "PUT", status, admin, `{}`, 400, "bad_request", "status: required"},
		{"never seen agent", "PUT", "/v1/admin/sites/acme/agents/zed/status", admin, `{"status":"offline"}`, 404, "not_found", `"zed"`},
		{"another site's agent", "PUT", "/v1/admin/sites/acme/agents/carol/status", admin, `{"status":"offline"}`, 404, "not_found", `"carol"`},
		{"bad agent id", "PUT", "/v1/admin/sites/acme/agents/a*b/status", admin, `{"status":"offline"}`, 400, "bad_request", "agent id"},
		{"bad device id", "DELETE", "/v1/admin/sites/acme/agents/alice/devices/phone", admin, "", 400, "bad_request", "device id"},
		{"unknown device", "DELETE", "/v1/admin/sites/acme/agents/alice/devices/6f1c2a3b-0000-4000-8000-000000000000", admin, "", 404, "not_found", "6f1c2a3b"},
		{"device of another agent", "DELETE", "/v1/admin/sites/acme/agents/bob/devices/" + alice.device, admin, "", 404, "not_found", alice.device},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := adminCall(t, r, tt.method, tt.path, tt.token, tt.body)
			e, _ := body["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if code != tt.wantCode || e["code"] != tt.wantError || !strings.Contains(msg, tt.wantInMessage) {
				t.Fatalf("got %d %v, want %d %s with %q in the message", code, body, tt.wantCode, tt.wantError, tt.wantInMessage)
			}
		})
	}
	// Nothing changed: alice is online as she connected, with her device.
	code, one := adminCall(t, r, "GET", "/v1/admin/sites/acme/agents/alice", admin, "")
	if got := agentDeviceIDs(one); code != http.StatusOK || one["status"] != "online" || one["changed_by"] != nil || !slices.Equal(got, []string{alice.device}) {
		t.Fatalf("got %d %v after refused requests, want alice untouched", code, one)
	}
}

func mintAdminTokenAs(t *testing.T, site, admin string) string {
	t.Helper()
	auth, err := transport.NewAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: site, Agent: admin, Role: transport.RoleAdmin, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// agentDeviceIDs returns the device ids of an agent from the agents API.
func agentDeviceIDs(agent map[string]any) []string {
	var ids []string
	list, _ := agent["devices"].([]any)
	for _, d := range list {
		m, _ := d.(map[string]any)
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// connectRawAgent opens an agent socket with the raw client, which shows
// the server's close frame exactly, says hello as device id ("" for a new
// device) and reads up to the welcome; it returns the device id.
func connectRawAgent(t *testing.T, r *replica, token, id string) (*wstest.RawClient, string) {
	t.Helper()
	c, _, err := wstest.DialRaw(t, r.wsURL+"/v1/agent", wstest.RawOptions{Wait: waitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := json.Marshal(map[string]any{"type": "hello", "token": token, "device": map[string]string{"id": id, "kind": "desktop"}})
	if err := c.WriteText(hello); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.ReadFrame()
		if err != nil {
			t.Fatalf("no welcome: %v", err)
		}
		var m struct{ Type, Device string }
		if f.Op == wstest.OpText && json.Unmarshal(f.Payload, &m) == nil && m.Type == "welcome" {
			return c, m.Device
		}
		if f.Op == wstest.OpClose {
			t.Fatalf("got %s instead of a welcome", f)
		}
	}
}

// expectRawClose reads until the server's close frame and fails unless it
// carries code and reason.
func expectRawClose(t *testing.T, c *wstest.RawClient, code wsconn.StatusCode, reason string) {
	t.Helper()
	_, cf, err := c.ReadUntilClose(true)
	if err != nil {
		t.Fatalf("socket did not close cleanly: %v", err)
	}
	if cf.CloseCode() != int(code) || cf.CloseReason() != reason {
		t.Fatalf("got close %d %q, want %d %q", cf.CloseCode(), cf.CloseReason(), code, reason)
	}
}

// eventReader reads the event stream from its start, as a consumer outside
// the hubs does.
type eventReader struct{ cons jetstream.Consumer }

func openEvents(t *testing.T, ns *natsserver.Server) *eventReader {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := events.OpenStream(ctx, js, events.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectPrefix + ">"}})
	if err != nil {
		t.Fatal(err)
	}
	return &eventReader{cons: cons}
}

// waitFor reads events until one of type typ whose data holds every key of
// want with the same JSON value, and fails the test if none comes in time.
func (er *eventReader) waitFor(t *testing.T, typ string, want map[string]any) events.Event {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var seen []string
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			t.Fatalf("got events %v, want a %s with %v", seen, typ, want)
		}
		msg, err := er.cons.Next(jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatalf("got events %v and then %v, want a %s with %v", seen, err, typ, want)
		}
		seen = append(seen, string(msg.Data()))
		var ev events.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatalf("got undecodable event %s: %v", msg.Data(), err)
		}
		var data map[string]json.RawMessage
		if ev.Type != typ || json.Unmarshal(ev.Data, &data) != nil {
			continue
		}
		match := true
		for k, v := range want {
			b, _ := json.Marshal(v)
			match = match && data[k] != nil && jsonEqual(data[k], b)
		}
		if match {
			return ev
		}
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
