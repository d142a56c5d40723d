package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

// Every test here runs bad clients next to a bystander agent device and a
// widget on the same replica, and after each bad client proves that the
// bystanders are still served and that no state changed behind their backs.

// bystanders are an agent device and a site widget that must keep working
// whatever other clients send. At rest the agent is busy, so any session a
// bad client managed to start on the site (online by default) would turn the
// widget online and break the next check.
type bystanders struct {
	r      *replica
	dev    *agent
	widget *wstest.Client
}

const bystanderSite = "acme"

func startBystanders(t *testing.T, r *replica) *bystanders {
	t.Helper()
	w := watchWidget(t, r, bystanderSite, "", "offline", "no_agents")
	dev := connectAgent(t, r, mintToken(t, bystanderSite, "bea"), "", "desktop")
	w.Expect("widget_status", "status", "online", "reason", "agents_online")
	dev.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "rest"})
	dev.Expect("status", "status", "busy", "by_device", dev.device, "ref", "rest")
	w.Expect("widget_status", "status", "busy", "reason", "all_busy")
	return &bystanders{r: r, dev: dev, widget: w}
}

// check proves the bystanders still work: the widget has seen nothing since
// the last check, status changes still reach the device and the widget, and
// the HTTP status agrees. It must run on the goroutine of the test that
// started the bystanders.
func (b *bystanders) check(t *testing.T, after string) {
	t.Helper()
	t.Logf("checking bystanders after %s", after)
	for _, st := range []struct{ status, reason string }{{"online", "agents_online"}, {"busy", "all_busy"}} {
		ref := "check-" + st.status
		b.dev.Send(map[string]string{"type": "set_status", "status": st.status, "ref": ref})
		b.dev.Expect("status", "status", st.status, "by_device", b.dev.device, "ref", ref)
		b.widget.Expect("widget_status", "site", bystanderSite, "status", st.status, "reason", st.reason)
	}
	assertHTTPStatus(t, b.r, "/v1/sites/"+bystanderSite+"/status", "busy", "all_busy")
}

// binaryFrame is sent as a binary WebSocket message by sendFrame.
type binaryFrame []byte

// sendFrame sends v: a string as a text frame as is, a binaryFrame as a
// binary frame, anything else as JSON text. Write errors are only logged: the
// server may close the socket while a bad frame is still being written, and
// the caller then checks how it closed.
func sendFrame(t *testing.T, c *wstest.Client, v any) {
	t.Helper()
	typ := websocket.MessageText
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case binaryFrame:
		typ, b = websocket.MessageBinary, v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Conn.Write(ctx, typ, b); err != nil {
		t.Logf("writing a %d-byte frame failed: %v", len(b), err)
	}
}

// expectErrorFrame waits for the next frame, which must be an error frame with
// code and ref (empty: no ref) and a message; it returns the message.
func expectErrorFrame(t *testing.T, c *wstest.Client, code, ref string) string {
	t.Helper()
	f := c.Expect("error", "code", code, "ref", ref)
	msg := f.Str("message")
	if msg == "" {
		t.Fatalf("got error frame %s without a message, want one", f)
	}
	return msg
}

// expectClosedWith waits for the socket to close and fails unless the close
// code is want; it returns the close frame.
func expectClosedWith(t *testing.T, c *wstest.Client, want websocket.StatusCode) websocket.CloseError {
	t.Helper()
	if got := c.ExpectClose(); got != want {
		t.Fatalf("got close code %d (%v), want %d", got, c.CloseErr(), want)
	}
	var ce websocket.CloseError
	errors.As(c.CloseErr(), &ce)
	return ce
}

func mustContain(t *testing.T, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Fatalf("got %s %q, want it to contain %q", what, s, want)
	}
}

// signToken signs claims with secret and method, bypassing Auth.Mint's checks.
func signToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsFor returns valid agent claims for site and sub expiring in an hour.
func claimsFor(site, sub string, groups ...string) jwt.MapClaims {
	c := jwt.MapClaims{"site": site, "sub": sub, "role": transport.RoleAgent, "exp": time.Now().Add(time.Hour).Unix()}
	if groups != nil {
		c["groups"] = groups
	}
	return c
}

