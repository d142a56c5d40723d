package wsconn_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/internal/wstest"
)

// waitTimeout bounds every wait for an event in these tests; it is a
// deadline for failing, never a measurement.
const waitTimeout = 15 * time.Second

// testServer accepts sockets and runs them with its handler.
type testServer struct {
	url string // ws:// URL
	srv *httptest.Server
	// accepted receives every connection accepted, and messages every
	// message a handler got.
	accepted chan *wsconn.Conn
	messages chan string
	wg       sync.WaitGroup
}

// serve starts a server whose sockets use o. Each message is reported on
// messages; a text message "echo:X" is answered with "X", and "close:N"
// closes the socket with code N and reason "bye".
func serve(t *testing.T, o *wsconn.Options) *testServer {
	t.Helper()
	ts := &testServer{accepted: make(chan *wsconn.Conn, 100), messages: make(chan string, 1000)}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Accept(w, r, o)
		if err != nil {
			return
		}
		ts.wg.Add(1)
		c.Run(func(typ wsconn.MessageType, data []byte) {
			ts.messages <- string(data)
			if s, ok := strings.CutPrefix(string(data), "echo:"); ok {
				c.SendText([]byte(s))
			}
			if s, ok := strings.CutPrefix(string(data), "close:"); ok {
				code, _ := strconv.Atoi(s)
				c.Close(wsconn.StatusCode(code), "bye")
			}
		}, ts.wg.Done)
		ts.accepted <- c
	}))
	ts.url = "ws" + strings.TrimPrefix(ts.srv.URL, "http")
	t.Cleanup(func() {
		// The clients are closed by now (their cleanups ran first): every
		// socket sees it and ends.
		done := make(chan struct{})
		go func() {
			ts.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("sockets still running at the end of the test")
		}
		ts.srv.Close()
	})
	return ts
}

// dial opens a raw client to ts and returns it with the server's side.
func (ts *testServer) dial(t *testing.T) (*wstest.RawClient, *wsconn.Conn) {
	t.Helper()
	c, _, err := wstest.DialRaw(t, ts.url, wstest.RawOptions{Wait: waitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case sc := <-ts.accepted:
		return c, sc
	case <-time.After(waitTimeout):
		t.Fatal("the server accepted no socket")
	}
	panic("unreachable")
}

// expectClose reads until the server's close frame, answering it (reply),
// then to the end of the connection; it fails unless the close carries code,
// or if anything follows it. It returns the close frame.
func expectClose(t *testing.T, c *wstest.RawClient, reply bool, code int) wstest.RawFrame {
	t.Helper()
	msgs, cl, err := c.ReadUntilClose(reply)
	if err != nil {
		t.Fatalf("after messages %v: %v", msgs, err)
	}
	if cl.CloseCode() != code {
		t.Fatalf("got %v after messages %v, want close %d", cl, msgs, code)
	}
	return cl
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// header returns a masked client frame header of opcode op declaring n
// payload bytes in the given length encoding (7, 16 or 64 bits), with a
// zero masking key.
func header(fin bool, op byte, n uint64, bits int) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var b []byte
	switch bits {
	case 7:
		b = []byte{b0, 0x80 | byte(n)}
	case 16:
		b = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, n)
	}
	return append(b, 0, 0, 0, 0)
}

