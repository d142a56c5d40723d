package transport

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// A write through the writer goroutine sets a deadline on the connection; a
// frame written at once long after it must not fail on that old deadline.
func TestWriteAtOnceAfterQueuedWriteDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("failed to dial: %v", err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatalf("failed to accept: %v", err)
	}
	defer raw.Close()
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
	if !l.Send([]byte(`{"n":2}`)) {
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
