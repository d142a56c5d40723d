//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

// TestKilledHubAgentsGoOffline kills a hub process with SIGKILL: the agents
// whose only devices were on it go offline for the other hub once their
// leases run out, while an agent with a device on the surviving hub stays.
func TestKilledHubAgentsGoOffline(t *testing.T) {
	const grace = 2 * time.Second
	// offlineDeadline is grace + refresh interval (grace/4) + a generous
	// margin for CI: a deadline for failing, never a timing assertion.
	const offlineDeadline = 20 * time.Second

	ns := natstest.Start(t)
	a := startHub(t, "A", natsHubArgs(t, ns.ClientURL(), grace)...)
	b := startHub(t, "B", natsHubArgs(t, ns.ClientURL(), grace)...)

	widget := dialWS(t, "widget@B", b.wsURL("/v1/widget?site=acme"))
	widget.Expect("widget_status", "site", "acme", "status", "offline", "reason", "no_agents")

	sup := connectAgent(t, b, "sup@B", mintProcToken(t, procSecret, "acme", "sup"))
	roster := subscribeRoster(t, sup)

	onlyOnA := []string{"alice", "bob", "carol"}
	var leasesOnA []string // bucket keys of the device leases hub A keeps
	for _, id := range onlyOnA {
		c := connectAgent(t, a, id+"@A", mintProcToken(t, procSecret, "acme", id))
		leasesOnA = append(leasesOnA, "d.acme."+id+"."+c.device)
	}
	bothToken := mintProcToken(t, procSecret, "acme", "both")
	bothA := connectAgent(t, a, "both@A", bothToken)
	leasesOnA = append(leasesOnA, "d.acme.both."+bothA.device)
	bothB := connectAgent(t, b, "both@B", bothToken)

	widget.WaitFor("widget_status", "site", "acme", "status", "online", "reason", "agents_online")
	roster.waitStatus("online", append([]string{"sup", "both"}, onlyOnA...)...)
	// Kill A only once it has refreshed every lease it holds, so that what
	// is shown is a crashed hub that stops refreshing, not first writes
	// running out.
	waitLeaseRefreshes(t, natstest.Connect(t, ns), leasesOnA)

	killedAt := a.kill()
	deadline := killedAt.Add(offlineDeadline)
	pending := slices.Clone(onlyOnA)
	for len(pending) > 0 {
		f, ok := roster.nextAgent(deadline)
		if !ok {
			t.Fatalf("got no offline agent frame for %v within %v of killing hub A, want one for each", pending, offlineDeadline)
		}
		id := f.Str("id")
		if i := slices.Index(pending, id); i >= 0 && f.Str("status") == "offline" {
			t.Logf("agent %s went offline %v after hub A was killed (grace %v)", id, time.Since(killedAt).Round(time.Millisecond), grace)
			pending = slices.Delete(pending, i, i+1)
			continue
		}
		t.Fatalf("got %s after killing hub A, want only offline frames for %v", f, pending)
	}

	// The lease of both's device on A runs out too: both's device on B is
	// told it is the only device left.
	waitDevices(t, bothB, bothB.device)

	// "both" still has a live device on B: it must not have gone offline, and
	// the next roster change is the status it sets there.
	bothB.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "after-kill"})
	f, ok := roster.nextAgent(time.Now().Add(procWait))
	if !ok {
		t.Fatalf("got no roster frame within %v of both setting busy, want agent both busy", procWait)
	}
	if f.Str("id") != "both" || f.Str("status") != "busy" {
		t.Fatalf("got %s, want agent both busy", f)
	}
	bothB.WaitFor("status", "status", "busy", "ref", "after-kill")
}

// waitDevices skips c's frames until a devices frame lists exactly want.
func waitDevices(t *testing.T, c *agentClient, want ...string) {
	t.Helper()
	deadline := time.Now().Add(procWait)
	var last wstest.Frame
	for {
		f, ok := c.NextBefore(deadline)
		if !ok {
			t.Fatalf("%s: got last devices frame %s within %v, want devices %v", c.Name, last, procWait, want)
		}
		if f.Str("type") != "devices" {
			continue
		}
		last = f
		if got := f.IDs("devices"); slices.Equal(got, want) {
			return
		}
	}
}