// Every frame a client must not send fails the connection with the code
// RFC 6455 gives it; the handler never sees it, and nothing follows the
// server's close frame.
func TestBadFramesFailTheConnection(t *testing.T) {
	const limit = 1024
	ts := serve(t, &wsconn.Options{ReadLimit: limit})
	frame := wstest.ClientFrame
	text, cont := wstest.OpText, wstest.OpContinuation
	tests := []struct {
		name  string
		bytes []byte
		code  int
		// handled is the message the handler gets before the bad frame.
		handled string
	}{
		{"RSV1 set", frame(true, 4, text, []byte("a")), 1002, ""},
		{"RSV2 set", frame(true, 2, text, []byte("a")), 1002, ""},
		{"RSV3 set", frame(true, 1, text, []byte("a")), 1002, ""},
		{"RSV1 on a ping", frame(true, 4, wstest.OpPing, nil), 1002, ""},
		{"opcode 3", frame(true, 0, 3, nil), 1002, ""},
		{"opcode 7", frame(true, 0, 7, nil), 1002, ""},
		{"opcode 0xB", frame(true, 0, 0xB, nil), 1002, ""},
		{"opcode 0xF", frame(true, 0, 0xF, []byte("a")), 1002, ""},
		{"unmasked text", wstest.UnmaskedFrame(text, []byte("a")), 1002, ""},
		{"unmasked close", wstest.UnmaskedFrame(wstest.OpClose, closePayload(1000, "")), 1002, ""},
		{"ping of 126 bytes", frame(true, 0, wstest.OpPing, bytes.Repeat([]byte("p"), 126)), 1002, ""},
		{"close of 126 bytes", frame(true, 0, wstest.OpClose, closePayload(1000, strings.Repeat("r", 124))), 1002, ""},
		{"ping not final", frame(false, 0, wstest.OpPing, nil), 1002, ""},
		{"pong not final", frame(false, 0, wstest.OpPong, nil), 1002, ""},
		{"close not final", frame(false, 0, wstest.OpClose, closePayload(1000, "")), 1002, ""},
		{"continuation first", frame(true, 0, cont, []byte("a")), 1002, ""},
		{"continuation after a whole message", append(frame(true, 0, text, []byte("a")), frame(true, 0, cont, []byte("b"))...), 1002, "a"},
		{"text inside a fragmented text", append(frame(false, 0, text, []byte("a")), frame(true, 0, text, []byte("b"))...), 1002, ""},
		{"binary inside a fragmented text", append(frame(false, 0, text, []byte("a")), frame(true, 0, wstest.OpBinary, []byte("b"))...), 1002, ""},
		{"close of 1 byte", frame(true, 0, wstest.OpClose, []byte{3}), 1002, ""},
		{"close code 999", frame(true, 0, wstest.OpClose, closePayload(999, "")), 1002, ""},
		{"close code 1004", frame(true, 0, wstest.OpClose, closePayload(1004, "")), 1002, ""},
		{"close code 1005", frame(true, 0, wstest.OpClose, closePayload(1005, "")), 1002, ""},
		{"close code 1006", frame(true, 0, wstest.OpClose, closePayload(1006, "")), 1002, ""},
		{"close code 1015", frame(true, 0, wstest.OpClose, closePayload(1015, "")), 1002, ""},
		{"close code 1016", frame(true, 0, wstest.OpClose, closePayload(1016, "")), 1002, ""},
		{"close code 2999", frame(true, 0, wstest.OpClose, closePayload(2999, "")), 1002, ""},
		{"close code 5000", frame(true, 0, wstest.OpClose, closePayload(5000, "")), 1002, ""},
		{"64-bit length with the top bit set", header(true, text, 1<<63, 64), 1002, ""},
		{"message over the limit", frame(true, 0, text, bytes.Repeat([]byte("x"), limit+1)), 1009, ""},
		{"length over the limit, payload never sent", header(true, text, 1<<40, 64), 1009, ""},
		{"fragments over the limit", append(frame(false, 0, text, bytes.Repeat([]byte("x"), limit)), frame(true, 0, cont, []byte("x"))...), 1009, ""},
		{"invalid UTF-8", frame(true, 0, text, []byte("a\xffb")), 1007, ""},
		{"overlong encoding", frame(true, 0, text, []byte("\xc0\xaf")), 1007, ""},
		{"UTF-16 surrogate", frame(true, 0, text, []byte("\xed\xa0\x80")), 1007, ""},
		{"past U+10FFFF", frame(true, 0, text, []byte("\xf4\x90\x80\x80")), 1007, ""},
		{"message ends inside a rune", frame(true, 0, text, []byte("a\xe2\x82")), 1007, ""},
		{"fragments end inside a rune", append(frame(false, 0, text, []byte("a\xe2")), frame(true, 0, cont, []byte("\x82"))...), 1007, ""},
		{"invalid UTF-8 in a later fragment", append(frame(false, 0, text, []byte("ok")), frame(true, 0, cont, []byte("\xff"))...), 1007, ""},
		{"invalid close reason", frame(true, 0, wstest.OpClose, closePayload(1000, "bad \xff reason")), 1007, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := ts.dial(t)
			if err := c.Write(tt.bytes); err != nil {
				t.Fatal(err)
			}
			cl := expectClose(t, c, true, tt.code)
			if tt.code == 1007 && strings.Contains(cl.CloseReason(), "\xff") {
				t.Fatalf("got the invalid bytes back in %v", cl)
			}
			if tt.handled != "" {
				if m := <-ts.messages; m != tt.handled {
					t.Fatalf("the handler got %q, want %q", m, tt.handled)
				}
			}
			select {
			case m := <-ts.messages:
				t.Fatalf("the handler got %q, want nothing", m)
			default:
			}
		})
	}
}

