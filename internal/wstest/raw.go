package wstest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Opcodes of RFC 6455 section 5.2, for building and reading raw frames.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// RawOptions configures DialRaw.
type RawOptions struct {
	// Header is merged into the hand-written handshake: a key replaces the
	// default header of that name, and a key with no values removes it.
	Header http.Header
	// Wait bounds the handshake and every later read or write; default
	// DefaultWait. It is a deadline for failing, never a measurement.
	Wait time.Duration
}

// RawClient is a WebSocket client over a plain TCP connection. Its
// handshake is written by hand; it writes whatever bytes or frames it is
// given (masked or not, well-formed or not); and it parses every frame the
// server sends strictly by the rules RFC 6455 sets for servers: unmasked,
// RSV bits clear, known opcodes, minimal length encoding, control frames of
// at most 125 bytes and never fragmented, continuation frames only inside a
// fragmented message, text messages valid UTF-8, close frames with a code a
// server may send and a valid UTF-8 reason, and nothing at all after a close
// frame.
//
// Its methods return errors rather than failing the test, so that many
// clients can run on goroutines of their own; it is not safe for
// concurrent use by several goroutines.
type RawClient struct {
	// Conn is the TCP connection, for writing raw bytes or closing abruptly.
	Conn net.Conn
	br   *bufio.Reader
	wait time.Duration

	// msgOp is the opcode of the fragmented message being read, 0 if none;
	// msg holds its payload so far.
	msgOp byte
	msg   []byte
	// closeRead is set once the server's close frame was read: nothing may
	// follow it.
	closeRead bool
}

// RawFrame is one frame from the server; for data frames, the whole message
// once its last fragment arrived (Op is then the message's opcode).
type RawFrame struct {
	Op      byte
	Payload []byte
}

// CloseCode returns the code of a close frame, or 1005 (no status) if it
// has none.
func (f RawFrame) CloseCode() int {
	if len(f.Payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(f.Payload))
}

// CloseReason returns the reason of a close frame.
func (f RawFrame) CloseReason() string {
	if len(f.Payload) < 2 {
		return ""
	}
	return string(f.Payload[2:])
}

func (f RawFrame) String() string {
	switch f.Op {
	case OpClose:
		return fmt.Sprintf("close %d %q", f.CloseCode(), f.CloseReason())
	case OpText:
		return fmt.Sprintf("text %s", f.Payload)
	}
	return fmt.Sprintf("op 0x%x % x", f.Op, f.Payload)
}

// ErrRefused is wrapped by DialRaw's error when the server answered the
// handshake with something other than 101.
var ErrRefused = errors.New("handshake refused")

