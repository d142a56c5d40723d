package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/natstest"
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
}

// startReplica runs a hub on ns and serves it over HTTP until the test ends.
func startReplica(t *testing.T, ns *natsserver.Server, opts replicaOptions) *replica {
	t.Helper()
	if opts.grace == 0 {
		opts.grace = time.Hour
	}
	nc := natstest.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("failed to create JetStream client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	kv, err := hub.OpenBucket(ctx, js, hub.BucketConfig{LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{JetStream: js, KV: kv, Grace: opts.grace, MarkerTTL: time.Second, Logger: testLogger(t), Now: opts.now, MaxDevices: opts.maxDevices})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	select {
	case <-h.Loaded():
	case err := <-done:
		t.Fatalf("hub stopped before loading: %v", err)
	case <-ctx.Done():
		t.Fatal("hub view did not load")
	}
	auth, err := transport.NewAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := opts.transport
	cfg.Logger = testLogger(t)
	srv := transport.NewServer(h, auth, cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.CloseSockets(ctx); err != nil {
			t.Errorf("sockets did not close: %v", err)
		}
		hs.Close()
		stop()
		if err := <-done; err != nil {
			t.Errorf("hub.Run: %v", err)
		}
	})
	return &replica{hub: h, srv: srv, http: hs, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
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

// frame is one decoded JSON frame a client received.
type frame struct {
	raw    []byte
	fields map[string]any
}

func (f frame) str(key string) string {
	s, _ := f.fields[key].(string)
	return s
}

func (f frame) String() string { return string(f.raw) }

// client is a real WebSocket client that collects what it receives.
type client struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan frame
	// closeErr holds the error that ended reading, once frames is closed.
	closeErr error
	// wait is how long next waits before failing; default waitTimeout.
	wait time.Duration
}

func dial(t *testing.T, url string, header http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("failed to dial %s: %v", url, err)
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: t, c: c, frames: make(chan frame, 1024), wait: waitTimeout}
	go cl.readLoop()
	t.Cleanup(func() { c.CloseNow() })
	return cl
}

func (c *client) readLoop() {
	defer close(c.frames)
	for {
		_, data, err := c.c.Read(context.Background())
		if err != nil {
			c.closeErr = err
			return
		}
		f := frame{raw: data}
		if err := json.Unmarshal(data, &f.fields); err != nil {
			f.fields = map[string]any{"type": "<invalid JSON>"}
		}
		c.frames <- f
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("failed to send %s: %v", b, err)
	}
}

// next returns the next frame, failing the test if none comes in time or
// the socket closes.
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("socket closed while waiting for a frame: %v", c.closeErr)
		}
		return f
	case <-time.After(c.wait):
		c.t.Fatal("no frame arrived in time")
	}
	panic("unreachable")
}

// expect returns the next frame and fails unless its type is typ and each
// key/value pair in want matches.
func (c *client) expect(typ string, want ...string) frame {
	c.t.Helper()
	f := c.next()
	if got := f.str("type"); got != typ {
		c.t.Fatalf("got frame %s, want type %q", f, typ)
	}
	for i := 0; i+1 < len(want); i += 2 {
		if got := f.str(want[i]); got != want[i+1] {
			c.t.Fatalf("got %s=%q in %s, want %q", want[i], got, f, want[i+1])
		}
	}
	return f
}

// expectClose waits for the server to close the socket and returns the
// close code, failing if a frame arrives first.
func (c *client) expectClose() websocket.StatusCode {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("got frame %s, want the socket closed", f)
		}
		var ce websocket.CloseError
		if !errors.As(c.closeErr, &ce) {
			c.t.Fatalf("socket ended without a close frame: %v", c.closeErr)
		}
		return ce.Code
	case <-time.After(waitTimeout):
		c.t.Fatal("socket did not close in time")
	}
	panic("unreachable")
}

// agent is a connected agent device.
type agent struct {
	*client
	welcome frame
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
	c.send(map[string]any{"type": "hello", "token": token, "device": dev})
	w := c.expect("welcome")
	return &agent{client: c, welcome: w, device: w.str("device")}
}

// watchWidget opens a widget socket and checks its first frame.
func watchWidget(t *testing.T, r *replica, site, group, wantStatus, wantReason string) *client {
	t.Helper()
	url := r.wsURL + "/v1/widget?site=" + site
	if group != "" {
		url += "&group=" + group
	}
	c := dial(t, url, nil)
	c.expect("widget_status", "site", site, "group", group, "status", wantStatus, "reason", wantReason)
	return c
}

// deviceIDs returns the ids in a devices or welcome frame's devices list.
func deviceIDs(f frame) []string {
	list, _ := f.fields["devices"].([]any)
	var ids []string
	for _, d := range list {
		m, _ := d.(map[string]any)
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

func assertHTTPStatus(t *testing.T, r *replica, path, wantStatus, wantReason string) {
	t.Helper()
	resp, err := http.Get(r.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Status, Reason string }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("failed to decode %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK || got.Status != wantStatus || got.Reason != wantReason {
		t.Fatalf("got %d %s/%s from %s, want 200 %s/%s", resp.StatusCode, got.Status, got.Reason, path, wantStatus, wantReason)
	}
}

func mintAdminToken(t *testing.T, site string) string {
	t.Helper()
	auth, err := transport.NewAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: site, Agent: "admin", Role: transport.RoleAdmin, TTL: time.Hour})
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
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("failed to decode %s %s response: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// eventually waits until cond holds, checking it every few milliseconds, and
// fails the test if it does not hold in time. For state that has no event to
// wait on (a replica's view catching up with the bucket).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}
