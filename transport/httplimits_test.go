package transport_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

// serveLimited serves h on a fresh loopback port through
// transport.NewHTTPServer until the test ends, and returns the address.
func serveLimited(t *testing.T, h http.Handler, limits transport.HTTPLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, limited := transport.NewHTTPServer(h, ln, limits)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(limited) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("got %v from Serve, want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// okHandler answers every request with 200 and a short body.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })

// rawConn is a client TCP connection speaking HTTP/1.1 by hand, so that a
// test decides when each byte goes out.
type rawConn struct {
	t *testing.T
	net.Conn
	br *bufio.Reader
}

// dialFrom connects to addr from the local address from ("127.0.0.2"),
// or from the system's choice when from is empty.
func dialFrom(t *testing.T, addr, from string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: waitTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("failed to dial %s from %q: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, Conn: c, br: bufio.NewReader(c)}
}

// send writes s and fails the test if it cannot.
func (c *rawConn) send(s string) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, s); err != nil {
		c.t.Fatalf("failed to write to %s: %v", c.RemoteAddr(), err)
	}
}

// get sends GET path and returns the response, its body read.
func (c *rawConn) get(path string) (*http.Response, error) {
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: hub\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, err
	}
	return resp, nil
}

// expectOK fails the test unless GET path answers 200 on c.
func (c *rawConn) expectOK(path string) {
	c.t.Helper()
	resp, err := c.get(path)
	if err != nil {
		c.t.Fatalf("got %v for GET %s from %s, want 200", err, path, c.LocalAddr())
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("got HTTP %d for GET %s from %s, want 200", resp.StatusCode, path, c.LocalAddr())
	}
}

// expectClosed reads (and drops) whatever the server still sends and fails
// the test unless the server closes the connection within waitTimeout.
func (c *rawConn) expectClosed(why string) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := io.Copy(io.Discard, c.br)
	if !closedByPeer(err) {
		c.t.Fatalf("%s: got %v reading until the server closes, want EOF within %v", why, err, waitTimeout)
	}
}