// DialRaw opens a TCP connection to the ws:// url and performs the opening
// handshake. When the server refuses it, the error wraps ErrRefused and the
// response is returned (its body readable). The connection closes when the
// test ends.
func DialRaw(t testing.TB, rawURL string, o RawOptions) (*RawClient, *http.Response, error) {
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to parse %s: %w", rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, o.Wait)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to dial %s: %w", u.Host, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &RawClient{Conn: conn, br: bufio.NewReader(conn), wait: o.Wait}

	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	h := http.Header{}
	h.Set("Host", u.Host)
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	for k, v := range o.Header {
		h[http.CanonicalHeaderKey(k)] = v
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\n", u.RequestURI())
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if err := c.Write([]byte(req.String())); err != nil {
		return nil, nil, err
	}
	conn.SetReadDeadline(time.Now().Add(o.Wait))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp, fmt.Errorf("%w: HTTP %d", ErrRefused, resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return nil, resp, fmt.Errorf("got Upgrade %q in the 101, want websocket", resp.Header.Get("Upgrade"))
	case !strings.EqualFold(resp.Header.Get("Connection"), "upgrade"):
		return nil, resp, fmt.Errorf("got Connection %q in the 101, want Upgrade", resp.Header.Get("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return nil, resp, fmt.Errorf("got Sec-WebSocket-Accept %q, want the key's digest", resp.Header.Get("Sec-WebSocket-Accept"))
	case len(resp.Header.Values("Sec-WebSocket-Extensions")) > 0:
		return nil, resp, fmt.Errorf("got extensions %q, none asked for", resp.Header.Values("Sec-WebSocket-Extensions"))
	case len(resp.Header.Values("Sec-WebSocket-Protocol")) > 0:
		return nil, resp, fmt.Errorf("got subprotocol %q, none asked for", resp.Header.Values("Sec-WebSocket-Protocol"))
	}
	return c, resp, nil
}

// Write writes b as it is.
func (c *RawClient) Write(b []byte) error {
	c.Conn.SetWriteDeadline(time.Now().Add(c.wait))
	if _, err := c.Conn.Write(b); err != nil {
		return fmt.Errorf("failed to write: %w", err)
	}
	return nil
}

// WriteFrame writes one final, masked frame of opcode op.
func (c *RawClient) WriteFrame(op byte, payload []byte) error {
	return c.Write(ClientFrame(true, 0, op, payload))
}

// WriteText writes one final, masked text frame.
func (c *RawClient) WriteText(payload []byte) error { return c.WriteFrame(OpText, payload) }

// ClientFrame returns a client frame: the FIN bit, the RSV bits rsv (0-7),
// opcode op, and payload masked with a fixed key that changes every byte.
func ClientFrame(fin bool, rsv, op byte, payload []byte) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b := frameHeader(fin, rsv, op, true, len(payload))
	b = append(b, key[:]...)
	for i, p := range payload {
		b = append(b, p^key[i&3])
	}
	return b
}

// UnmaskedFrame returns a final frame of opcode op that is not masked, which
// a client must never send.
func UnmaskedFrame(op byte, payload []byte) []byte {
	return append(frameHeader(true, 0, op, false, len(payload)), payload...)
}

func frameHeader(fin bool, rsv, op byte, masked bool, n int) []byte {
	b0 := rsv<<4 | op&0xF
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		return []byte{b0, m | byte(n)}
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16([]byte{b0, m | 126}, uint16(n))
	}
	return binary.BigEndian.AppendUint64([]byte{b0, m | 127}, uint64(n))
}

// ReadFrame returns the next frame or whole data message from the server,
// answering nothing. It returns an error for anything the server must not
// send, and io.EOF once the server closed the connection after its close
// frame (before it, an early end is an error).
func (c *RawClient) ReadFrame() (RawFrame, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.wait))
	if c.closeRead {
		// Nothing may follow the close frame: the next thing must be the
		// end of the connection.
		var b [64]byte
		n, err := c.br.Read(b[:])
		if n > 0 {
			return RawFrame{}, fmt.Errorf("got %d bytes after the close frame: % x", n, b[:n])
		}
		if isEnd(err) {
			return RawFrame{}, io.EOF
		}
		return RawFrame{}, fmt.Errorf("failed to read to the end after the close frame: %w", err)
	}
	for {
		f, fin, err := c.readOneFrame()
		if err != nil {
			return RawFrame{}, err
		}
		switch {
		case f.Op >= OpClose:
			if f.Op == OpClose {
				c.closeRead = true
			}
			return f, nil
		case f.Op == OpContinuation && c.msgOp == 0:
			return RawFrame{}, errors.New("got a continuation frame outside a fragmented message")
		case f.Op != OpContinuation && c.msgOp != 0:
			return RawFrame{}, fmt.Errorf("got a new data frame (op 0x%x) inside a fragmented message", f.Op)
		case f.Op != OpContinuation:
			c.msgOp, c.msg = f.Op, nil
		}
		c.msg = append(c.msg, f.Payload...)
		if !fin {
			continue
		}
		m := RawFrame{Op: c.msgOp, Payload: c.msg}
		c.msgOp, c.msg = 0, nil
		if m.Op == OpText && !utf8.Valid(m.Payload) {
			return RawFrame{}, fmt.Errorf("got a text message that is not valid UTF-8: % x", m.Payload)
		}
		return m, nil
	}
}