// Invalid UTF-8 fails the connection at its first bad byte: the rest of
// the message is not waited for.
func TestInvalidUTF8FailsFast(t *testing.T) {
	ts := serve(t, &wsconn.Options{})
	c, _ := ts.dial(t)
	if err := c.Write(wstest.ClientFrame(false, 0, wstest.OpText, []byte("valid, then \xff"))); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, true, 1007)
}

// Good frames at the edges of the rules are served: control frames of 125
// bytes, control frames between fragments, runes split across fragments,
// empty messages, a message exactly at the limit, and a 16-bit length for a
// short payload.
func TestGoodFramesAreServed(t *testing.T) {
	const limit = 1024
	ts := serve(t, &wsconn.Options{ReadLimit: limit})
	frame := wstest.ClientFrame
	text, cont := wstest.OpText, wstest.OpContinuation
	euro := "\xe2\x82\xac" // €
	tests := []struct {
		name  string
		bytes []byte
		want  string // the message the handler gets
	}{
		{"empty", frame(true, 0, text, nil), ""},
		{"binary", frame(true, 0, wstest.OpBinary, []byte{0xff, 0}), "\xff\x00"},
		{"at the limit", frame(true, 0, text, bytes.Repeat([]byte("x"), limit)), strings.Repeat("x", limit)},
		{"ping of 125 bytes first", append(frame(true, 0, wstest.OpPing, bytes.Repeat([]byte("p"), 125)), frame(true, 0, text, []byte("a"))...), "a"},
		{"a rune split over three fragments", slicesConcat(frame(false, 0, text, []byte("1 "+euro[:1])), frame(false, 0, cont, []byte(euro[1:2])), frame(true, 0, cont, []byte(euro[2:]+" 2"))), "1 " + euro + " 2"},
		{"ping between fragments", slicesConcat(frame(false, 0, text, []byte("a")), frame(true, 0, wstest.OpPing, nil), frame(true, 0, cont, []byte("b"))), "ab"},
		{"empty fragments", slicesConcat(frame(false, 0, text, nil), frame(false, 0, cont, nil), frame(true, 0, cont, []byte("z"))), "z"},
		{"16-bit length for 3 bytes", append(header(true, text, 3, 16), "abc"...), "abc"},
		{"valid UTF-8 of every length", frame(true, 0, text, []byte("a\u00e9\u20ac\U0001F600")), "a\u00e9\u20ac\U0001F600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := ts.dial(t)
			if err := c.Write(tt.bytes); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-ts.messages:
				if m != tt.want {
					t.Fatalf("the handler got %q, want %q", m, tt.want)
				}
			case <-time.After(waitTimeout):
				t.Fatal("the handler got no message")
			}
		})
	}
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// A ping is answered with a pong carrying its payload.
func TestPingIsAnswered(t *testing.T) {
	ts := serve(t, &wsconn.Options{})
	c, _ := ts.dial(t)
	if err := c.WriteFrame(wstest.OpPing, []byte("are you there")); err != nil {
		t.Fatal(err)
	}
	f, err := c.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if f.Op != wstest.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("got %v, want a pong with the ping's payload", f)
	}
}

// A client that closes first gets its code back (without a reason, so that
// nothing the client chose is echoed) and then the end of the connection.
func TestClientCloseIsEchoed(t *testing.T) {
	ts := serve(t, &wsconn.Options{})
	for _, tc := range []struct {
		name    string
		payload []byte
		want    int
	}{
		{"normal", closePayload(1000, "bye"), 1000},
		{"application code", closePayload(4321, "done"), 4321},
		{"no code", nil, 1005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sc := ts.dial(t)
			if err := c.WriteFrame(wstest.OpClose, tc.payload); err != nil {
				t.Fatal(err)
			}
			cl := expectClose(t, c, false, tc.want)
			if cl.CloseReason() != "" {
				t.Fatalf("got reason %q echoed, want none", cl.CloseReason())
			}
			if len(tc.payload) == 0 && len(cl.Payload) != 0 {
				t.Fatalf("got close payload % x for a close without a code, want none", cl.Payload)
			}
			if why := sc.ClosedBecause(); !strings.HasPrefix(why, "client closed") {
				t.Fatalf("got closed because %q, want the client's close", why)
			}
		})
	}
}

