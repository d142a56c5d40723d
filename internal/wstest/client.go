// Package wstest holds the WebSocket clients and the replica harness shared
// by the tests: Client, a real WebSocket client (github.com/coder/websocket)
// that collects the JSON frames it receives; RawClient, which writes any
// bytes or frames and checks every frame the server sends against RFC 6455;
// and StartReplica, one hub with its NATS connection, its transport server
// on an HTTP test server and, when asked, webhooks and a history index.
//
// Goroutines: a Client has one reader goroutine, which ends when the socket
// closes (at the latest in the test's cleanup, which waits for it). A
// RawClient has none. A Replica runs the hub's Run, and the webhooks' and
// the history's when asked, on a goroutine each, and its HTTP server's;
// Stop, or the test's end, closes its sockets and waits for them all.
package wstest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// DefaultWait is Options.Wait and ReplicaOptions.Wait when they are zero.
const DefaultWait = 15 * time.Second

// Frame is one decoded JSON frame a client received.
type Frame struct {
	// Raw is the frame as received.
	Raw []byte
	// Fields is the decoded JSON object; a frame that is not JSON has only
	// "type": "<invalid JSON>".
	Fields map[string]any
}

// Str returns the string field key, or "" if it is missing or not a string.
func (f Frame) Str(key string) string {
	s, _ := f.Fields[key].(string)
	return s
}

// IDs returns the "id" fields of the objects in the list field key, such as
// the devices of a devices or welcome frame.
func (f Frame) IDs(key string) []string {
	list, _ := f.Fields[key].([]any)
	var ids []string
	for _, d := range list {
		m, _ := d.(map[string]any)
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

func (f Frame) String() string { return string(f.Raw) }

// Options configures Dial.
type Options struct {
	// Name, if set, starts every failure message of the client, to tell
	// clients apart.
	Name string
	// Header is sent with the opening handshake.
	Header http.Header
	// Wait bounds every wait of the client: dialing, each send and each
	// frame or close it waits for; default DefaultWait. It is a deadline for
	// failing, never a measurement.
	Wait time.Duration
}

// Client is a real WebSocket client that collects what it receives on a
// goroutine of its own, which ends when the socket closes (at the latest in
// the test's cleanup).
type Client struct {
	// Conn is the socket, for closing it abruptly or writing raw frames.
	Conn *websocket.Conn
	// Name starts every failure message if set.
	Name string
	// Wait bounds every wait; a test may change it between waits.
	Wait time.Duration

	t      testing.TB
	frames chan Frame
	// closeErr holds the error that ended reading, once frames is closed.
	closeErr error
}

// Dial opens a socket to url and starts collecting its frames; the socket
// closes when the test ends.
func Dial(t testing.TB, url string, o Options) *Client {
	t.Helper()
	c, _, err := TryDial(t, url, o)
	if err != nil {
		t.Fatalf("%sfailed to dial %s: %v", prefix(o.Name), url, err)
	}
	return c
}

// TryDial is Dial for a socket that may be refused: it returns the error,
// and the server's HTTP response if there was one (its Body holds the start
// of the server's answer).
func TryDial(t testing.TB, url string, o Options) (*Client, *http.Response, error) {
	t.Helper()
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: o.Header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	cl := &Client{Conn: c, Name: o.Name, Wait: o.Wait, t: t, frames: make(chan Frame, 1024)}
	go cl.readLoop()
	t.Cleanup(func() {
		c.CloseNow()
		for range cl.frames { // wait for readLoop to end
		}
	})
	return cl, resp, nil
}

func prefix(name string) string {
	if name == "" {
		return ""
	}
	return name + ": "
}

func (c *Client) readLoop() {
	defer close(c.frames)
	for {
		_, data, err := c.Conn.Read(context.Background())
		if err != nil {
			c.closeErr = err
			return
		}
		f := Frame{Raw: data}
		if err := json.Unmarshal(data, &f.Fields); err != nil {
			f.Fields = map[string]any{"type": "<invalid JSON>"}
		}
		c.frames <- f
	}
}

// Frames returns the channel of received frames, which is closed when the
// socket ends; CloseErr tells why then.
func (c *Client) Frames() <-chan Frame { return c.frames }

// CloseErr returns the error that ended reading, once the channel of frames
// is closed.
func (c *Client) CloseErr() error { return c.closeErr }

// Send sends v as a text frame: a string or []byte as is, anything else as
// JSON.
func (c *Client) Send(v any) {
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
	ctx, cancel := context.WithTimeout(context.Background(), c.Wait)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%sfailed to send %s: %v", prefix(c.Name), b, err)
	}
}

// NextBefore returns the next frame, failing the test if the socket closes
// first; ok is false if deadline passes first.
func (c *Client) NextBefore(deadline time.Time) (f Frame, ok bool) {
	c.t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case f, open := <-c.frames:
		if !open {
			c.t.Fatalf("%ssocket closed while waiting for a frame: %v", prefix(c.Name), c.closeErr)
		}
		return f, true
	case <-timer.C:
		return Frame{}, false
	}
}

