package transport_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/transport/webhook"
)

// lockedBuffer collects the logs of replicas at every level.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hookEvent is an event a receiver got, with its request.
type hookEvent struct {
	header http.Header
	body   []byte
	events.Event
	data map[string]any
}

// hookReceiver collects the events POSTed to it.
func hookReceiver(t *testing.T) (*httptest.Server, chan hookEvent) {
	t.Helper()
	got := make(chan hookEvent, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev := hookEvent{header: r.Header.Clone(), body: body}
		if err := json.Unmarshal(body, &ev.Event); err != nil {
			t.Errorf("the webhook body is not an event: %s", body)
		}
		json.Unmarshal(ev.Event.Data, &ev.data)
		got <- ev
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// TestWebhooksFollowStatusChanges registers a webhook over the admin API
// and changes an agent's status on a real socket: the receiver gets the
// change's agent.status, agent.availability and widget.status events, each
// once, signed with the secret the registration answered. No log line and
// no GET answer holds the secret.
func TestWebhooksFollowStatusChanges(t *testing.T) {
	ns := natstest.Start(t)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:    testSecret,
		Hub:       hub.Config{Grace: time.Hour, Logger: log},
		Transport: transport.Config{Logger: log},
		Webhooks:  &webhook.Config{AllowPrivate: true, Logger: log},
		Wait:      waitTimeout,
	})
	rep := &replica{hub: r.Hub, srv: r.Server, http: r.HTTP, wsURL: r.WSURL}
	admin := mintAdminToken(t, "acme")
	recv, got := hookReceiver(t)

	code, body := adminCall(t, rep, "POST", "/v1/admin/sites/acme/webhooks", admin, `{"url":"`+recv.URL+`/in","events":["agent.*","widget.*"]}`)
	if code != http.StatusCreated {
		t.Fatalf("got %d %v, want 201", code, body)
	}
	secret, _ := body["secret"].(string)
	id, _ := body["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || id == "" {
		t.Fatalf("got %v, want an id and a whsec_ secret", body)
	}
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}

	desk := connectAgent(t, rep, mintToken(t, "acme", "alice"), "", "desktop")
	// A new agent starts online; busy is a change.
	desk.Send(map[string]string{"type": "set_status", "status": "busy"})
	desk.WaitFor("status", "status", "busy")

	seen := map[string]int{}
	byType := map[string]hookEvent{}
	// Deliveries run concurrently, so the three may come in any order.
	done := func() bool {
		for _, typ := range []string{events.TypeAgentStatus, events.TypeAgentAvailability, events.TypeWidgetStatus} {
			if byType[typ].data["status"] != "busy" {
				return false
			}
		}
		return true
	}
	for !done() {
		var ev hookEvent
		select {
		case ev = <-got:
		case <-time.After(waitTimeout):
			t.Fatalf("not every event of the change came in time; got %v", seen)
		}
		if err := verifier.Verify(ev.body, ev.header); err != nil {
			t.Fatalf("event %s: signature refused: %v", ev.ID, err)
		}
		if ev.header.Get("webhook-id") != ev.ID || ev.Site != "acme" {
			t.Fatalf("got webhook-id %q for event %s of site %s", ev.header.Get("webhook-id"), ev.ID, ev.Site)
		}
		if strings.HasPrefix(ev.Type, "device.") {
			t.Fatalf("got %s, which the endpoint did not ask for", ev.Type)
		}
		seen[ev.ID]++
		if ev.data["status"] == "busy" { // the connect's events may come after these
			byType[ev.Type] = ev
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s arrived %d times", id, n)
		}
	}
	if d := byType[events.TypeAgentStatus].data; d["agent"] != "alice" || d["status"] != "busy" {
		t.Fatalf("got agent.status %v, want alice busy", d)
	}
	if d := byType[events.TypeAgentAvailability].data; d["agent"] != "alice" || d["status"] != "busy" || d["cause"] != "status_set" {
		t.Fatalf("got agent.availability %v, want alice busy by status_set", d)
	}

	for _, path := range []string{"/v1/admin/sites/acme/webhooks", "/v1/admin/sites/acme/webhooks/" + id} {
		code, body := adminCall(t, rep, "GET", path, admin, "")
		raw, _ := json.Marshal(body)
		if code != http.StatusOK || bytes.Contains(raw, []byte("whsec_")) || bytes.Contains(raw, []byte(secret[len("whsec_"):])) {
			t.Fatalf("GET %s: got %d %s, want 200 without the secret", path, code, raw)
		}
	}
	code, body = adminCall(t, rep, "GET", "/v1/admin/sites/acme/webhooks/"+id+"/deliveries", admin, "")
	ds, _ := body["deliveries"].([]any)
	if code != http.StatusOK || len(ds) == 0 {
		t.Fatalf("got %d %v, want the attempts", code, body)
	}
	// Every time has milliseconds, as everywhere in the API
	// (2026-12-07T09:45:16.444Z, not .444022588Z).
	_, ep := adminCall(t, rep, "GET", "/v1/admin/sites/acme/webhooks/"+id, admin, "")
	times := []any{ep["created_at"]}
	for _, d := range ds {
		times = append(times, d.(map[string]any)["at"])
	}
	for _, at := range times {
		s, _ := at.(string)
		if parsed, err := time.Parse(protocol.TimeFormat, s); err != nil || parsed.UTC().Format(protocol.TimeFormat) != s {
			t.Fatalf("got the time %v in the webhooks API, want %s (milliseconds, UTC)", at, protocol.TimeFormat)
		}
	}
	code, _ = adminCall(t, rep, "DELETE", "/v1/admin/sites/acme/webhooks/"+id, admin, "")
	if code != http.StatusNoContent {
		t.Fatalf("DELETE: got %d, want 204", code)
	}
	if code, _ := adminCall(t, rep, "GET", "/v1/admin/sites/acme/webhooks/"+id, admin, ""); code != http.StatusNotFound {
		t.Fatalf("GET after DELETE: got %d, want 404", code)
	}
	r.Stop()
	if l := logs.String(); strings.Contains(l, secret[len("whsec_"):]) || !strings.Contains(l, "webhook registered") {
		t.Fatalf("the logs hold the secret, or lack the registration:\n%s", l)
	}
}