// After the server's close frame the client has CloseTimeout to answer; one
// that never does is disconnected all the same. One that answers is
// disconnected at once.
func TestCloseHandshakeTimeout(t *testing.T) {
	ts := serve(t, &wsconn.Options{CloseTimeout: 100 * time.Millisecond})
	for _, reply := range []bool{false, true} {
		t.Run(fmt.Sprintf("reply %v", reply), func(t *testing.T) {
			c, sc := ts.dial(t)
			if err := c.WriteText([]byte("close:4000")); err != nil {
				t.Fatal(err)
			}
			// ReadUntilClose waits for the end of the connection: the test
			// fails on its deadline if the server keeps it open.
			cl := expectClose(t, c, reply, 4000)
			if cl.CloseReason() != "bye" {
				t.Fatalf("got %v, want reason bye", cl)
			}
			if why := sc.ClosedBecause(); why != "server closed 4000: bye" {
				t.Fatalf("got closed because %q", why)
			}
		})
	}
}

// Messages that come after the server's close frame are not handed to the
// handler.
func TestNoMessageAfterClose(t *testing.T) {
	ts := serve(t, &wsconn.Options{})
	c, _ := ts.dial(t)
	b := slicesConcat(wstest.ClientFrame(true, 0, wstest.OpText, []byte("close:1000")),
		wstest.ClientFrame(true, 0, wstest.OpText, []byte("late")))
	if err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, true, 1000)
	if m := <-ts.messages; m != "close:1000" {
		t.Fatalf("got %q, want close:1000", m)
	}
	select {
	case m := <-ts.messages:
		t.Fatalf("the handler got %q after closing, want nothing", m)
	default:
	}
}

// Pings go out every PingInterval even when PongTimeout is longer: a
// client counts several within a deadline that a ping every PongTimeout
// could not meet.
func TestPingsEveryIntervalWhateverThePongTimeout(t *testing.T) {
	ts := serve(t, &wsconn.Options{PingInterval: 20 * time.Millisecond, PongTimeout: time.Hour})
	c, _ := ts.dial(t)
	for i := range 5 {
		f, err := c.ReadFrame()
		if err != nil {
			t.Fatalf("got %v after %d pings, want 5", err, i)
		}
		if f.Op != wstest.OpPing {
			t.Fatalf("got %v, want a ping", f)
		}
	}
}

// A client that does not answer pings is closed with 1008 after the pong
// timeout; one that answers stays open.
func TestNoPongClosesWith1008(t *testing.T) {
	ts := serve(t, &wsconn.Options{PingInterval: 20 * time.Millisecond, PongTimeout: time.Second})
	silent, _ := ts.dial(t)
	live, _ := ts.dial(t)
	for range 20 {
		f, err := live.ReadFrame()
		if err != nil {
			t.Fatalf("got %v on the client that answers pings, want pings", err)
		}
		if f.Op != wstest.OpPing {
			t.Fatalf("got %v, want a ping", f)
		}
		if err := live.WriteFrame(wstest.OpPong, f.Payload); err != nil {
			t.Fatal(err)
		}
	}
	cl := expectClose(t, silent, true, 1008)
	if cl.CloseReason() != "no pong in time" {
		t.Fatalf("got %v, want no pong in time", cl)
	}
}