// closedByPeer reports whether err, from reading or writing a connection,
// means the other side closed it: io.Copy's nil for EOF, ReadResponse's
// unexpected EOF, or a reset when it closed with our bytes unread.
func closedByPeer(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestIdleKeepAliveConnectionIsClosed(t *testing.T) {
	addr := serveLimited(t, okHandler, transport.HTTPLimits{IdleTimeout: 200 * time.Millisecond})
	c := dialFrom(t, addr, "")
	c.expectOK("/")
	c.expectClosed("an idle keep-alive connection")
}

func TestStalledRequestIsClosed(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	addr := serveLimited(t, r.srv, transport.HTTPLimits{ReadTimeout: 200 * time.Millisecond})

	// A body that stops halfway: the handler is reading it when the read
	// timeout runs out, and tells the client.
	c := dialFrom(t, addr, "")
	c.send("PUT /v1/admin/sites/acme/settings HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + mintAdminToken(t, "acme") +
		"\r\nContent-Length: 100\r\n\r\n{\"allowed_origins\":")
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	// The request is given so that the answer can be checked against the
	// OpenAPI description.
	resp, err := http.ReadResponse(c.br, httptest.NewRequest("PUT", "/v1/admin/sites/acme/settings", nil))
	if err != nil {
		t.Fatalf("got %v for a stalled body, want HTTP 408", err)
	}
	msg := expectHTTPError(t, resp, "a stalled admin body", http.StatusRequestTimeout, protocol.CodeBadRequest)
	mustContain(t, "the 408's message", msg, "not received in time")
	c.expectClosed("a stalled body")

	// Headers that stop halfway.
	c = dialFrom(t, addr, "")
	c.send("GET /healthz HTTP/1.1\r\nHost: hub\r\n")
	c.expectClosed("stalled headers")

	// Nothing at all.
	dialFrom(t, addr, "").expectClosed("a connection that sends nothing")
}

// TestStalledHeadersAreClosedWithoutReadTimeout: with no read timeout, the
// header timeout alone closes a connection that trickles its headers, long
// before DefaultHTTPHeaderTimeout would.
func TestStalledHeadersAreClosedWithoutReadTimeout(t *testing.T) {
	addr := serveLimited(t, okHandler, transport.HTTPLimits{ReadTimeout: -1, HeaderTimeout: 200 * time.Millisecond})
	c := dialFrom(t, addr, "")
	c.send("GET /healthz HTTP/1.1\r\nHost: hub\r\n")
	// A deadline for failing, half the default: a header timeout ignored
	// would leave the connection open past it.
	c.SetReadDeadline(time.Now().Add(transport.DefaultHTTPHeaderTimeout / 2))
	if _, err := io.Copy(io.Discard, c.br); !closedByPeer(err) {
		t.Fatalf("got %v reading stalled headers, want the server to close the connection", err)
	}
}

func TestHTTPConnectionsPerClientAddressAreCapped(t *testing.T) {
	reg := prometheus.NewRegistry()
	addr := serveLimited(t, okHandler, transport.HTTPLimits{MaxConnsPerClient: 2, Registerer: reg, TrustedProxies: []netip.Prefix{}})
	if got := refusedTotal(t, reg, "presencehub_http_connections_refused_total"); got != 0 {
		t.Fatalf("got presencehub_http_connections_refused_total %v before any refusal, want 0", got)
	}
	first := dialFrom(t, addr, "127.0.0.1")
	first.expectOK("/")
	dialFrom(t, addr, "127.0.0.1").expectOK("/")

	expectConnRefused(t, dialFrom(t, addr, "127.0.0.1"))
	if got := refusedTotal(t, reg, "presencehub_http_connections_refused_total"); got != 1 {
		t.Fatalf("got presencehub_http_connections_refused_total %v after one refusal, want 1", got)
	}
	other := dialFrom(t, addr, "127.0.0.2")
	other.expectOK("/")
	other.expectOK("/") // a kept-alive connection is still the same one

	// A closed connection's slot is free again once the server has seen
	// the close.
	first.Close()
	var again *rawConn
	eventually(t, "a connection slot of 127.0.0.1 is free again", func() bool {
		again = dialFrom(t, addr, "127.0.0.1")
		resp, err := again.get("/")
		if err != nil && !closedByPeer(err) {
			t.Fatalf("got %v for GET / over a full cap, want 200 or the connection closed", err)
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	again.expectOK("/")
}

// expectConnRefused fails the test unless the server closes c without
// answering a request on it.
func expectConnRefused(t *testing.T, c *rawConn) {
	t.Helper()
	resp, err := c.get("/")
	if err == nil {
		t.Fatalf("got HTTP %d from %s over its cap, want the connection closed without an answer", resp.StatusCode, c.LocalAddr())
	}
	if !closedByPeer(err) {
		t.Fatalf("got %v from %s over its cap, want the connection closed", err, c.LocalAddr())
	}
}

// TestUpgradedSocketsOutliveHTTPLimits: the read and idle timeouts and the
// per-address cap are for plain HTTP; a WebSocket leaves them at its
// upgrade (net/http clears a hijacked connection's deadlines).
func TestUpgradedSocketsOutliveHTTPLimits(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	timeout := 200 * time.Millisecond
	addr := serveLimited(t, r.srv, transport.HTTPLimits{ReadTimeout: timeout, IdleTimeout: timeout, MaxConnsPerClient: 1, TrustedProxies: []netip.Prefix{}})
	ws := "ws://" + addr

	dev := dial(t, ws+"/v1/agent", nil)
	dev.Send(helloFrame(mintToken(t, "acme", "alice")))
	dev.Expect("welcome")
	widget := dial(t, ws+"/v1/widget?site=acme", nil)
	widget.Expect("widget_status", "status", "online", "reason", "agents_online")

	// Two sockets from 127.0.0.1 and a cap of 1: they hold no slot.
	plain := dialFrom(t, addr, "127.0.0.1")
	plain.expectOK("/healthz")

	// A request started after both upgrades, stalled until the server
	// drops it: the read timeout has run out for the sockets' requests too.
	// From another address, so that the cap has no say in it.
	stalled := dialFrom(t, addr, "127.0.0.2")
	stalled.send("GET /healthz HTTP/1.1\r\n")
	stalled.expectClosed("stalled headers")

	// Both sockets still read and write.
	dev.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "b"})
	dev.Expect("status", "status", "busy", "ref", "b")
	widget.Expect("widget_status", "status", "busy", "reason", "all_busy")
}

// refusedTotal reads the per_client_limit series of the refusal counter
// name from reg.
func refusedTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "per_client_limit" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("got no %s{reason=\"per_client_limit\"} series, want one", name)
	return 0
}

// A trusted proxy carries many clients: its connections are not counted
// against the cap, so a hub behind a balancer needs no flag to stay up.
func TestHTTPConnectionsFromTrustedProxiesAreNotCapped(t *testing.T) {
	addr := serveLimited(t, okHandler, transport.HTTPLimits{MaxConnsPerClient: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	proxied := []*rawConn{dialFrom(t, addr, "127.0.0.1"), dialFrom(t, addr, "127.0.0.1"), dialFrom(t, addr, "127.0.0.1")}
	for _, c := range proxied {
		c.expectOK("/")
	}
	dialFrom(t, addr, "127.0.0.2").expectOK("/")
	expectConnRefused(t, dialFrom(t, addr, "127.0.0.2"))
}
