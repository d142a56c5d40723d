//go:build unix

package client_test

// The tests run the client against real presencehub processes: the binary
// is built once (TestMain removes it), each hub runs as a child process
// with its embedded NATS (or a NATS the test runs, behind a proxy it can
// cut), and everything goes over real sockets.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presencehub/presencehub/client"
	"github.com/presencehub/presencehub/internal/proctest"
)

// wait bounds every wait for an event; it is a deadline for failing, never a
// measurement.
const wait = 60 * time.Second

// secret is the --jwt-secret the test hubs run with.
const secret = "client-test-secret"

// hubProc is one running `presencehub serve`.
type hubProc struct{ *proctest.Proc }

// hubArgs are the flags of a hub on addr with its embedded NATS in dataDir.
func hubArgs(addr, dataDir string, grace time.Duration, extra ...string) []string {
	return append([]string{"--addr", addr, "--data-dir", dataDir, "--jwt-secret", secret, "--grace", grace.String(),
		"--events-stream", "none", "--log-level", "info"}, extra...)
}

// startHub runs `presencehub serve args...` and waits until it listens and
// its view is loaded. It is killed when the test ends.
func startHub(t *testing.T, name string, args ...string) *hubProc {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRESENCE_") {
			env = append(env, kv)
		}
	}
	return &hubProc{proctest.Start(t, proctest.Binary(t), env, name, wait, args...)}
}

// url is the hub's base URL.
func (p *hubProc) url() string { return "http://" + p.Addr }

// terminate sends SIGTERM and waits for a clean exit.
func (p *hubProc) terminate() {
	p.T.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.T.Fatalf("failed to send SIGTERM to hub %s: %v", p.Name, err)
	}
	p.waitExit()
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		p.T.Errorf("hub %s exited on SIGTERM with code %d, want 0; stderr:\n%s", p.Name, code, p.Stderr())
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *hubProc) kill() {
	p.T.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		p.T.Fatalf("failed to kill hub %s: %v", p.Name, err)
	}
	p.waitExit()
}

func (p *hubProc) waitExit() {
	p.T.Helper()
	select {
	case <-p.Exited:
	case <-time.After(wait):
		p.T.Fatalf("hub %s did not exit within %v; stderr:\n%s", p.Name, wait, p.Stderr())
	}
}

// freeAddr returns a loopback address with a port that was free, for a hub
// that must come back on the same port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mintToken signs a token as docs/protocol.md describes them, valid for ttl.
func mintToken(t *testing.T, key, site, agent, role string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"sub": agent, "site": site, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if role != "" {
		claims["role"] = role
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func agentToken(t *testing.T, site, agent string) string {
	return mintToken(t, secret, site, agent, "", time.Hour)
}

// tokens is a TokenFunc that mints tokens valid for ttl, and counts them.
type tokens struct {
	t          *testing.T
	site, user string
	ttl        time.Duration
	mu         sync.Mutex
	n          int
}

func (k *tokens) get(ctx context.Context) (string, error) {
	k.mu.Lock()
	k.n++
	k.mu.Unlock()
	return mintToken(k.t, secret, k.site, k.user, "", k.ttl), nil
}

func (k *tokens) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

// dial connects a client and closes it when the test ends.
func dial(t *testing.T, cfg client.Config) (*client.Client, *events) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("failed to dial %s: %v", cfg.URL, err)
	}
	ev := collect(t, c)
	t.Cleanup(func() {
		c.Close()
		ev.wait()
	})
	return c, ev
}

// events collects a client's events on a goroutine of its own, which ends
// when the client's channel closes.
type events struct {
	t      *testing.T
	mu     sync.Mutex
	list   []client.Event
	change chan struct{} // closed and replaced on each event
	ended  chan struct{}
}

func collect(t *testing.T, c *client.Client) *events {
	e := &events{t: t, change: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(e.ended)
		for ev := range c.Events() {
			e.mu.Lock()
			e.list = append(e.list, ev)
			close(e.change)
			e.change = make(chan struct{})
			e.mu.Unlock()
		}
	}()
	return e
}

func (e *events) wait() {
	select {
	case <-e.ended:
	case <-time.After(wait):
		e.t.Errorf("the events channel did not close within %v", wait)
	}
}

// all returns the events so far.
func (e *events) all() []client.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]client.Event(nil), e.list...)
}

// waitFor waits until an event from index from on matches, and returns it
// and the index after it.
func (e *events) waitFor(from int, what string, match func(client.Event) bool) (client.Event, int) {
	e.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		for i := from; i < len(e.list); i++ {
			if match(e.list[i]) {
				ev := e.list[i]
				e.mu.Unlock()
				return ev, i + 1
			}
		}
		from = max(from, len(e.list))
		change := e.change
		e.mu.Unlock()
		select {
		case <-change:
		case <-e.ended:
			e.mu.Lock()
			n := len(e.list)
			e.mu.Unlock()
			if from >= n {
				e.t.Fatalf("the client stopped before %s; events: %v", what, e.all())
			}
		case <-deadline.C:
			e.t.Fatalf("got no %s within %v; events: %v", what, wait, e.all())
		}
	}
}

func isState(s client.ConnState) func(client.Event) bool {
	return func(ev client.Event) bool {
		st, ok := ev.(client.State)
		return ok && st.State == s
	}
}

func isStatus(status string) func(client.Event) bool {
	return func(ev client.Event) bool {
		st, ok := ev.(client.Status)
		return ok && st.Status == status
	}
}

func isWelcome(ev client.Event) bool {
	_, ok := ev.(client.Welcome)
	return ok
}

// widget collects what a WatchWidget reports, on a goroutine of its own
// that ends with the watch (when the test ends).
type widget struct {
	t      *testing.T
	mu     sync.Mutex
	seen   []client.WidgetStatus
	change chan struct{}
}

func watchWidget(t *testing.T, url, site, group string) *widget {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := client.WatchWidget(ctx, url, site, group)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &widget{t: t, change: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range ch {
			w.mu.Lock()
			w.seen = append(w.seen, s)
			close(w.change)
			w.change = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return w
}

// waitStatus waits until the widget shows status (and reason, if given),
// and returns what it shows.
func (w *widget) waitStatus(status, reason string) client.WidgetStatus {
	w.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		n := len(w.seen)
		var last client.WidgetStatus
		if n > 0 {
			last = w.seen[n-1]
		}
		change := w.change
		w.mu.Unlock()
		if n > 0 && last.Status == status && (reason == "" || last.Reason == reason) {
			return last
		}
		select {
		case <-change:
		case <-deadline.C:
			w.t.Fatalf("the widget shows %+v after %v, want %s %s; it showed %v", last, wait, status, reason, w.history())
		}
	}
}

// history returns every status the widget showed, in order.
func (w *widget) history() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.seen {
		out = append(out, s.Status+"/"+s.Reason+"/"+s.Transport)
	}
	return out
}

// adminCall makes an admin API request and returns its status code.
func adminCall(t *testing.T, method, url, token, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	return resp.StatusCode
}

// isClose reports whether err is the hub closing with code.
func isClose(err error, code int) bool {
	var ce *client.CloseError
	return errors.As(err, &ce) && ce.Code == code
}