// TestWebhooksAPIRefusesBadInput: bad bodies and ids get 4xx naming the
// field, private URLs are refused without --webhook-allow-private, and
// only the site's admin may use the API.
func TestWebhooksAPIRefusesBadInput(t *testing.T) {
	ns := natstest.Start(t)
	r := wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:   testSecret,
		Webhooks: &webhook.Config{MaxPerSite: 1},
		Wait:     waitTimeout,
	})
	rep := &replica{hub: r.Hub, srv: r.Server, http: r.HTTP, wsURL: r.WSURL}
	admin := mintAdminToken(t, "acme")
	const path = "/v1/admin/sites/acme/webhooks"
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"url":"http://hooks.example/x"}`, "url: must be https"},
		{`{"url":"ftp://hooks.example/x"}`, "url: must be an https URL"},
		{`{"url":"https://user:pw@hooks.example/x"}`, "url: must not carry user information"},
		{`{"url":""}`, "url: missing"},
		{`{}`, "url: missing"},
		{`{"url":"https://127.0.0.1/x"}`, "url: 127.0.0.1 is a loopback address"},
		{`{"url":"https://10.0.0.7/x"}`, "url: 10.0.0.7 is a private address"},
		{`{"url":"https://169.254.169.254/latest"}`, "url: 169.254.169.254 is a link-local address"},
		{`{"url":"https://[::1]:8443/x"}`, "url: ::1 is a loopback address"},
		{`{"url":"https://localhost/x"}`, "url: localhost resolves to"},
		{`{"url":"https://93.184.215.14/x","events":["agent.status","agent.bogus"]}`, "events[1]"},
		{`{"url":"https://93.184.215.14/x","events":"agent.*"}`, "invalid webhook JSON: events: want an array of strings, got a string"},
		{`{"url":"https://93.184.215.14/x","events":["agent.status",7]}`, "events[1]: want a string, got a number"},
		{`{"url":5}`, "url: want a string, got a number"},
		{`{"url":"https://93.184.215.14/x","URL":"https://10.0.0.1/"}`, "URL"},
		{`{"url":"https://93.184.215.14/x","secret":"whsec_mine"}`, "secret"},
		{`not json`, "invalid webhook JSON"},
	} {
		code, body := adminCall(t, rep, "POST", path, admin, tc.body)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("POST %s: got %d %q, want 400 naming %q", tc.body, code, msg, tc.want)
		}
		if strings.Contains(msg, "Go ") {
			t.Errorf("POST %s: %q shows Go's types", tc.body, msg)
		}
	}
	if code, _ := adminCall(t, rep, "POST", path, mintToken(t, "acme", "alice"), `{"url":"https://93.184.215.14/x"}`); code != http.StatusForbidden {
		t.Errorf("an agent's token: got %d, want 403", code)
	}
	if code, _ := adminCall(t, rep, "POST", path, mintAdminToken(t, "other"), `{"url":"https://93.184.215.14/x"}`); code != http.StatusForbidden {
		t.Errorf("another site's admin: got %d, want 403", code)
	}
	for _, p := range []string{path + "/nope", path + "/0b9e2f4c-2d7f-4d65-9d5c-3c1f7e1a2b3c", path + "/0b9e2f4c-2d7f-4d65-9d5c-3c1f7e1a2b3c/deliveries"} {
		if code, _ := adminCall(t, rep, "GET", p, admin, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", p, code)
		}
	}
	// A public address needs no name resolution, so the limit can be
	// reached without network.
	if code, body := adminCall(t, rep, "POST", path, admin, `{"url":"https://93.184.215.14/x"}`); code != http.StatusCreated {
		t.Fatalf("got %d %v, want 201", code, body)
	}
	if code, body := adminCall(t, rep, "POST", path, admin, `{"url":"https://93.184.215.14/y"}`); code != http.StatusConflict {
		t.Fatalf("over --webhook-max-per-site: got %d %v, want 409", code, body)
	}
}

// TestWebhooksOffWithoutEventStream: a hub without events answers the
// webhooks API with 404 saying why.
func TestWebhooksOffWithoutEventStream(t *testing.T) {
	ns := natstest.Start(t)
	rep := startReplica(t, ns, replicaOptions{})
	code, body := adminCall(t, rep, "GET", "/v1/admin/sites/acme/webhooks", mintAdminToken(t, "acme"), "")
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if code != http.StatusNotFound || !strings.Contains(msg, "--events-stream") {
		t.Fatalf("got %d %q, want 404 naming --events-stream", code, msg)
	}
}
