package transport_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

// waitTimeout bounds every wait for an event in these tests; it is a
// deadline for failing, never a measurement.
const waitTimeout = 15 * time.Second

var testSecret = []byte("test-secret-for-presencehub-tests")

// replica is one hub instance with its own NATS connection and HTTP server.
type replica struct {
	hub  *hub.Hub
	srv  *transport.Server
	http *httptest.Server
	// wsURL is the ws:// base URL of the server.
	wsURL string
}

type replicaOptions struct {
	grace     time.Duration
	transport transport.Config
	// now is the hub's clock; default time.Now.
	now func() time.Time
	// maxDevices is the hub's limit of live devices per agent.
	maxDevices int
	// events publishes the hub's events (the stream must be open: see
	// openEvents).
	events bool
}

// startReplica runs a hub on ns and serves it over HTTP until the test ends.
func startReplica(t *testing.T, ns *natsserver.Server, opts replicaOptions) *replica {
	t.Helper()
	if opts.grace == 0 {
		opts.grace = time.Hour
	}
	r := wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:    testSecret,
		Bucket:    store.BucketConfig{LimitMarkerTTL: time.Second},
		Hub:       hub.Config{Grace: opts.grace, MarkerTTL: time.Second, Now: opts.now, MaxDevices: opts.maxDevices, Events: opts.events},
		Transport: opts.transport,
		Wait:      waitTimeout,
	})
	return &replica{hub: r.Hub, srv: r.Server, http: r.HTTP, wsURL: r.WSURL}
}

func mintToken(t *testing.T, site, agent string, groups ...string) string {
	t.Helper()
	return mintTokenTTL(t, site, agent, time.Hour, groups...)
}

func mintTokenTTL(t *testing.T, site, agent string, ttl time.Duration, groups ...string) string {
	t.Helper()
	auth, err := transport.NewAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: site, Agent: agent, Groups: groups, Role: transport.RoleAgent, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dial opens a WebSocket client to url that collects what it receives.
func dial(t *testing.T, url string, header http.Header) *wstest.Client {
	t.Helper()
	return wstest.Dial(t, url, wstest.Options{Header: header, Wait: waitTimeout})
}

// agent is a connected agent device.
type agent struct {
	*wstest.Client
	welcome wstest.Frame
	device  string
}

// connectAgent opens an agent socket, says hello and waits for welcome.
func connectAgent(t *testing.T, r *replica, token, deviceID, kind string) *agent {
	t.Helper()
	c := dial(t, r.wsURL+"/v1/agent", nil)
	dev := map[string]string{"kind": kind}
	if deviceID != "" {
		dev["id"] = deviceID
	}
	c.Send(map[string]any{"type": "hello", "token": token, "device": dev})
	w := c.Expect("welcome")
	return &agent{Client: c, welcome: w, device: w.Str("device")}
}

// watchWidget opens a widget socket and checks its first frame.
func watchWidget(t *testing.T, r *replica, site, group, wantStatus, wantReason string) *wstest.Client {
	t.Helper()
	c := dial(t, widgetURL(r, site, group), nil)
	c.Expect("widget_status", "site", site, "group", group, "status", wantStatus, "reason", wantReason)
	return c
}

func widgetURL(r *replica, site, group string) string {
	url := r.wsURL + "/v1/widget?site=" + site
	if group != "" {
		url += "&group=" + group
	}
	return url
}

// deviceIDs returns the ids in a devices or welcome frame's devices list.
func deviceIDs(f wstest.Frame) []string { return f.IDs("devices") }

func assertHTTPStatus(t *testing.T, r *replica, path, wantStatus, wantReason string) {
	t.Helper()
	resp, err := http.Get(r.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	checkOpenAPI(t, resp)
	defer resp.Body.Close()
	var got struct{ Status, Reason string }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("failed to decode %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || got.Status != wantStatus || got.Reason != wantReason {
		t.Fatalf("got %d %s/%s from %s, want 200 %s/%s", resp.StatusCode, got.Status, got.Reason, path, wantStatus, wantReason)
	}
}

// expectHTTPError fails unless resp has HTTP status wantStatus and a JSON
// error body with code wantCode; what names the request in failures. It
// returns the body's message.
func expectHTTPError(t *testing.T, resp *http.Response, what string, wantStatus int, wantCode string) string {
	t.Helper()
	return expectHTTPErrorChecked(t, resp, what, wantStatus, wantCode, true)
}

func expectHTTPErrorChecked(t *testing.T, resp *http.Response, what string, wantStatus int, wantCode string, openAPI bool) string {
	t.Helper()
	if openAPI {
		checkOpenAPI(t, resp)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("got HTTP %d from %s, want %d", resp.StatusCode, what, wantStatus)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Fatalf("got Content-Type %q from %s, want application/json", got, what)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("failed to decode the error body from %s: %v", what, err)
	}
	if body.Error.Code != wantCode {
		t.Fatalf("got error code %q from %s, want %q", body.Error.Code, what, wantCode)
	}
	return body.Error.Message
}

func mintAdminToken(t *testing.T, site string) string {
	t.Helper()
	return mintAdminTokenTTL(t, site, time.Hour)
}

func mintAdminTokenTTL(t *testing.T, site string, ttl time.Duration) string {
	t.Helper()
	auth, err := transport.NewAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: site, Agent: "admin", Role: transport.RoleAdmin, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// adminCall makes an admin API request and returns the status code and the
// decoded JSON body (nil for an empty one).
func adminCall(t *testing.T, r *replica, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, r.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	checkOpenAPI(t, resp)
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("failed to decode %s %s response: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// eventually waits until cond holds and fails the test if it does not hold
// in time. For state that has no event to wait on (a replica's view catching
// up with the bucket).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wstest.Eventually(t, waitTimeout, what, cond)
}