// jsonPadded returns a JSON object of exactly size bytes: fields plus an
// unknown "pad" string field filling the rest.
func jsonPadded(t *testing.T, size int, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	head := string(b[:len(b)-1]) + `,"pad":"`
	n := size - len(head) - len(`"}`)
	if n < 0 {
		t.Fatalf("fields %s do not fit in %d bytes", b, size)
	}
	s := head + strings.Repeat("x", n) + `"}`
	if len(s) != size {
		t.Fatalf("got a %d-byte frame, want %d", len(s), size)
	}
	return s
}

func helloFrame(token string) map[string]any {
	return map[string]any{"type": "hello", "token": token, "device": map[string]string{"kind": "desktop"}}
}

func TestBadInputGetsClearErrorAndHubKeepsServing(t *testing.T) {
	ns := natstest.Start(t)
	// The bystander changes status twice per case: more than the default
	// rate limit allows, which has its own test.
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{StatusRate: 1000, StatusBurst: 1000}})
	by := startBystanders(t, r)
	// A token for the bystanders' site, so that any session a refused hello
	// started by mistake would show on the bystanders' widget.
	malloryTok := mintToken(t, bystanderSite, "mallory")

	run := func(name string, f func(t *testing.T)) {
		t.Helper()
		t.Run(name, f)
		by.check(t, name)
	}

	// The first frame must be a good hello; anything else gets an error frame
	// and close 4001.
	for _, tc := range []struct {
		name     string
		first    any
		wantCode string
		wantMsg  string
	}{
		{"not JSON", "hello?", protocol.CodeBadRequest, "bad hello"},
		{"JSON array", "[1,2]", protocol.CodeBadRequest, "bad hello"},
		{"JSON without type", `{"token":"x"}`, protocol.CodeBadRequest, "missing type"},
		{"set_status before hello", map[string]string{"type": "set_status", "status": "busy"}, protocol.CodeBadRequest, "hello"},
		{"binary frame before hello", binaryFrame(`{"type":"hello"}`), protocol.CodeBadRequest, "hello"},
		{"device id not a UUID", map[string]any{"type": "hello", "token": malloryTok, "device": map[string]string{"id": "not-a-uuid", "kind": "desktop"}}, protocol.CodeBadRequest, "device.id"},
		{"device kind tablet", map[string]any{"type": "hello", "token": malloryTok, "device": map[string]string{"kind": "tablet"}}, protocol.CodeBadRequest, "tablet"},
		{"hello without token", map[string]any{"type": "hello", "device": map[string]string{"kind": "desktop"}}, protocol.CodeUnauthorized, "token"},
	} {
		run("first frame/"+tc.name, func(t *testing.T) {
			c := dial(t, r.wsURL+"/v1/agent", nil)
			sendFrame(t, c, tc.first)
			msg := expectErrorFrame(t, c, tc.wantCode, "")
			mustContain(t, "error message", msg, tc.wantMsg)
			expectClosedWith(t, c, websocket.StatusCode(transport.CloseBadHello))
		})
	}

	// Bad tokens: unauthorized and 4001, and the token never shows in the
	// error message or the close reason.
	expired := claimsFor(bystanderSite, "mallory")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	noExp := claimsFor(bystanderSite, "mallory")
	delete(noExp, "exp")
	for _, tc := range []struct {
		name    string
		token   string
		wantMsg string
	}{
		{"garbage", "this-is-not-a-jwt", "token"},
		{"garbage with dots", "aaaa.bbbb.cccc", "token"},
		{"signed with another secret", signToken(t, jwt.SigningMethodHS256, []byte("some-other-secret"), claimsFor(bystanderSite, "mallory")), "signature"},
		{"alg none", signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor(bystanderSite, "mallory")), "token"},
		{"alg HS512", signToken(t, jwt.SigningMethodHS512, testSecret, claimsFor(bystanderSite, "mallory")), "token"},
		{"missing exp", signToken(t, jwt.SigningMethodHS256, testSecret, noExp), "token"},
		{"expired", signToken(t, jwt.SigningMethodHS256, testSecret, expired), "expired"},
		{"site with a dot", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor("a.b", "mallory")), "site"},
		{"site with a space", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor("a b", "mallory")), "site"},
		{"site 65 chars", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(strings.Repeat("s", 65), "mallory")), "site"},
		{"empty site", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor("", "mallory")), "site"},
		{"sub with a dot", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, "a.b")), "sub"},
		{"sub with a space", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, "a b")), "sub"},
		{"sub star", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, "*")), "sub"},
		{"sub 65 chars", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, strings.Repeat("a", 65))), "sub"},
		{"group star", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, "mallory", "*")), "group"},
		{"group with a dot", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, "mallory", "sales", "a.b")), "group"},
		{"group 65 chars", signToken(t, jwt.SigningMethodHS256, testSecret, claimsFor(bystanderSite, "mallory", strings.Repeat("g", 65))), "group"},
		{"unknown role", signToken(t, jwt.SigningMethodHS256, testSecret, func() jwt.MapClaims {
			c := claimsFor(bystanderSite, "mallory")
			c["role"] = "root"
			return c
		}()), "role"},
	} {
		run("token/"+tc.name, func(t *testing.T) {
			c := dial(t, r.wsURL+"/v1/agent", nil)
			sendFrame(t, c, helloFrame(tc.token))
			msg := expectErrorFrame(t, c, protocol.CodeUnauthorized, "")
			mustContain(t, "error message", msg, tc.wantMsg)
			if strings.Contains(msg, tc.token) {
				t.Fatalf("got error message %q, want it not to contain the token", msg)
			}
			ce := expectClosedWith(t, c, websocket.StatusCode(transport.CloseBadHello))
			if strings.Contains(ce.Reason, tc.token) {
				t.Fatalf("got close reason %q, want it not to contain the token", ce.Reason)
			}
		})
	}

	// After a good hello, a bad frame gets an error frame and the socket
	// stays open: the next good frame is served. Each case is its own agent
	// on another site, so that its frames reach no one else.
	for i, tc := range []struct {
		name    string
		frame   any
		wantRef string
		wantMsg string
	}{
		{"not JSON", "{not json", "", "bad message"},
		{"JSON without type", `{"status":"busy"}`, "", "missing type"},
		{"unknown type", map[string]string{"type": "dance", "ref": "r1"}, "r1", "dance"},
		{"unknown status", map[string]string{"type": "set_status", "status": "away", "ref": "r9"}, "r9", "away"},
		{"second hello", helloFrame(mintToken(t, "other", "olga")), "", "hello"},
		{"binary frame", binaryFrame(`{"type":"set_status","status":"offline"}`), "", "binary"},
		{"ref over 128 bytes", map[string]string{"type": "set_status", "status": "offline", "ref": strings.Repeat("r", 129)}, "", "ref"},
		// encoding/json would take the last of two keys that differ in case:
		// offline, where a reader of the message sees busy.
		{"a key in another case", `{"type":"set_status","status":"busy","STATUS":"offline"}`, "", `"STATUS" must be spelled "status"`},
		{"a key twice", `{"type":"set_status","status":"busy","status":"offline"}`, "", `duplicate key "status"`},
	} {
		run("after hello/"+tc.name, func(t *testing.T) {
			a := connectAgent(t, r, mintToken(t, "other", fmt.Sprintf("olga%d", i)), "", "mobile")
			sendFrame(t, a.Client, tc.frame)
			msg := expectErrorFrame(t, a.Client, protocol.CodeBadRequest, tc.wantRef)
			mustContain(t, "error message", msg, tc.wantMsg)
			// The bad frame changed nothing (no status frame came before the
			// error) and the socket still serves good frames.
			a.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "after"})
			a.Expect("status", "status", "busy", "by_device", a.device, "ref", "after")
		})
	}

	// Invalid UTF-8 in a text frame fails the socket with 1007 (RFC 6455
	// section 8.1), before or after hello; it reaches no one, not even as
	// U+FFFD.
	run("utf8/invalid before hello", func(t *testing.T) {
		c := dial(t, r.wsURL+"/v1/agent", nil)
		sendFrame(t, c, "{\"type\":\"hello\",\"token\":\"\xff\"}")
		expectClosedWith(t, c, websocket.StatusInvalidFramePayloadData)
	})
	run("utf8/invalid after hello", func(t *testing.T) {
		tok := mintToken(t, "other", "ursula")
		a := connectAgent(t, r, tok, "", "desktop")
		b := connectAgent(t, r, tok, "", "mobile")
		a.Expect("devices")
		sendFrame(t, a.Client, "{\"type\":\"set_status\",\"status\":\"busy\",\"ref\":\"\xff\"}")
		expectClosedWith(t, a.Client, websocket.StatusInvalidFramePayloadData)
		b.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "after"})
		if f := b.WaitFor("status"); f.Str("ref") != "after" {
			t.Fatalf("got %s on the agent's other device, want only its own change", f)
		}
	})

	// Frames over MaxMessageBytes (32 KiB) close the socket with 1009; a
	// frame of exactly 32 KiB is served.
	const limit = transport.DefaultMaxMessageBytes
	run("size/over the limit before hello", func(t *testing.T) {
		c := dial(t, r.wsURL+"/v1/agent", nil)
		sendFrame(t, c, jsonPadded(t, 33*1024, helloFrame(malloryTok)))
		expectClosedWith(t, c, websocket.StatusMessageTooBig)
	})
	run("size/over the limit after hello", func(t *testing.T) {
		a := connectAgent(t, r, mintToken(t, "other", "oscar"), "", "desktop")
		sendFrame(t, a.Client, jsonPadded(t, 33*1024, map[string]any{"type": "set_status", "status": "offline"}))
		expectClosedWith(t, a.Client, websocket.StatusMessageTooBig)
	})
	run("size/hello at the limit", func(t *testing.T) {
		c := dial(t, r.wsURL+"/v1/agent", nil)
		sendFrame(t, c, jsonPadded(t, limit, helloFrame(mintToken(t, "other", "paula"))))
		c.Expect("welcome", "status", "online")
	})
	run("size/set_status at the limit", func(t *testing.T) {
		a := connectAgent(t, r, mintToken(t, "other", "quinn"), "", "desktop")
		sendFrame(t, a.Client, jsonPadded(t, limit, map[string]any{"type": "set_status", "status": "busy", "ref": "big"}))
		a.Expect("status", "status", "busy", "by_device", a.device, "ref", "big")
	})

	// Widget sockets: a bad target gets an error frame naming the field and
	// close 1008; widgets may not send anything.
	for _, tc := range []struct {
		name    string
		query   string
		wantMsg string
	}{
		{"no site", "", "site"},
		{"empty site", "?site=", "site"},
		{"site with a dot", "?site=a.b", "site"},
		{"site with a space", "?site=a%20b", "site"},
		{"site 65 chars", "?site=" + strings.Repeat("s", 65), "site"},
		{"group with a dot", "?site=acme&group=a.b", "group"},
		{"group star", "?site=acme&group=*", "group"},
		{"group 65 chars", "?site=acme&group=" + strings.Repeat("g", 65), "group"},
	} {
		run("widget/"+tc.name, func(t *testing.T) {
			c := dial(t, r.wsURL+"/v1/widget"+tc.query, nil)
			msg := expectErrorFrame(t, c, protocol.CodeBadRequest, "")
			mustContain(t, "error message", msg, tc.wantMsg)
			expectClosedWith(t, c, websocket.StatusPolicyViolation)
		})
	}
	run("widget/sends a message", func(t *testing.T) {
		c := watchWidget(t, r, bystanderSite, "", "busy", "all_busy")
		sendFrame(t, c, map[string]string{"type": "set_status", "status": "online"})
		expectErrorFrame(t, c, protocol.CodeBadRequest, "")
		expectClosedWith(t, c, websocket.StatusPolicyViolation)
	})

	// HTTP status: a bad site or group is a 400 with a JSON error naming it.
	for _, tc := range []struct {
		name    string
		path    string
		wantMsg string
	}{
		{"site with a dot", "/v1/sites/a.b/status", "site"},
		{"site with a space", "/v1/sites/a%20b/status", "site"},
		{"site star", "/v1/sites/*/status", "site"},
		{"site 65 chars", "/v1/sites/" + strings.Repeat("s", 65) + "/status", "site"},
		{"group with a dot", "/v1/sites/acme/status?group=a.b", "group"},
		{"group with a space", "/v1/sites/acme/status?group=a%20b", "group"},
		{"group 65 chars", "/v1/sites/acme/status?group=" + strings.Repeat("g", 65), "group"},
	} {
		run("http/"+tc.name, func(t *testing.T) {
			resp, err := http.Get(r.http.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			msg := expectHTTPError(t, resp, tc.path, http.StatusBadRequest, protocol.CodeBadRequest)
			mustContain(t, "error message", msg, tc.wantMsg)
		})
	}

	// No state was lost: a new device of the bystander agent adopts its
	// status, sees its device, and the device is told about the new one.
	extra := connectAgent(t, r, mintToken(t, bystanderSite, "bea"), "", "mobile")
	if got := extra.welcome.Str("status"); got != "busy" {
		t.Fatalf("got welcome status %q for a new bystander device, want busy", got)
	}
	if got, want := deviceIDs(extra.welcome), []string{by.dev.device, extra.device}; !slices.Equal(got, want) {
		t.Fatalf("got welcome devices %v, want %v", got, want)
	}
	if got, want := deviceIDs(by.dev.Expect("devices")), []string{by.dev.device, extra.device}; !slices.Equal(got, want) {
		t.Fatalf("got devices %v on the bystander, want %v", got, want)
	}
}

