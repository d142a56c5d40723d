package transport

import (
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

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

// The keepalive closes a peer only if nothing says it is still there: a pong
// that arrived but that this replica has not read yet (its reader starved),
// or a reader held up by one message since before the ping, keeps the peer.
func TestSilentSince(t *testing.T) {
	const sent = int64(1000)
	tests := []struct {
		name       string
		ponged     int64
		handling   int64  // when the reader began its current message
		peerWrites []byte // bytes the peer sends that nobody reads
		want       bool
	}{
		{name: "pong read after the ping", ponged: sent + 1, want: false},
		{name: "pong arrived, not read yet", ponged: sent - 1, peerWrites: appendFrame(nil, opPong, nil), want: false},
		{name: "reader busy since before the ping", ponged: sent - 1, handling: sent - 1, want: false},
		{name: "reader busy since after the ping", ponged: sent - 1, handling: sent + 1, want: true},
		{name: "nothing since the ping", ponged: sent - 1, want: true},
		{name: "nothing ever", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, raw := tcpPair(t)
			fd, err := raw.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatalf("failed to get the raw connection: %v", err)
			}
			l := &sock{raw: raw, fd: fd}
			l.ponged.Store(tt.ponged)
			l.handling.Store(tt.handling)
			if len(tt.peerWrites) > 0 {
				if runtime.GOOS != "linux" {
					t.Skip("unread bytes are only looked at on Linux")
				}
				if _, err := client.Write(tt.peerWrites); err != nil {
					t.Fatalf("failed to write: %v", err)
				}
				waitFor(t, "the peer's bytes to arrive", func() bool { return l.unreadBytes() == len(tt.peerWrites) })
			}
			if got := l.silentSince(sent); got != tt.want {
				t.Errorf("got silentSince %v, want %v", got, tt.want)
			}
		})
	}
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A write through the writer goroutine sets a deadline on the connection; a
// frame written at once long after it must not fail on that old deadline.
func TestWriteAtOnceAfterQueuedWriteDeadline(t *testing.T) {
	client, raw := tcpPair(t)
	fd, err := raw.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatalf("failed to get the raw connection: %v", err)
	}
	const writeTimeout = time.Millisecond
	l := &sock{srv: &Server{cfg: Config{WriteTimeout: writeTimeout, SendQueue: 4}}, raw: raw, fd: fd}

	first := appendFrame(nil, opText, []byte(`{"n":1}`))
	if err := l.write(net.Buffers{first}); err != nil {
		t.Fatalf("failed the queued write: %v", err)
	}
	// Let the deadline that write set pass: the passage of time is the
	// event this test is about.
	<-time.After(10 * writeTimeout)
	second := appendFrame(nil, opText, []byte(`{"n":2}`))
	if !l.SendMessage([]byte(`{"n":2}`)) {
		t.Fatalf("got Send false, want the frame taken")
	}
	l.mu.Lock()
	closing, lost := l.closing, l.lost
	l.mu.Unlock()
	if closing {
		t.Fatalf("got the socket closing (%v), want the frame written", lost)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(first)+len(second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("failed to read both frames: %v", err)
	}
	if want := string(first) + string(second); string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
