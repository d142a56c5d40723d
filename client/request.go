package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/protocol"
)

// The socket under a client: requests and the answers matched to them,
// writing, events, connecting and installing a socket, and when to renew
// the token.

// request sends a message of type typ (with status, for set_status) with a
// new ref, and waits for its answer. already, if set, is called under c.mu
// after the message is queued; if it reports true, the hub will not answer
// (the device is in the state asked for), and request returns once the
// message is sent.
func (c *Client) request(ctx context.Context, typ, status string, already func() bool) (result, error) {
	for {
		c.mu.Lock()
		if c.stopped || c.closing || c.bye != nil {
			err := c.closedErrLocked()
			c.mu.Unlock()
			return result{}, err
		}
		conn := c.conn
		if conn == nil {
			ready := c.ready
			c.mu.Unlock()
			select {
			case <-ready:
				continue
			case <-c.done:
				return result{}, c.closedErr()
			case <-ctx.Done():
				return result{}, ctx.Err()
			}
		}
		c.seq++
		p := &request{kind: typ, ref: c.refPrefix + strconv.FormatUint(c.seq, 10), seq: c.seq, done: make(chan result, 1)}
		c.pending[p.ref] = p
		skip := already != nil && already()
		c.mu.Unlock()

		err := c.write(ctx, conn, protocol.ClientMessage{Type: typ, Status: status, Ref: p.ref})
		if err != nil || skip {
			c.forget(p)
			return result{}, err
		}
		select {
		case r := <-p.done:
			return r, r.err
		case <-ctx.Done():
			c.forget(p)
			return result{}, ctx.Err()
		}
	}
}

// closedErr is what calls return once the client is closed: ErrClosed,
// with why it stopped if it did not stop on Close or Bye.
func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedErrLocked()
}

func (c *Client) closedErrLocked() error {
	if c.err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, c.err)
	}
	return ErrClosed
}

func (c *Client) forget(p *request) {
	c.mu.Lock()
	delete(c.pending, p.ref)
	c.mu.Unlock()
}

// resolveLocked answers p and forgets it.
func (c *Client) resolveLocked(p *request, r result) {
	delete(c.pending, p.ref)
	p.done <- r
}

// failPendingLocked answers every pending request with err.
func (c *Client) failPendingLocked(err error) {
	for _, p := range c.pending {
		c.resolveLocked(p, result{err: err})
	}
}

// write sends one message on conn. A write that ctx interrupts halfway
// leaves the socket unusable: coder/websocket closes it, and the client
// reconnects.
func (c *Client) write(ctx context.Context, conn *websocket.Conn, m protocol.ClientMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, b)
}

// emit queues ev on the Events channel, dropping the oldest event if the
// channel is full. It never blocks.
func (c *Client) emit(ev Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.evClosed {
		return
	}
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case <-c.events:
			c.dropped.Add(1)
		default:
		}
	}
}

// deviceID is the id to send in a hello: the one the hub gave, or the
// configured one before the first welcome.
func (c *Client) deviceID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.welcome.Device != "" {
		return c.welcome.Device
	}
	return c.cfg.Device.ID
}

// connect opens one socket, at the URL that names token's site, says hello
// with token and waits for the welcome.
func (c *Client) connect(ctx context.Context, token string) (*websocket.Conn, Welcome, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	url := agentURL(c.url, token)
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c.cfg.HTTPClient, HTTPHeader: c.cfg.HTTPHeader})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			err = &HTTPError{StatusCode: resp.StatusCode, Err: err}
		}
		return nil, Welcome{}, fmt.Errorf("failed to dial %s: %w", url, err)
	}
	conn.SetReadLimit(readLimit)
	hello := protocol.ClientMessage{Type: protocol.TypeHello, Token: token, Device: &protocol.HelloDevice{ID: c.deviceID(), Kind: c.cfg.Device.Kind}}
	if err := c.write(ctx, conn, hello); err != nil {
		conn.CloseNow()
		return nil, Welcome{}, fmt.Errorf("failed to say hello to %s: %w", url, err)
	}
	var last *Error
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			conn.CloseNow()
			return nil, Welcome{}, fmt.Errorf("failed to get a welcome from %s: %w", url, closeError(err, last))
		}
		if typ != websocket.MessageText {
			continue
		}
		switch frameType(data) {
		case "welcome":
			var w protocol.Welcome
			if err := json.Unmarshal(data, &w); err != nil {
				conn.CloseNow()
				return nil, Welcome{}, fmt.Errorf("failed to read the welcome from %s: %w", url, err)
			}
			return conn, fromWelcome(w), nil
		case "error":
			last = decodeError(data)
		}
	}
}

// install makes conn, just welcomed with w, the client's socket.
func (c *Client) install(conn *websocket.Conn, w Welcome, token string) {
	c.mu.Lock()
	c.conn = conn
	close(c.ready)
	c.welcome, c.devices, c.token = w, w.Devices, token
	c.scheduleRefreshLocked()
	bye, background, roster := c.bye != nil, c.background, c.roster
	c.mu.Unlock()
	c.emit(w.clone())
	c.emit(State{State: Open})
	c.resume(conn, bye, background, roster)
}

// resume says on a new session what the device said on the one before and
// the hub does not carry over: bye, background mode, the roster
// subscription. Never the status: the stored one wins.
func (c *Client) resume(conn *websocket.Conn, bye, background, roster bool) {
	ctx := c.ctx
	switch {
	case bye:
		c.write(ctx, conn, protocol.ClientMessage{Type: protocol.TypeBye})
		return
	case background:
		c.write(ctx, conn, protocol.ClientMessage{Type: protocol.TypeBackground})
	}
	if roster {
		c.write(ctx, conn, protocol.ClientMessage{Type: protocol.TypeSubscribeRoster})
	}
}

// expiring reports whether token is past the time to replace it.
func (c *Client) expiring(token string) bool {
	tc := readToken(token)
	at := refreshAt(tc.iat, tc.exp, time.Now())
	return !at.IsZero() && !time.Now().Before(at)
}

// scheduleRefreshLocked arms the refresh of the token in use.
func (c *Client) scheduleRefreshLocked() {
	c.stopRefreshLocked()
	if c.cfg.TokenFunc == nil || c.cfg.noRefresh || c.bye != nil {
		return
	}
	tc := readToken(c.token)
	at := refreshAt(tc.iat, tc.exp, time.Now())
	if at.IsZero() {
		return
	}
	c.refresh = time.AfterFunc(time.Until(at), c.rotate)
}

func (c *Client) stopRefreshLocked() {
	if c.refresh != nil {
		c.refresh.Stop()
		c.refresh = nil
	}
}

// frameType returns the type of a frame, or "" if it is not a JSON object
// with one.
func frameType(data []byte) string {
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &head) != nil {
		return ""
	}
	return head.Type
}

func decodeError(data []byte) *Error {
	var f protocol.ErrorFrame
	json.Unmarshal(data, &f)
	return &Error{Code: f.Code, Message: f.Message, Ref: f.Ref}
}

// closeError returns a *CloseError for a socket the hub closed, with the
// error frame that came just before, or err as it is.
func closeError(err error, frame *Error) error {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return err
	}
	return &CloseError{Code: int(ce.Code), Reason: ce.Reason, Frame: frame}
}