func TestNoHelloInTimeClosesWith4001(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{HelloTimeout: 300 * time.Millisecond}})
	by := startBystanders(t, r)

	silent := dial(t, r.wsURL+"/v1/agent", nil)
	silent.Expect("error", "code", "bad_request")
	ce := expectClosedWith(t, silent, websocket.StatusCode(transport.CloseBadHello))
	mustContain(t, "close reason", ce.Reason, "hello")
	by.check(t, "a socket without hello")
}

func TestAgentSocketOrigin(t *testing.T) {
	dialOrigin := func(t *testing.T, url, origin string) (*websocket.Conn, *http.Response, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if c != nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		return c, resp, err
	}
	expectRefused := func(t *testing.T, r *replica, origin string) {
		t.Helper()
		_, resp, err := dialOrigin(t, r.wsURL+"/v1/agent", origin)
		if err == nil {
			t.Fatalf("agent socket with Origin %s was accepted, want refused", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Fatalf("got HTTP %d (%v) for Origin %s, want 403", code, err, origin)
		}
	}
	expectWelcome := func(t *testing.T, r *replica, origin, agentID string) {
		t.Helper()
		c := dial(t, r.wsURL+"/v1/agent", http.Header{"Origin": {origin}})
		c.Send(helloFrame(mintToken(t, "other", agentID)))
		c.Expect("welcome", "status", "online")
	}

	t.Run("no allowed origins", func(t *testing.T) {
		ns := natstest.Start(t)
		r := startReplica(t, ns, replicaOptions{})
		by := startBystanders(t, r)
		expectRefused(t, r, "https://evil.example")
		expectRefused(t, r, "https://app.example")
		by.check(t, "refused origins")
		// Widgets accept any origin for now.
		w := dial(t, r.wsURL+"/v1/widget?site="+bystanderSite, http.Header{"Origin": {"https://evil.example"}})
		w.Expect("widget_status", "status", "busy", "reason", "all_busy")
		by.check(t, "a widget from another origin")
	})

	t.Run("app.example allowed", func(t *testing.T) {
		ns := natstest.Start(t)
		r := startReplica(t, ns, replicaOptions{transport: transport.Config{AllowedOrigins: []string{"app.example"}}})
		by := startBystanders(t, r)
		expectWelcome(t, r, "https://app.example", "olga")
		expectRefused(t, r, "https://evil.example")
		expectRefused(t, r, "https://app.example.evil.example")
		by.check(t, "allowed and refused origins")
	})
}
