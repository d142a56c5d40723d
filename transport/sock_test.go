package transport_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
)

// A client may send its first frame in the same packet as the upgrade
// request, so that net/http has read it already when the socket is handed
// over: the hello must still be read, whole.
func TestHelloInTheUpgradePacket(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})

	conn, err := net.Dial("tcp", r.http.Listener.Addr().String())
	if err != nil {
		t.Fatalf("failed to dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitTimeout))

	hello, _ := json.Marshal(map[string]any{"type": "hello", "token": mintToken(t, "acme", "alice"), "device": map[string]string{"kind": "desktop"}})
	req := "GET /v1/agent HTTP/1.1\r\nHost: " + r.http.Listener.Addr().String() + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), maskedTextFrame(hello)...)); err != nil {
		t.Fatalf("failed to write the upgrade and hello: %v", err)
	}

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("failed to read the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got status %d, want 101", resp.StatusCode)
	}
	payload := readServerFrame(t, br)
	if !strings.Contains(string(payload), `"type":"welcome"`) {
		t.Fatalf("got %s, want the welcome", payload)
	}
}

// maskedTextFrame frames payload as a client text frame, masked with a zero
// key (the payload bytes stay as they are).
func maskedTextFrame(payload []byte) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// readServerFrame reads one unmasked, unfragmented frame and returns its
// payload.
func readServerFrame(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("failed to read a frame header: %v", err)
	}
	if h[0] != 0x81 {
		t.Fatalf("got frame byte 0x%02x, want 0x81 (a final text frame)", h[0])
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			t.Fatalf("failed to read a frame length: %v", err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		t.Fatalf("got a 64-bit frame length, want a small frame")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatalf("failed to read a frame payload: %v", err)
	}
	return payload
}
