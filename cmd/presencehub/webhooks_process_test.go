//go:build unix

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport/webhook"
)

// webhookAPI sends an admin request for site acme to hub p and returns the
// status and the decoded answer.
func webhookAPI(t *testing.T, p *hubProc, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.Addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+opsAdminToken(t))
	resp, err := opsHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s on hub %s: %v", method, path, p.Name, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// hookCall is one request a receiver got.
type hookCall struct {
	id   string // webhook-id
	data map[string]any
	// answer, when the receiver was built to hold calls, is where the
	// test sends the status to answer with.
	answer chan int
}

// startHookReceiver runs a real HTTP endpoint that reports every request on
// the returned channel; with hold, each handler waits for the test to send
// the status on the call's answer channel, or for the client to go away.
func startHookReceiver(t *testing.T, hold bool) (string, chan hookCall) {
	t.Helper()
	calls := make(chan hookCall, 100)
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		var ev struct {
			Data map[string]any `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &ev)
		c := hookCall{id: r.Header.Get("webhook-id"), data: ev.Data}
		if !hold {
			calls <- c
			w.WriteHeader(http.StatusNoContent)
			return
		}
		c.answer = make(chan int, 1)
		calls <- c
		select {
		case status := <-c.answer:
			w.WriteHeader(status)
		case <-r.Context().Done(): // the hub holding the request died
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	})
	return srv.URL, calls
}

func nextCall(t *testing.T, calls chan hookCall, what string) hookCall {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(procWait):
		t.Fatalf("%s: no webhook call in time", what)
		return hookCall{}
	}
}

// deliveriesOf reads the deliveries log of webhook id through hub p.
func deliveriesOf(t *testing.T, p *hubProc, id string) []map[string]any {
	t.Helper()
	code, body := webhookAPI(t, p, "GET", "/v1/admin/sites/acme/webhooks/"+id+"/deliveries", "")
	if code != http.StatusOK {
		t.Fatalf("deliveries: got %d %v", code, body)
	}
	var out []map[string]any
	for _, d := range body["deliveries"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

func registerWebhook(t *testing.T, p *hubProc, url, events string) string {
	t.Helper()
	code, body := webhookAPI(t, p, "POST", "/v1/admin/sites/acme/webhooks", `{"url":"`+url+`","events":[`+events+`]}`)
	if code != http.StatusCreated {
		t.Fatalf("register webhook: got %d %v", code, body)
	}
	return body["id"].(string)
}

// TestKilledHubWebhookOnceFromSurvivor kills with SIGKILL the hub holding
// an agent's only device: the agent's going offline (grace_expired) reaches
// the webhook once, delivered by the surviving hub.
func TestKilledHubWebhookOnceFromSurvivor(t *testing.T) {
	const grace = 2 * time.Second
	ns := natstest.Start(t)
	args := func(id string) []string {
		return append(natsHubArgs(t, ns.ClientURL(), grace), "--webhook-allow-private", "--replica-id", id)
	}
	a := startHub(t, "A", args("A")...)
	b := startHub(t, "B", args("B")...)
	url, calls := startHookReceiver(t, false)
	id := registerWebhook(t, a, url, `"agent.availability"`)

	alice := connectAgent(t, a, "alice@A", mintProcToken(t, procSecret, "acme", "alice"))
	if c := nextCall(t, calls, "alice online"); c.data["agent"] != "alice" || c.data["status"] != "online" {
		t.Fatalf("got %v, want alice online", c.data)
	}
	waitLeaseRefreshes(t, natstest.Connect(t, ns), []string{"d.acme.alice." + alice.device})
	a.kill()

	offline := nextCall(t, calls, "alice offline")
	if offline.data["agent"] != "alice" || offline.data["status"] != "offline" || offline.data["cause"] != "grace_expired" {
		t.Fatalf("got %v, want alice offline by grace_expired", offline.data)
	}
	// A later event, delivered after the offline one was acknowledged; a
	// second delivery of the offline event would be a redelivery, which
	// the deliveries log would show.
	connectAgent(t, b, "bob@B", mintProcToken(t, procSecret, "acme", "bob"))
	for {
		c := nextCall(t, calls, "bob online")
		if c.id == offline.id {
			t.Fatalf("alice's offline event %s was delivered twice", c.id)
		}
		if c.data["agent"] == "bob" {
			break
		}
	}
	var attempts []map[string]any
	for _, d := range deliveriesOf(t, b, id) {
		if d["event_id"] == offline.id {
			attempts = append(attempts, d)
		}
	}
	if len(attempts) != 1 || attempts[0]["outcome"] != "delivered" || attempts[0]["replica"] != "B" || attempts[0]["attempt"] != 1.0 {
		t.Fatalf("got attempts %v for %s, want one, delivered by B", attempts, offline.id)
	}
}

// TestKilledHubMidDeliveryCompletesElsewhere kills with SIGKILL the hub
// while its request to a webhook endpoint is pending: the event stays
// unacknowledged in NATS and another hub delivers it, with the same
// webhook-id.
func TestKilledHubMidDeliveryCompletesElsewhere(t *testing.T) {
	ns := natstest.Start(t)
	// The ack wait is 2*timeout+5s: how long NATS waits for a dead hub.
	args := func(id string) []string {
		return append(natsHubArgs(t, ns.ClientURL(), time.Hour), "--webhook-allow-private", "--webhook-timeout", "2s", "--replica-id", id)
	}
	a := startHub(t, "A", args("A")...)
	url, calls := startHookReceiver(t, true)
	id := registerWebhook(t, a, url, `"agent.status"`)

	alice := connectAgent(t, a, "alice@A", mintProcToken(t, procSecret, "acme", "alice"))
	alice.Send(map[string]string{"type": "set_status", "status": "busy"})
	first := nextCall(t, calls, "the first attempt")
	if first.data["status"] != "busy" {
		t.Fatalf("got %v, want alice busy", first.data)
	}
	a.kill() // with the request unanswered
	b := startHub(t, "B", args("B")...)
	second := nextCall(t, calls, "the attempt from B")
	second.answer <- http.StatusOK
	if second.id != first.id {
		t.Fatalf("got webhook-id %s from B, want %s again", second.id, first.id)
	}
	// The attempt is recorded just after it is answered: wait for it in
	// the deliveries stream, then read it through the API.
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	log, err := js.OrderedConsumer(ctx, webhook.DefaultDeliveryStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{webhook.DeliveriesSubjectPrefix + "acme." + id},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Next(jetstream.FetchContext(ctx)); err != nil {
		t.Fatalf("B's attempt was not recorded in time: %v", err)
	}
	ds := deliveriesOf(t, b, id)
	if len(ds) != 1 || ds[0]["event_id"] != first.id || ds[0]["outcome"] != "delivered" || ds[0]["replica"] != "B" || ds[0]["attempt"] != 2.0 {
		t.Fatalf("got deliveries %v, want attempt 2 delivered by B (A died before recording attempt 1)", ds)
	}
}