// Next returns the next frame, failing the test if none comes in time or
// the socket closes.
func (c *Client) Next() Frame {
	c.t.Helper()
	f, ok := c.NextBefore(time.Now().Add(c.Wait))
	if !ok {
		c.t.Fatalf("%sgot no frame within %v, want one", prefix(c.Name), c.Wait)
	}
	return f
}

// Expect returns the next frame and fails unless its type is typ and each
// key/value pair in want matches.
func (c *Client) Expect(typ string, want ...string) Frame {
	c.t.Helper()
	f := c.Next()
	if got := f.Str("type"); got != typ {
		c.t.Fatalf("%sgot frame %s, want type %q", prefix(c.Name), f, typ)
	}
	for i := 0; i+1 < len(want); i += 2 {
		if got := f.Str(want[i]); got != want[i+1] {
			c.t.Fatalf("%sgot %s=%q in %s, want %q", prefix(c.Name), want[i], got, f, want[i+1])
		}
	}
	return f
}

// WaitFor skips frames until one of type typ matches every key/value pair
// in want, failing the test if none comes in time.
func (c *Client) WaitFor(typ string, want ...string) Frame {
	c.t.Helper()
	deadline := time.Now().Add(c.Wait)
	var seen []string
	for {
		f, ok := c.NextBefore(deadline)
		if !ok {
			c.t.Fatalf("%sgot frames %v within %v, want a %q frame with %v", prefix(c.Name), seen, c.Wait, typ, want)
		}
		seen = append(seen, f.String())
		if f.Str("type") != typ {
			continue
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && f.Str(want[i]) == want[i+1]
		}
		if match {
			return f
		}
	}
}

// ExpectClose waits for the server to close the socket and returns the
// close code, failing if a frame arrives first.
func (c *Client) ExpectClose() websocket.StatusCode {
	c.t.Helper()
	timer := time.NewTimer(c.Wait)
	defer timer.Stop()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("%sgot frame %s, want the socket closed", prefix(c.Name), f)
		}
		var ce websocket.CloseError
		if !errors.As(c.closeErr, &ce) {
			c.t.Fatalf("%ssocket ended without a close frame: %v", prefix(c.Name), c.closeErr)
		}
		return ce.Code
	case <-timer.C:
		c.t.Fatalf("%ssocket did not close in time", prefix(c.Name))
	}
	panic("unreachable")
}

// FramesUntilEnd returns the frames that arrive until the server ends the
// socket, failing the test if it does not end in time.
func (c *Client) FramesUntilEnd() []Frame {
	c.t.Helper()
	timer := time.NewTimer(c.Wait)
	defer timer.Stop()
	var got []Frame
	for {
		select {
		case f, open := <-c.frames:
			if !open {
				return got
			}
			got = append(got, f)
		case <-timer.C:
			c.t.Fatalf("%sgot frames %v, want the socket to end within %v", prefix(c.Name), got, c.Wait)
		}
	}
}

// Eventually waits until cond holds, checking it every few milliseconds, and
// fails the test if it does not hold within wait. For state that has no
// event to wait on.
func Eventually(t testing.TB, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}