// readOneFrame reads and checks one frame.
func (c *RawClient) readOneFrame() (RawFrame, bool, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return RawFrame{}, false, fmt.Errorf("failed to read a frame header before the close frame: %w", err)
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0F
	switch {
	case rsv != 0:
		return RawFrame{}, false, fmt.Errorf("got RSV bits 0x%x set (header % x)", rsv, h)
	case h[1]&0x80 != 0:
		return RawFrame{}, false, fmt.Errorf("got a masked frame from the server (header % x)", h)
	case op > OpBinary && op < OpClose || op > OpPong:
		return RawFrame{}, false, fmt.Errorf("got reserved opcode 0x%x", op)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return RawFrame{}, false, fmt.Errorf("failed to read a 16-bit length: %w", err)
		}
		if n = uint64(binary.BigEndian.Uint16(ext[:])); n < 126 {
			return RawFrame{}, false, fmt.Errorf("got length %d in 16 bits, want the minimal encoding", n)
		}
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c.br, ext[:]); err != nil {
			return RawFrame{}, false, fmt.Errorf("failed to read a 64-bit length: %w", err)
		}
		if n = binary.BigEndian.Uint64(ext[:]); n>>63 != 0 || n <= 0xFFFF {
			return RawFrame{}, false, fmt.Errorf("got length %d in 64 bits, want the minimal encoding and the top bit clear", n)
		}
	}
	if op >= OpClose && (n > 125 || !fin) {
		return RawFrame{}, false, fmt.Errorf("got control frame op 0x%x with %d bytes, fin %v: want at most 125 and fin", op, n, fin)
	}
	if n > 16<<20 {
		return RawFrame{}, false, fmt.Errorf("got a %d-byte frame, more than this client takes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return RawFrame{}, false, fmt.Errorf("failed to read a %d-byte payload: %w", n, err)
	}
	f := RawFrame{Op: op, Payload: payload}
	if op == OpClose {
		if err := checkServerClose(payload); err != nil {
			return RawFrame{}, false, err
		}
	}
	return f, fin, nil
}

// checkServerClose checks a close frame's payload from a server: empty, or
// a code a server may send and a valid UTF-8 reason.
func checkServerClose(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) == 1 {
		return errors.New("got a close frame with a 1-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return fmt.Errorf("got close code %d, which may not be sent", code)
	}
	if !utf8.Valid(p[2:]) {
		return fmt.Errorf("got close reason % x that is not valid UTF-8", p[2:])
	}
	return nil
}

// ValidCloseCode reports whether an endpoint may send code in a close frame
// (RFC 6455 section 7.4 and the IANA registry). It is written here again,
// not taken from the server's code, so that the check does not share the
// server's mistakes.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ReadUntilClose reads until the server's close frame and returns the data
// messages before it and the close frame. With reply, it answers the close
// with a close frame of the same code, as a client should. Either way it
// then reads until the server closes the connection and fails if any byte
// follows the close frame. Pings before the close are not answered.
func (c *RawClient) ReadUntilClose(reply bool) (msgs []RawFrame, closeFrame RawFrame, err error) {
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return msgs, RawFrame{}, err
		}
		switch f.Op {
		case OpPing, OpPong:
			continue
		case OpClose:
			closeFrame = f
		default:
			msgs = append(msgs, f)
			continue
		}
		break
	}
	if reply {
		var p []byte
		if code := closeFrame.CloseCode(); code != 1005 {
			p = binary.BigEndian.AppendUint16(nil, uint16(code))
		}
		// The server may have closed the connection already; what matters
		// is what it sends.
		c.Write(ClientFrame(true, 0, OpClose, p))
	}
	if _, err := c.ReadFrame(); err != io.EOF {
		return msgs, closeFrame, err
	}
	return msgs, closeFrame, nil
}

// isEnd reports whether err is the end of the connection: EOF, or a reset
// by a server that closed it with bytes of ours unread.
func isEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
