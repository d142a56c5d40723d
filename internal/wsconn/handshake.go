package wsconn

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Accept performs the server's side of the opening handshake (RFC 6455
// section 4.2) and takes the connection over from net/http. A request that
// is not a valid WebSocket handshake gets an HTTP error (405, 400, 426 with
// the headers that say what is needed, or 403 for an Origin not allowed;
// the body is Options.Refuse's) and Accept returns an error saying why. No subprotocol and no extension is
// ever negotiated. Bytes the client sent right after its request (a first
// message in the same packet) are kept and parsed first.
func Accept(w http.ResponseWriter, r *http.Request, o *Options) (*Conn, error) {
	key, status, err := checkHandshake(w.Header(), r)
	if err == nil && !o.SkipOriginCheck {
		if err = checkOrigin(r, o.OriginPatterns); err != nil {
			status = http.StatusForbidden
		}
	}
	if err != nil {
		o.refuse(w, status, err)
		return nil, err
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		err = fmt.Errorf("failed to hijack the connection: %w", err)
		o.refuse(w, http.StatusInternalServerError, err)
		return nil, err
	}
	// The deadlines net/http set for the request do not apply to the
	// socket: from now on each write has its own, and reads have none.
	nc.SetDeadline(time.Time{})
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	// brw is dropped here: its buffers are net/http's, 4 KiB each, and the
	// connection keeps only its own small one.
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(key) + "\r\n\r\n"
	nc.SetWriteDeadline(time.Now().Add(o.writeTimeout()))
	if _, err := nc.Write([]byte(resp)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("failed to write the handshake response: %w", err)
	}
	nc.SetWriteDeadline(time.Time{})
	return newConn(nc, early, o), nil
}

// refuse answers a request that Accept does not take.
func (o *Options) refuse(w http.ResponseWriter, status int, err error) {
	if o.Refuse != nil {
		o.Refuse(w, status, err)
		return
	}
	http.Error(w, err.Error(), status)
}

// checkHandshake checks r as an opening handshake and returns its key; if
// it is not one, it returns the HTTP status to answer with and sets the
// headers that go with it in h.
func checkHandshake(h http.Header, r *http.Request) (key string, status int, err error) {
	switch {
	case r.Method != http.MethodGet:
		h.Set("Allow", http.MethodGet)
		return "", http.StatusMethodNotAllowed, fmt.Errorf("WebSocket handshake with method %s, want GET", r.Method)
	case !r.ProtoAtLeast(1, 1) || r.ProtoMajor != 1:
		return "", http.StatusBadRequest, fmt.Errorf("WebSocket handshake over %s, want HTTP/1.1", r.Proto)
	case !headerHasToken(r.Header, "Connection", "upgrade"), !headerHasToken(r.Header, "Upgrade", "websocket"):
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		return "", http.StatusUpgradeRequired, fmt.Errorf("WebSocket handshake with Connection %q and Upgrade %q, want Upgrade and websocket",
			r.Header.Get("Connection"), r.Header.Get("Upgrade"))
	case strings.TrimSpace(r.Header.Get("Sec-WebSocket-Version")) != "13" || len(r.Header.Values("Sec-WebSocket-Version")) != 1:
		h.Set("Sec-WebSocket-Version", "13")
		return "", http.StatusUpgradeRequired, fmt.Errorf("WebSocket version %q, want 13", r.Header.Values("Sec-WebSocket-Version"))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "", http.StatusBadRequest, fmt.Errorf("WebSocket handshake with %d Sec-WebSocket-Key headers, want 1", len(keys))
	}
	key = strings.TrimSpace(keys[0])
	if nonce, err := base64.StdEncoding.DecodeString(key); err != nil || len(nonce) != 16 {
		return "", http.StatusBadRequest, fmt.Errorf("invalid Sec-WebSocket-Key %q: want 16 bytes in base64", truncate(key, 40))
	}
	return key, 0, nil
}

// headerHasToken reports whether the comma-separated values of header name
// include token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkOrigin allows a request without Origin (not from a web page), an
// Origin whose host is the request's Host, and one matching a pattern:
// path.Match, case-insensitive, against the Origin's host, or its
// scheme://host when the pattern has "://". This is what
// github.com/coder/websocket's OriginPatterns did for this server before.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("failed to parse Origin %q: %w", truncate(origin, 80), err)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, pattern := range patterns {
		target := u.Host
		if strings.Contains(pattern, "://") {
			target = u.Scheme + "://" + u.Host
		}
		matched, err := path.Match(strings.ToLower(pattern), strings.ToLower(target))
		if err != nil {
			return fmt.Errorf("failed to match Origin pattern %q: %w", pattern, err)
		}
		if matched {
			return nil
		}
	}
	return fmt.Errorf("%w: %q for host %q", errOriginNotAllowed, truncate(origin, 80), truncate(r.Host, 80))
}

var errOriginNotAllowed = errors.New("origin not allowed")

// acceptKey is the Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
