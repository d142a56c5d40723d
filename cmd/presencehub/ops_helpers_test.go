//go:build unix

package main

// Helpers for the operations process tests in ops_process_test.go: scraping
// /metrics, polling HTTP endpoints, signalling hub processes and agent
// devices that reconnect with their device id. They build on the helpers in
// process_helpers_test.go; every name here starts with "ops" to keep clear
// of helpers other test files add.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

// opsPollEvery spaces out the scrapes of a poll. Polls wait for a state to
// appear; they never assert on how long it took.
const opsPollEvery = 20 * time.Millisecond

// opsHTTP is the client for the tests' plain HTTP requests.
var opsHTTP = &http.Client{Timeout: procWait}

// opsGet fetches path from hub p and returns the status code and body.
func opsGet(t *testing.T, p *hubProc, path string) (int, string) {
	t.Helper()
	resp, err := opsHTTP.Get("http://" + p.Addr + path)
	if err != nil {
		t.Fatalf("GET %s on hub %s: %v", path, p.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s on hub %s: failed to read body: %v", path, p.Name, err)
	}
	return resp.StatusCode, string(body)
}

// opsWaitHTTPStatus polls GET path on p until it answers want, failing the
// test if it does not within procWait or p stops answering first.
func opsWaitHTTPStatus(t *testing.T, p *hubProc, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(procWait)
	tick := time.NewTicker(opsPollEvery)
	defer tick.Stop()
	last := "no answer"
	for {
		resp, err := opsHTTP.Get("http://" + p.Addr + path)
		if err != nil {
			t.Fatalf("GET %s on hub %s: got %s and then %v, want %d", path, p.Name, last, err, want)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == want {
			return
		}
		last = fmt.Sprintf("%d %q", resp.StatusCode, strings.TrimSpace(string(body)))
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on hub %s: got %s for %v, want %d", path, p.Name, last, procWait, want)
		}
		<-tick.C
	}
}

// opsMetrics is one scrape of /metrics: sample values by series, the series
// written as name{k1="v1",k2="v2"} with labels sorted by name.
type opsMetrics map[string]float64

// opsSeries names a series of metric name with the label pairs kv.
func opsSeries(name string, kv ...string) string {
	if len(kv) == 0 {
		return name
	}
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+"="+strconv.Quote(kv[i+1]))
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// val returns the value of a series, or 0 if the scrape lacks it (a vector
// shows no series for a label value before it is first used).
func (m opsMetrics) val(name string, kv ...string) float64 {
	return m[opsSeries(name, kv...)]
}

// opsParseMetrics parses the Prometheus text exposition format: comments are
// skipped, and each sample line is a name, optional {labels} and a value.
func opsParseMetrics(text string) (opsMetrics, error) {
	m := make(opsMetrics)
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, rest, err := opsParseSeries(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %v", n+1, line, err)
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("line %d %q: no value", n+1, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: bad value: %v", n+1, line, err)
		}
		m[series] = v
	}
	return m, nil
}

// opsParseSeries reads the series at the start of a sample line and returns
// it in opsSeries form with the rest of the line.
func opsParseSeries(line string) (series, rest string, err error) {
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return "", "", errors.New("no metric name")
	}
	name := line[:end]
	if line[end] == ' ' {
		return name, line[end:], nil
	}
	var kv []string
	s := line[end+1:]
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return opsSeries(name, kv...), s[1:], nil
		}
		eq := strings.Index(s, "=")
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", "", errors.New("bad label")
		}
		label := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var value strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					value.WriteByte('\n')
				default:
					value.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				s, closed = s[i+1:], true
				break
			}
			value.WriteByte(c)
		}
		if !closed {
			return "", "", errors.New("unterminated label value")
		}
		kv = append(kv, label, value.String())
	}
}

// opsScrape fetches and parses /metrics from p.
func opsScrape(t *testing.T, p *hubProc) opsMetrics {
	t.Helper()
	code, body := opsGet(t, p, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics on hub %s: got %d %q, want 200", p.Name, code, body)
	}
	m, err := opsParseMetrics(body)
	if err != nil {
		t.Fatalf("GET /metrics on hub %s: got unparsable text: %v", p.Name, err)
	}
	return m
}

// opsWant is one expectation on a series of a scrape.
type opsWant struct {
	series string
	cmp    string // "==", ">=" or ">"
	value  float64
}

func opsEq(value float64, name string, kv ...string) opsWant {
	return opsWant{opsSeries(name, kv...), "==", value}
}

func opsAtLeast(value float64, name string, kv ...string) opsWant {
	return opsWant{opsSeries(name, kv...), ">=", value}
}

func opsAbove(value float64, name string, kv ...string) opsWant {
	return opsWant{opsSeries(name, kv...), ">", value}
}

