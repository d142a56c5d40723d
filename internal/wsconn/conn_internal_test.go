package wsconn

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// waitTimeout bounds every wait for an event in these tests; it is a
// deadline for failing, never a measurement.
const waitTimeout = 15 * time.Second

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("failed to dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatalf("failed to accept: %v", err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
// For state that has no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runConn starts c with a handler that ignores messages and returns a
// channel closed when c is done.
func runConn(c *Conn) <-chan struct{} {
	done := make(chan struct{})
	c.Run(func(MessageType, []byte) {}, func() { close(done) })
	return done
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("gave up waiting for %s", what)
	}
}

// The keepalive closes a peer only if nothing says it is still there: a pong
// that arrived but that this process has not read yet (its reader starved)
// keeps the peer.
func TestSilentSince(t *testing.T) {
	const sent = int64(1000)
	tests := []struct {
		name       string
		ponged     int64
		peerWrites []byte // bytes the peer sends that nobody reads
		want       bool
	}{
		{name: "pong read after the ping", ponged: sent + 1, want: false},
		{name: "pong arrived, not read yet", ponged: sent - 1, peerWrites: []byte{0x8A, 0x80, 1, 2, 3, 4}, want: false},
		{name: "nothing since the ping", ponged: sent - 1, want: true},
		{name: "nothing ever", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, raw := tcpPair(t)
			c := newConn(raw, nil, &Options{})
			c.ponged.Store(tt.ponged)
			if len(tt.peerWrites) > 0 {
				if runtime.GOOS != "linux" {
					t.Skip("unread bytes are only looked at on Linux")
				}
				if _, err := client.Write(tt.peerWrites); err != nil {
					t.Fatalf("failed to write: %v", err)
				}
				waitFor(t, "the peer's bytes to arrive", func() bool { return c.unreadBytes() == len(tt.peerWrites) })
			}
			if got := c.silentSince(sent); got != tt.want {
				t.Errorf("got silentSince %v, want %v", got, tt.want)
			}
		})
	}
}

// A write through the writer goroutine sets a deadline on the connection; a
// frame written at once long after it must not fail on that old deadline.
func TestWriteAtOnceAfterQueuedWriteDeadline(t *testing.T) {
	client, raw := tcpPair(t)
	const writeTimeout = time.Millisecond
	c := newConn(raw, nil, &Options{WriteTimeout: writeTimeout, SendQueue: 4})
	if c.fd == nil {
		t.Fatal("got no file descriptor for a TCP connection")
	}

	first := TextFrame([]byte(`{"n":1}`))
	if err := c.writeBlocking([][]byte{first}); err != nil {
		t.Fatalf("failed the queued write: %v", err)
	}
	// Let the deadline that write set pass: the passage of time is the
	// event this test is about.
	<-time.After(10 * writeTimeout)
	second := TextFrame([]byte(`{"n":2}`))
	if !c.SendText([]byte(`{"n":2}`)) {
		t.Fatalf("got SendText false, want the frame taken")
	}
	c.mu.Lock()
	closing, lost := c.closing, c.lost
	c.mu.Unlock()
	if closing {
		t.Fatalf("got the connection closing (%v), want the frame written", lost)
	}
	client.SetReadDeadline(time.Now().Add(waitTimeout))
	got := make([]byte, len(first)+len(second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("failed to read both frames: %v", err)
	}
	if want := string(first) + string(second); string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A peer that does not read: what the kernel does not take is queued, and
// once SendQueue frames wait, SendFrame reports false (the hub then kicks
// the subscriber). Then, reading again, the peer gets every frame taken,
// whole and in order.
func TestSendQueueFull(t *testing.T) {
	client, raw := tcpPair(t)
	const queue = 8
	c := newConn(raw, nil, &Options{SendQueue: queue, WriteTimeout: waitTimeout})
	done := runConn(c)
	frame := TextFrame(bytes.Repeat([]byte("x"), 64<<10))
	sent := 0
	for c.SendFrame(frame) {
		sent++
		if sent > 1<<14 {
			t.Fatal("got every frame taken from a peer that reads none, want SendFrame false once the queue is full")
		}
	}
	c.mu.Lock()
	queued := len(c.q)
	c.mu.Unlock()
	if queued != queue {
		t.Fatalf("got SendFrame false with %d frames queued, want %d", queued, queue)
	}
	client.SetReadDeadline(time.Now().Add(waitTimeout))
	got := make([]byte, len(frame))
	for i := range sent {
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("failed to read frame %d of %d: %v", i, sent, err)
		}
		if !bytes.Equal(got, frame) {
			t.Fatalf("got frame %d different from what was sent", i)
		}
	}
	client.Close()
	waitDone(t, done, "the connection to end")
}

// A peer that stops reading is dropped after the write timeout: the writer
// goroutine's write fails and the connection closes.
func TestWriteTimeoutClosesTheConnection(t *testing.T) {
	_, raw := tcpPair(t)
	c := newConn(raw, nil, &Options{SendQueue: 1 << 20, WriteTimeout: 50 * time.Millisecond})
	done := runConn(c)
	frame := TextFrame(bytes.Repeat([]byte("x"), 64<<10))
	for {
		c.SendFrame(frame)
		c.mu.Lock()
		writing := c.writing
		c.mu.Unlock()
		if writing {
			break // the kernel took what it could: the rest waits for the writer
		}
	}
	waitDone(t, done, "the write timeout to close the connection")
	if why := c.ClosedBecause(); !strings.Contains(why, "failed to write") || !strings.Contains(why, "timeout") {
		t.Fatalf("got closed because %q, want a write timeout", why)
	}
}