// waitLeaseRefreshes checks that each of keys holds a live lease with no
// TTL: a live device's lease is not refreshed, its hub's liveness key
// stands for it, so what a kill shows is the hub's liveness running out.
// (The name stays from when leases were refreshed.)
func waitLeaseRefreshes(t *testing.T, nc *nats.Conn, keys []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_presence")
	if err != nil {
		t.Fatalf("failed to open the presence bucket's stream: %v", err)
	}
	for _, key := range keys {
		m, err := stream.GetLastMsgForSubject(ctx, "$KV.presence."+key)
		if err != nil {
			t.Fatalf("lease %s: %v", key, err)
		}
		var rec struct{ State string }
		if err := json.Unmarshal(m.Data, &rec); err != nil || rec.State != "live" {
			t.Fatalf("lease %s holds %s, want a live lease", key, m.Data)
		}
		if ttl := m.Header.Get("Nats-TTL"); ttl != "" {
			t.Fatalf("live lease %s has TTL %s, want none", key, ttl)
		}
	}
}

// TestEmbeddedNATSJoin runs hub A with its embedded nats-server listening
// for other hubs and hub B connected to it: a status change on A reaches a
// widget on B, and both processes exit cleanly on SIGTERM.
func TestEmbeddedNATSJoin(t *testing.T) {
	natsPort := freePort(t)
	a := startHub(t, "A", "--addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:"+natsPort, "--grace", "2s",
		"--data-dir", t.TempDir(), "--jwt-secret", procSecret)
	b := startHub(t, "B", "--addr", "127.0.0.1:0", "--nats-url", "nats://127.0.0.1:"+natsPort, "--grace", "2s",
		"--data-dir", t.TempDir(), "--jwt-secret", procSecret)

	widget := dialWS(t, "widget@B", b.wsURL("/v1/widget?site=acme"))
	widget.Expect("widget_status", "site", "acme", "status", "offline", "reason", "no_agents")

	alice := connectAgent(t, a, "alice@A", mintProcToken(t, procSecret, "acme", "alice"))
	widget.Expect("widget_status", "site", "acme", "status", "online", "reason", "agents_online")

	alice.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "r1"})
	alice.WaitFor("status", "status", "busy", "ref", "r1")
	widget.Expect("widget_status", "site", "acme", "status", "busy", "reason", "all_busy")

	b.terminate()
	a.terminate()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func TestTokenCommand(t *testing.T) {
	verify := func(t *testing.T, secret string, res procResult) *transport.Claims {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("got exit code %d, want 0; stderr:\n%s", res.code, res.stderr)
		}
		auth, err := transport.NewAuth([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		claims, err := auth.Verify(strings.TrimSpace(res.stdout))
		if err != nil {
			t.Fatalf("got token %q that does not verify: %v", res.stdout, err)
		}
		return claims
	}

	t.Run("flag", func(t *testing.T) {
		res := runPresencehub(t, nil, "token", "--site", "acme", "--agent", "alice", "--groups", "a,b", "--role", "admin", "--jwt-secret", procSecret)
		if strings.Count(res.stdout, "\n") != 1 || !strings.HasSuffix(res.stdout, "\n") {
			t.Errorf("got stdout %q, want the token on one line", res.stdout)
		}
		c := verify(t, procSecret, res)
		if c.Site != "acme" || c.Subject != "alice" || !slices.Equal(c.Groups, []string{"a", "b"}) || c.Role != transport.RoleAdmin {
			t.Errorf("got claims site=%q sub=%q groups=%v role=%q, want site=acme sub=alice groups=[a b] role=admin", c.Site, c.Subject, c.Groups, c.Role)
		}
		if c.IssuedAt == nil || c.ExpiresAt == nil {
			t.Fatalf("got iat=%v exp=%v, want both set", c.IssuedAt, c.ExpiresAt)
		}
		if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != 24*time.Hour {
			t.Errorf("got exp-iat %v, want the default ttl 24h", got)
		}
	})

	t.Run("env", func(t *testing.T) {
		res := runPresencehub(t, []string{"PRESENCE_JWT_SECRET=" + procSecret}, "token", "--site", "acme", "--agent", "bob", "--ttl", "1h")
		c := verify(t, procSecret, res)
		if c.Site != "acme" || c.Subject != "bob" || len(c.Groups) != 0 || c.Role != transport.RoleAgent {
			t.Errorf("got claims site=%q sub=%q groups=%v role=%q, want site=acme sub=bob groups=[] role=agent", c.Site, c.Subject, c.Groups, c.Role)
		}
		if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != time.Hour {
			t.Errorf("got exp-iat %v, want 1h", got)
		}
	})

	t.Run("flag overrides env", func(t *testing.T) {
		res := runPresencehub(t, []string{"PRESENCE_JWT_SECRET=other-secret"}, "token", "--site", "acme", "--agent", "bob", "--jwt-secret", procSecret)
		verify(t, procSecret, res)
	})

	t.Run("bad site", func(t *testing.T) {
		res := runPresencehub(t, nil, "token", "--site", "bad site!", "--agent", "alice", "--jwt-secret", procSecret)
		if res.code == 0 {
			t.Fatalf("got exit code 0 and stdout %q, want non-zero", res.stdout)
		}
		if res.stdout != "" {
			t.Errorf("got stdout %q, want none", res.stdout)
		}
		if !strings.Contains(res.stderr, "site") {
			t.Errorf("got stderr %q, want a message about the site id", res.stderr)
		}
	})

	t.Run("no secret", func(t *testing.T) {
		dir := t.TempDir()
		res := runPresencehub(t, nil, "token", "--site", "acme", "--agent", "alice", "--data-dir", dir)
		if res.code == 0 {
			t.Fatalf("got exit code 0 and stdout %q, want non-zero", res.stdout)
		}
		if res.stdout != "" {
			t.Errorf("got stdout %q, want none", res.stdout)
		}
		if !strings.Contains(res.stderr, "jwt-secret") {
			t.Errorf("got stderr %q, want a message about the missing secret", res.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); !os.IsNotExist(err) {
			t.Errorf("got Stat error %v for jwt-secret, want it not to exist (token must not create a secret)", err)
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		res := runPresencehub(t, nil, "token", "--bogus")
		if res.code != 2 {
			t.Errorf("got exit code %d, want 2 (usage); stderr:\n%s", res.code, res.stderr)
		}
	})
}

// TestServeSecretPersisted runs serve with no --jwt-secret: it generates a
// secret into the data dir, `token --data-dir` signs with it, and a restart
// keeps it.
func TestServeSecretPersisted(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data") // serve creates it
	secretPath := filepath.Join(dataDir, "jwt-secret")
	h := startHub(t, "hub", "--addr", "127.0.0.1:0", "--grace", "2s", "--data-dir", dataDir)

	st, err := os.Stat(secretPath)
	if err != nil {
		t.Fatalf("got %v, want serve to have created %s", err, secretPath)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("got mode %v for %s, want -rw-------", got, secretPath)
	}
	secret, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}

	res := runPresencehub(t, nil, "token", "--data-dir", dataDir, "--site", "acme", "--agent", "alice")
	if res.code != 0 {
		t.Fatalf("got exit code %d, want 0; stderr:\n%s", res.code, res.stderr)
	}
	tok := strings.TrimSpace(res.stdout)
	connectAgent(t, h, "alice", tok)

	// A token signed with another secret is refused. (The close code is not
	// checked: transport/conn.go may end the socket without the close frame.)
	other := dialWS(t, "other", h.wsURL("/v1/agent"))
	other.Send(map[string]any{"type": "hello", "token": mintProcToken(t, "some-other-secret", "acme", "alice")})
	for _, f := range other.FramesUntilEnd() {
		if f.Str("type") != "error" || f.Str("code") != protocol.CodeUnauthorized {
			t.Errorf("got %s for a token with a foreign signature, want only an unauthorized error before the socket ends", f)
		}
	}

	// The secret outlives the process.
	h.terminate()
	h2 := startHub(t, "hub2", "--addr", "127.0.0.1:0", "--grace", "2s", "--data-dir", dataDir)
	again, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(secret) {
		t.Errorf("got secret %q after restart, want the first one %q kept", again, secret)
	}
	connectAgent(t, h2, "alice-again", tok)
}

// TestServeRefusesBadFlags: a bad flag value, from the command line or the
// environment, or a busy port stops serve at once, with a message naming
// the flag, before it writes anything into --data-dir (the generated secret,
// the embedded NATS store).
func TestServeRefusesBadFlags(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()

	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{name: "bad CIDR", args: []string{"--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"}, want: `invalid --trusted-proxies entry "10.0.0.0/33"`},
		{name: "bad CIDR from the environment", env: []string{"PRESENCE_TRUSTED_PROXIES=lb.internal"}, want: `invalid --trusted-proxies entry "lb.internal"`},
		{name: "zero cap", args: []string{"--max-widgets-per-client", "0"}, want: "invalid --max-widgets-per-client 0"},
		{name: "zero HTTP connection cap", args: []string{"--max-http-conns-per-client", "0"}, want: "invalid --max-http-conns-per-client 0"},
		{name: "zero read timeout from the environment", env: []string{"PRESENCE_HTTP_READ_TIMEOUT=0s"}, want: "invalid --http-read-timeout 0"},
		{name: "zero idle timeout", args: []string{"--http-idle-timeout", "0"}, want: "invalid --http-idle-timeout 0"},
		{name: "zero header timeout", args: []string{"--http-header-timeout", "0s"}, want: "invalid --http-header-timeout 0"},
		{name: "busy --nats-listen", args: []string{"--nats-listen", busyAddr}, want: "failed to listen on --nats-listen " + busyAddr},
		{name: "busy --addr", args: []string{"--addr", busyAddr}, want: "failed to listen on --addr " + busyAddr},
		{name: "--nats-listen without a port", args: []string{"--nats-listen", "127.0.0.1"}, want: `invalid --nats-listen "127.0.0.1"`},
		{name: "--nats-listen with --nats-url", args: []string{"--nats-listen", "127.0.0.1:4222", "--nats-url", "nats://127.0.0.1:4222"}, want: "--nats-listen applies to the embedded nats-server only"},
		{name: "grace under 1s", args: []string{"--grace", "500ms"}, want: "invalid --grace 500ms"},
		{name: "refresh beyond grace", env: []string{"PRESENCE_LEASE_REFRESH=5m"}, want: "invalid --lease-refresh 5m0s"},
		{name: "marker TTL under 1s", args: []string{"--kv-marker-ttl", "10ms"}, want: "invalid --kv-marker-ttl 10ms"},
		{name: "bucket name", args: []string{"--bucket", "pres.ence"}, want: `invalid --bucket "pres.ence"`},
		{name: "replicas on the embedded server", args: []string{"--kv-replicas", "3"}, want: "invalid --kv-replicas 3"},
		{name: "event stream name", args: []string{"--events-stream", "pres.ence"}, want: `invalid --events-stream "pres.ence"`},
		{name: "retention under the duplicate window", env: []string{"PRESENCE_EVENTS_RETENTION=1m"}, want: "invalid --events-retention 1m0s"},
		{name: "no devices", args: []string{"--max-devices", "0"}, want: "invalid --max-devices 0"},
		{name: "webhook timeout", args: []string{"--webhook-timeout", "0s"}, want: "invalid --webhook-timeout 0s"},
		{name: "webhook retry schedule", env: []string{"PRESENCE_WEBHOOK_RETRY_SCHEDULE=5s,soon"}, want: `invalid --webhook-retry-schedule "5s,soon": item 2 ("soon")`},
		{name: "negative webhook retry delay", args: []string{"--webhook-retry-schedule", "5s,-1m"}, want: `item 2 ("-1m")`},
		{name: "webhook retries beyond the deliveries log", args: []string{"--webhook-retry-schedule", "100h,100h"}, want: `invalid --webhook-retry-schedule "100h,100h": webhook retry schedule 100h0m0s,100h0m0s spans up to`},
		{name: "webhook retries beyond the events' retention", env: []string{"PRESENCE_EVENTS_RETENTION=24h"}, want: `more than the 24h0m0s the event stream keeps events; shorten it, or lengthen --events-retention`},
		{name: "no webhooks per site", args: []string{"--webhook-max-per-site", "0"}, want: "invalid --webhook-max-per-site 0"},
		{name: "no webhook pending", args: []string{"--webhook-max-pending", "0"}, want: "invalid --webhook-max-pending 0"},
		{name: "no webhook concurrency", args: []string{"--webhook-concurrency", "0"}, want: "invalid --webhook-concurrency 0"},
		{name: "no webhook deliveries kept", args: []string{"--webhook-deliveries-kept", "0"}, want: "invalid --webhook-deliveries-kept 0"},
		{name: "negative send queue", args: []string{"--send-queue", "-1"}, want: "invalid --send-queue: more than 0"},
		{name: "zero send queue", args: []string{"--send-queue", "0"}, want: "invalid --send-queue: more than 0"},
		{name: "zero hello timeout", args: []string{"--hello-timeout", "0s"}, want: "invalid --hello-timeout: more than 0"},
		{name: "negative hello timeout", env: []string{"PRESENCE_HELLO_TIMEOUT=-1s"}, want: "invalid --hello-timeout: more than 0"},
		{name: "zero message size", args: []string{"--max-message-bytes", "0"}, want: "invalid --max-message-bytes: more than 0"},
		{name: "zero write timeout", args: []string{"--write-timeout", "0s"}, want: "invalid --write-timeout: more than 0"},
		{name: "zero pong timeout", args: []string{"--pong-timeout", "0s"}, want: "invalid --pong-timeout: more than 0"},
		{name: "negative close timeout", args: []string{"--close-timeout", "-1s"}, want: "invalid --close-timeout: more than 0"},
		{name: "zero status rate", args: []string{"--status-rate", "0"}, want: "invalid --status-rate: more than 0"},
		{name: "zero status burst", args: []string{"--status-burst", "0"}, want: "invalid --status-burst: more than 0"},
		{name: "zero device op queue", args: []string{"--device-op-queue", "0"}, want: "invalid --device-op-queue: more than 0"},
		{name: "zero startup timeout", args: []string{"--startup-timeout", "0s"}, want: "invalid --startup-timeout: more than 0"},
		{name: "zero shutdown timeout", args: []string{"--shutdown-timeout", "0s"}, want: "invalid --shutdown-timeout: more than 0"},
		{name: "negative shutdown delay", args: []string{"--shutdown-delay", "-1s"}, want: "invalid --shutdown-delay -1s: negative"},
		{name: "zero ping interval", args: []string{"--ping-interval", "0s"}, want: "invalid --ping-interval 0: use a negative value"},
		{name: "replica id with a space", args: []string{"--replica-id", "hub one"}, want: `invalid --replica-id "hub one"`},
		{name: "log level", args: []string{"--log-level", "loud"}, want: `invalid --log-level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			res := runPresencehub(t, tt.env, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, tt.args...)...)
			if res.code != 1 {
				t.Fatalf("got exit code %d, want 1; stderr:\n%s", res.code, res.stderr)
			}
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("got stderr %q, want it to contain %q", res.stderr, tt.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("got Stat error %v for the data dir, want it not created: serve must stop before starting anything", err)
			}
		})
	}
}

// TestServeWidgetCapFlags: --max-widgets-per-client and --trusted-proxies
// reach the server. With nobody trusted, X-Forwarded-For is ignored, so two
// widgets from 127.0.0.1 naming different clients are one client, and the
// second is over a cap of 1.
func TestServeWidgetCapFlags(t *testing.T) {
	h := startHub(t, "hub", "--addr", "127.0.0.1:0", "--grace", "2s", "--data-dir", t.TempDir(), "--jwt-secret", procSecret,
		"--max-widgets-per-client", "1", "--trusted-proxies", "none")
	url := h.wsURL("/v1/widget?site=acme")
	from := func(client string) wstest.Options {
		return wstest.Options{Header: http.Header{"X-Forwarded-For": {client}}, Wait: procWait}
	}
	w := wstest.Dial(t, url, from("203.0.113.7"))
	w.Expect("widget_status", "site", "acme", "status", "offline", "reason", "no_agents")
	c, resp, err := wstest.TryDial(t, url, from("198.51.100.9"))
	if err == nil {
		c.Conn.CloseNow()
		t.Fatal("got a second widget socket from 127.0.0.1 with --max-widgets-per-client 1 and --trusted-proxies none, want HTTP 429")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("got %v for a second widget socket, want HTTP 429", err)
	}
	h.terminate()
}

// TestServeHTTPLimitFlags: --max-http-conns-per-client, --http-idle-timeout
// and --http-read-timeout reach the server. With a cap of 2 and no trusted
// proxies, a third connection from 127.0.0.1 is closed unanswered; an idle keep-alive
// connection and one whose body stalls are closed after their timeouts
// (the defaults, 1m and 30s, are longer than the test waits).
func TestServeHTTPLimitFlags(t *testing.T) {
	h := startHub(t, "hub", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--jwt-secret", procSecret,
		"--max-http-conns-per-client", "2", "--http-idle-timeout", "200ms", "--http-read-timeout", "300ms", "--trusted-proxies", "none")
	// A wait shorter than the defaults, so that a flag that did not reach
	// the server fails the test.
	const wait = 15 * time.Second
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", h.Addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(wait))
		return c
	}
	request := func(c net.Conn, req string) (*http.Response, *bufio.Reader, error) {
		if _, err := io.WriteString(c, req); err != nil {
			return nil, nil, err
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, br, err
	}
	expectEOF := func(br *bufio.Reader, what string) {
		t.Helper()
		if _, err := io.Copy(io.Discard, br); err != nil {
			t.Fatalf("%s: got %v, want the server to close the connection within %v", what, err, wait)
		}
	}
	const get = "GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"

	idle := dial()
	resp, idleReader, err := request(idle, get)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("got %v, %v for GET /healthz, want 200", resp, err)
	}
	// The body never comes; /healthz does not read it, but the server
	// reads it to its end before answering, until the read timeout.
	stalled := dial()
	if _, err := io.WriteString(stalled, "GET /healthz HTTP/1.1\r\nHost: hub\r\nContent-Length: 10\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, _, err := request(dial(), get); err == nil {
		t.Fatalf("got HTTP %d on a third connection with --max-http-conns-per-client 2, want it closed unanswered", resp.StatusCode)
	}
	expectEOF(idleReader, "an idle keep-alive connection")
	expectEOF(bufio.NewReader(stalled), "a stalled request body")
	h.terminate()
}

// TestShutdownTimeoutBoundsStuckSockets: a client that never answers the
// close frame holds its socket for --close-timeout; on SIGTERM the hub waits
// for it only --shutdown-timeout, says so, and exits cleanly.
func TestShutdownTimeoutBoundsStuckSockets(t *testing.T) {
	h := startHub(t, "hub", "--addr", "127.0.0.1:0", "--grace", "2s", "--data-dir", t.TempDir(), "--jwt-secret", procSecret,
		"--shutdown-timeout", "1s", "--close-timeout", "10m")
	// A raw client: the upgrade, then nothing read or answered.
	c, err := net.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/widget?site=acme HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", h.Addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("failed to read the upgrade answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got HTTP %d for the upgrade, want 101", resp.StatusCode)
	}
	h.terminate() // fails unless the hub exits, with code 0, within procWait: far less than --close-timeout
	if !strings.Contains(h.Stderr(), "sockets still open at shutdown") {
		t.Errorf("got no warning about the socket left open; stderr:\n%s", h.Stderr())
	}
}