// Many goroutines sending to a socket while it is closed: nothing ever
// follows the close frame.
func TestNothingAfterTheCloseFrame(t *testing.T) {
	ts := serve(t, &wsconn.Options{SendQueue: 1 << 20})
	for round := range 20 {
		c, sc := ts.dial(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				frame := wsconn.TextFrame(fmt.Appendf(nil, `{"round":%d,"sender":%d}`, round, g))
				for {
					select {
					case <-stop:
						return
					default:
						sc.SendFrame(frame)
					}
				}
			}()
		}
		go sc.Close(wsconn.StatusGoingAway, "round over")
		_, _, err := c.ReadUntilClose(true)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// A first message in the same packet as the handshake is read, whole.
func TestMessageInTheHandshakePacket(t *testing.T) {
	ts := serve(t, &wsconn.Options{})
	conn, err := net.Dial("tcp", ts.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET / HTTP/1.1\r\nHost: " + ts.srv.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), wstest.ClientFrame(true, 0, wstest.OpText, []byte("first"))...)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ts.messages:
		if m != "first" {
			t.Fatalf("got %q, want first", m)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the handler got no message")
	}
}

// The opening handshake: what RFC 6455 section 4.2.1 requires, refused with
// an HTTP status that says what is wrong, and the Origin check.
func TestHandshake(t *testing.T) {
	ts := serve(t, &wsconn.Options{OriginPatterns: []string{"app.example", "https://*.shop.example"}})
	host := ts.srv.Listener.Addr().String()
	tests := []struct {
		name       string
		header     http.Header
		wantStatus int
		wantHeader [2]string
	}{
		{name: "good", wantStatus: 101},
		{name: "Connection with other tokens", header: http.Header{"Connection": {"keep-alive, Upgrade"}}, wantStatus: 101},
		{name: "asks for compression", header: http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"}}, wantStatus: 101},
		{name: "asks for a subprotocol", header: http.Header{"Sec-WebSocket-Protocol": {"chat"}}, wantStatus: 101},
		{name: "no Connection upgrade", header: http.Header{"Connection": {"keep-alive"}}, wantStatus: 426, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "no Upgrade", header: http.Header{"Upgrade": {}}, wantStatus: 426, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "Upgrade h2c", header: http.Header{"Upgrade": {"h2c"}}, wantStatus: 426, wantHeader: [2]string{"Upgrade", "websocket"}},
		{name: "version 8", header: http.Header{"Sec-WebSocket-Version": {"8"}}, wantStatus: 426, wantHeader: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "no version", header: http.Header{"Sec-WebSocket-Version": {}}, wantStatus: 426, wantHeader: [2]string{"Sec-WebSocket-Version", "13"}},
		{name: "no key", header: http.Header{"Sec-WebSocket-Key": {}}, wantStatus: 400},
		{name: "key of 15 bytes", header: http.Header{"Sec-WebSocket-Key": {"AAAAAAAAAAAAAAAAAAAA"}}, wantStatus: 400},
		{name: "key not base64", header: http.Header{"Sec-WebSocket-Key": {"not base64 at all!!!!!=="}}, wantStatus: 400},
		{name: "two keys", header: http.Header{"Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="}}, wantStatus: 400},
		{name: "origin of the same host", header: http.Header{"Origin": {"http://" + host}}, wantStatus: 101},
		{name: "origin matching a host pattern", header: http.Header{"Origin": {"https://APP.example"}}, wantStatus: 101},
		{name: "origin matching a scheme pattern", header: http.Header{"Origin": {"https://a.shop.example"}}, wantStatus: 101},
		{name: "origin with the wrong scheme", header: http.Header{"Origin": {"http://a.shop.example"}}, wantStatus: 403},
		{name: "origin of another host", header: http.Header{"Origin": {"https://evil.example"}}, wantStatus: 403},
		{name: "origin suffixed", header: http.Header{"Origin": {"https://app.example.evil.example"}}, wantStatus: 403},
		{name: "origin null", header: http.Header{"Origin": {"null"}}, wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := wstest.DialRaw(t, ts.url, wstest.RawOptions{Header: tt.header, Wait: waitTimeout})
			if tt.wantStatus == 101 {
				if err != nil {
					t.Fatalf("got %v, want the socket open", err)
				}
				<-ts.accepted
				return
			}
			if !errors.Is(err, wstest.ErrRefused) {
				t.Fatalf("got %v, want the handshake refused with %d", err, tt.wantStatus)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got HTTP %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if k, v := tt.wantHeader[0], tt.wantHeader[1]; k != "" && resp.Header.Get(k) != v {
				t.Fatalf("got %s %q, want %q", k, resp.Header.Get(k), v)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(ts.srv.URL, "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("got HTTP %d, want 405", resp.StatusCode)
		}
	})
	t.Run("Refuse writes the answer", func(t *testing.T) {
		var got []int
		var mu sync.Mutex
		refusing := serve(t, &wsconn.Options{Refuse: func(w http.ResponseWriter, status int, err error) {
			mu.Lock()
			got = append(got, status)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"status":%d}`, status)
		}})
		resp, err := http.Get(refusing.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || string(body) != `{"status":426}` || resp.Header.Get("Upgrade") != "websocket" {
			t.Fatalf("got %d %s (Upgrade %q), want 426 with Refuse's body and the Upgrade header", resp.StatusCode, body, resp.Header.Get("Upgrade"))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 {
			t.Fatalf("Refuse called %d times, want once", len(got))
		}
	})
	t.Run("any origin when skipped", func(t *testing.T) {
		open := serve(t, &wsconn.Options{SkipOriginCheck: true})
		if _, _, err := wstest.DialRaw(t, open.url, wstest.RawOptions{Header: http.Header{"Origin": {"https://evil.example"}}, Wait: waitTimeout}); err != nil {
			t.Fatalf("got %v, want the socket open", err)
		}
		<-open.accepted
	})
}