// opsMismatches lists the expectations m does not meet, as "got X, want Y".
func opsMismatches(m opsMetrics, wants []opsWant) []string {
	var bad []string
	for _, w := range wants {
		got, present := m[w.series]
		var ok bool
		switch w.cmp {
		case "==":
			ok = got == w.value
		case ">=":
			ok = got >= w.value
		case ">":
			ok = got > w.value
		}
		if !ok {
			shown := strconv.FormatFloat(got, 'g', -1, 64)
			if !present {
				shown = "no series"
			}
			want := strconv.FormatFloat(w.value, 'g', -1, 64)
			if w.cmp != "==" {
				want = w.cmp + " " + want
			}
			bad = append(bad, fmt.Sprintf("%s: got %s, want %s", w.series, shown, want))
		}
	}
	return bad
}

// opsWaitMetrics scrapes p until every expectation in wants holds, and
// returns that scrape; it fails the test with the last mismatches if they
// do not all hold within procWait. Counters move when the hub's view applies
// bucket updates, asynchronously to what the clients see, hence the poll.
func opsWaitMetrics(t *testing.T, p *hubProc, what string, wants ...opsWant) opsMetrics {
	t.Helper()
	deadline := time.Now().Add(procWait)
	tick := time.NewTicker(opsPollEvery)
	defer tick.Stop()
	for {
		m := opsScrape(t, p)
		bad := opsMismatches(m, wants)
		if len(bad) == 0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub %s metrics %s, after %v:\n  %s", p.Name, what, procWait, strings.Join(bad, "\n  "))
		}
		<-tick.C
	}
}

// opsSigterm sends SIGTERM to p and returns the time just before it did.
func (p *hubProc) opsSigterm() time.Time {
	p.T.Helper()
	at := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.T.Fatalf("failed to send SIGTERM to hub %s: %v", p.Name, err)
	}
	return at
}

// opsWaitExit0 waits for p to exit, fails the test unless it exited with
// code 0, and returns how long after since it was seen gone (information
// for the log, never asserted on).
func (p *hubProc) opsWaitExit0(since time.Time) time.Duration {
	p.T.Helper()
	timer := time.NewTimer(procWait)
	defer timer.Stop()
	select {
	case <-p.Exited:
	case <-timer.C:
		p.T.Fatalf("hub %s did not exit within %v of SIGTERM; stderr:\n%s", p.Name, procWait, p.Stderr())
	}
	took := time.Since(since)
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 || p.WaitErr != nil {
		p.T.Errorf("hub %s exited on SIGTERM with code %d (%v), want code 0; stderr:\n%s", p.Name, code, p.WaitErr, p.Stderr())
	}
	return took
}

// opsToken mints an agent token for site acme in groups.
func opsToken(t *testing.T, agent string, groups ...string) string {
	t.Helper()
	auth, err := transport.NewAuth([]byte(procSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: "acme", Agent: agent, Groups: groups, Role: transport.RoleAgent, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// opsConnectDevice opens an agent socket on p and says hello as device (""
// for a new device); it returns the client and its welcome frame, failing
// the test unless the welcome names the same device.
func opsConnectDevice(t *testing.T, p *hubProc, name, token, device string) (*agentClient, wstest.Frame) {
	t.Helper()
	c := dialWS(t, name, p.wsURL("/v1/agent"))
	dev := map[string]string{"kind": "web"}
	if device != "" {
		dev["id"] = device
	}
	c.Send(map[string]any{"type": "hello", "token": token, "device": dev})
	w := c.Expect("welcome")
	if w.Str("device") == "" || device != "" && w.Str("device") != device {
		t.Fatalf("%s: got welcome %s, want one for device %q", name, w, device)
	}
	return &agentClient{Client: c, device: w.Str("device")}, w
}

// opsExpectClose returns the frames c receives until the server closes it,
// failing the test unless the close carries code.
func opsExpectClose(t *testing.T, c *wstest.Client, code websocket.StatusCode) []wstest.Frame {
	t.Helper()
	frames := c.FramesUntilEnd()
	if got := websocket.CloseStatus(c.CloseErr()); got != code {
		t.Fatalf("%s: got close status %d (%v) after frames %v, want %d", c.Name, got, c.CloseErr(), frames, code)
	}
	return frames
}

// opsNoFrameYet fails the test if c has received a frame or was closed.
func opsNoFrameYet(t *testing.T, c *wstest.Client, when string) {
	t.Helper()
	select {
	case f, open := <-c.Frames():
		if !open {
			t.Fatalf("%s: got the socket closed (%v) %s, want it still open", c.Name, c.CloseErr(), when)
		}
		t.Fatalf("%s: got frame %s %s, want none", c.Name, f, when)
	default:
	}
}

// opsAdminToken mints an admin token for site acme.
func opsAdminToken(t *testing.T) string {
	t.Helper()
	auth, err := transport.NewAuth([]byte(procSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: "acme", Agent: "ops", Role: transport.RoleAdmin, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// opsAdmin sends an admin API request for site acme to p with an admin
// token and fails the test unless it answers want.
func opsAdmin(t *testing.T, p *hubProc, method, path, body string, want int) {
	t.Helper()
	tok := opsAdminToken(t)
	req, err := http.NewRequest(method, "http://"+p.Addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := opsHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s on hub %s: %v", method, path, p.Name, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s on hub %s: got %d %s, want %d", method, path, p.Name, resp.StatusCode, got, want)
	}
}
