package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/protocol"
)

// run is the client's goroutine: it reads the socket, and when the socket
// ends, switches to the one a token refresh opened, reconnects, or stops.
func (c *Client) run(conn *websocket.Conn) {
	bo := backoff{base: c.cfg.MinBackoff, cap: c.cfg.MaxBackoff}
	welcomed := time.Now()
	for {
		err := c.read(conn)
		if next, w := c.switchRetired(conn); next != nil {
			c.emit(w)
			conn = next
			continue
		}
		c.mu.Lock()
		closing, bye := c.closing, c.bye != nil
		c.mu.Unlock()
		if closing {
			c.stop(nil)
			return
		}
		code := -1
		var ce *CloseError
		if errors.As(err, &ce) {
			code = ce.Code
		}
		switch {
		case bye && (code == int(websocket.StatusNormalClosure) || code == int(protocol.CloseRevoked)):
			c.stopLoggedOut() // or signed out by an admin meanwhile
			return
		case code == int(protocol.CloseReplaced) || code == int(protocol.CloseRevoked) || code == int(protocol.CloseTooManyDevices):
			c.stop(err)
			return
		case code == int(protocol.CloseBadHello) && c.cfg.TokenFunc == nil:
			c.stop(err)
			return
		}
		// Reconnect: the socket dropped, the hub shuts down or failed
		// (1001, 1011, 1013), the client was too slow (1008), the token
		// expired (4001), or a bye was not stored (4004) or not answered.
		if time.Since(welcomed) >= time.Second && code != int(websocket.StatusPolicyViolation) {
			bo.reset()
		}
		if code == int(websocket.StatusPolicyViolation) {
			bo.atLeast(3)
		}
		c.mu.Lock()
		c.conn = nil
		c.ready = make(chan struct{})
		c.stopRefreshLocked()
		c.failPendingLocked(fmt.Errorf("%w: %w", ErrConnectionLost, err))
		c.mu.Unlock()
		if conn, err = c.reconnect(&bo, err, code == int(protocol.CloseBadHello)); conn == nil {
			c.stop(err)
			return
		}
		welcomed = time.Now()
	}
}

// switchRetired returns the socket a token refresh opened, and its welcome,
// when conn, which just ended, is the one it replaced; nil otherwise. If a
// refresh is under way, it waits for its outcome first.
func (c *Client) switchRetired(conn *websocket.Conn) (*websocket.Conn, Welcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rot := c.rotation; rot != nil && conn == c.conn {
		c.mu.Unlock()
		select {
		case <-rot:
		case <-c.ctx.Done():
		}
		c.mu.Lock()
	}
	if conn != c.retired || c.retired == nil {
		return nil, Welcome{}
	}
	c.retired = nil
	if c.retireTimer != nil {
		c.retireTimer.Stop()
		c.retireTimer = nil
	}
	return c.conn, c.welcome.clone()
}

// reconnect connects again, with backoff, until it succeeds or the client
// stops; it returns nil and why if the client should stop (nil after Close).
// cause is why the last socket ended; needToken says the hub refused the
// token.
func (c *Client) reconnect(bo *backoff, cause error, needToken bool) (*websocket.Conn, error) {
	refused := 0 // fresh tokens refused in a row
	for {
		delay := bo.next()
		c.emit(State{State: Connecting, Err: cause, Delay: delay})
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		c.mu.Lock()
		token := c.token
		c.mu.Unlock()
		fresh := false
		if c.cfg.TokenFunc != nil && (needToken || c.expiring(token)) {
			tok, err := c.cfg.TokenFunc(c.ctx)
			if c.ctx.Err() != nil {
				return nil, nil
			}
			if err != nil {
				cause = fmt.Errorf("failed to get a token: %w", err) // the next Connecting state says it
				continue
			}
			token, fresh, needToken = tok, true, false
		}
		conn, w, err := c.connect(c.ctx, token)
		if c.ctx.Err() != nil {
			if conn != nil {
				conn.CloseNow()
			}
			return nil, nil
		}
		if err == nil {
			c.install(conn, w, token)
			return conn, nil
		}
		cause = err
		// Anything else (the network, an HTTP error from a proxy while
		// the hub restarts, 1011, 1013) is tried again.
		var ce *CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == int(protocol.CloseBadHello):
			if c.cfg.TokenFunc == nil {
				return nil, err
			}
			if fresh {
				if refused++; refused >= 2 {
					return nil, err
				}
			}
			needToken = true
		case errors.As(err, &ce) && (ce.Code == int(protocol.CloseReplaced) || ce.Code == int(protocol.CloseTooManyDevices)):
			return nil, err
		}
	}
}

// read reads conn until it ends, handling each frame, and returns why it
// ended: a *CloseError when the hub closed it.
func (c *Client) read(conn *websocket.Conn) error {
	var last *Error // the last frame, if it was an error answering no call
	for {
		typ, data, err := conn.Read(c.ctx)
		if err != nil {
			return closeError(err, last)
		}
		if typ == websocket.MessageText {
			last = c.handle(conn, data)
		}
	}
}

// handle handles one frame from conn. It returns the frame's error if it
// is an error frame that answers no call.
func (c *Client) handle(conn *websocket.Conn, data []byte) *Error {
	switch frameType(data) {
	case "status":
		var f protocol.StatusFrame
		if json.Unmarshal(data, &f) != nil {
			return nil
		}
		s := fromStatus(f)
		c.mu.Lock()
		c.answerStatusLocked(s)
		c.mu.Unlock()
		c.emit(s)
	case "devices":
		var f protocol.DevicesFrame
		if json.Unmarshal(data, &f) != nil {
			return nil
		}
		d := Devices{Devices: fromDevices(f.Devices)}
		c.mu.Lock()
		c.devices = d.Devices
		c.answerModeLocked()
		c.mu.Unlock()
		c.emit(d)
	case "roster":
		var f protocol.RosterFrame
		if json.Unmarshal(data, &f) != nil {
			return nil
		}
		r := fromRoster(f)
		c.mu.Lock()
		for _, p := range c.pending {
			if p.kind == protocol.TypeSubscribeRoster {
				c.resolveLocked(p, result{roster: r})
			}
		}
		c.mu.Unlock()
		c.emit(r)
	case "agent":
		var f protocol.AgentFrame
		if json.Unmarshal(data, &f) != nil {
			return nil
		}
		c.emit(AgentStatus{ID: f.ID, Status: string(f.Status), Groups: f.Groups})
	case "hours":
		var f protocol.HoursFrame
		if json.Unmarshal(data, &f) != nil {
			return nil
		}
		c.emit(fromHours(f.Hours))
	case "error":
		e := decodeError(data)
		c.mu.Lock()
		p := c.pending[e.Ref]
		if p != nil {
			c.resolveLocked(p, result{err: e})
		}
		retired := conn == c.retired
		c.mu.Unlock()
		if p == nil && !retired { // a socket a token refresh replaced says nothing to the app
			c.emit(ErrorEvent{Err: e})
			return e
		}
	}
	return nil
}

// answerStatusLocked answers the SetStatus calls a status frame answers:
// the one whose ref it carries, if this device made the change, and the
// earlier calls of this client still waiting, which this later change
// replaced (the hub carries out a device's changes in order).
func (c *Client) answerStatusLocked(s Status) {
	if s.Ref == "" || s.By != ByDevice || s.ByDevice != c.welcome.Device {
		return
	}
	p := c.pending[s.Ref]
	if p == nil || p.kind != protocol.TypeSetStatus {
		return
	}
	for _, q := range c.pending {
		if q.kind == protocol.TypeSetStatus && q.seq <= p.seq {
			c.resolveLocked(q, result{status: s})
		}
	}
}

// answerModeLocked answers the Background and Foreground calls that the
// device's state in the latest devices frame confirms.
func (c *Client) answerModeLocked() {
	state := c.deviceStateLocked()
	for _, p := range c.pending {
		if p.kind == protocol.TypeBackground && state == Background || p.kind == protocol.TypeForeground && state == Live {
			c.resolveLocked(p, result{})
		}
	}
}

// stopLoggedOut ends the client once its logout is stored: Bye returns nil.
func (c *Client) stopLoggedOut() { c.end(nil, true) }

// stop ends the client with err (nil after Close).
func (c *Client) stop(err error) { c.end(err, false) }

// end ends the client with err (nil after Close or a logout): it answers
// every call still waiting, and a Bye (with nil only if loggedOut), ends
// the token refresh, closes the Events channel after a last State, and
// closes done.
func (c *Client) end(err error, loggedOut bool) {
	c.mu.Lock()
	if c.closing {
		err = nil
	}
	c.stopped, c.err = true, err
	c.stopRefreshLocked()
	if c.retireTimer != nil {
		c.retireTimer.Stop()
	}
	c.failPendingLocked(c.closedErrLocked())
	bw := c.bye
	conns := []*websocket.Conn{c.conn, c.retired}
	c.mu.Unlock()

	c.cancel()
	c.rotations.Wait()
	for _, conn := range conns {
		if conn != nil {
			conn.CloseNow()
		}
	}
	if bw != nil {
		switch {
		case loggedOut:
		case err != nil:
			bw.err = err
		default:
			bw.err = ErrClosed // closed before the logout was stored
		}
		close(bw.done)
	}
	c.emit(State{State: Closed, Err: err})
	c.evMu.Lock()
	c.evClosed = true
	close(c.events)
	c.evMu.Unlock()
	close(c.done)
}

// rotate replaces the token before it expires: it gets a new one, opens a
// second socket with it for the same device, and once that one is
// welcomed makes it the client's socket. The hub then closes the old one
// with 4002 (its session was replaced), which the reader reads to its end
// before it switches. It runs on the refresh timer's goroutine.
func (c *Client) rotate() {
	c.mu.Lock()
	if c.stopped || c.closing || c.bye != nil || c.conn == nil || c.rotation != nil {
		c.mu.Unlock()
		return
	}
	rot := make(chan struct{})
	c.rotation = rot
	c.rotations.Add(1)
	old := c.conn
	c.mu.Unlock()
	defer c.rotations.Done()

	token, err := c.cfg.TokenFunc(c.ctx)
	var conn *websocket.Conn
	var w Welcome
	if err != nil {
		err = fmt.Errorf("failed to refresh the token: %w", err)
	} else if conn, w, err = c.connect(c.ctx, token); err != nil {
		err = fmt.Errorf("failed to refresh the token: %w", err)
	}

	c.mu.Lock()
	c.rotation = nil
	defer close(rot)
	switch {
	case c.stopped || c.closing:
		c.mu.Unlock()
		if conn != nil {
			conn.CloseNow()
		}
		return
	case err != nil:
		// Try again a little later; if the token expires first, the hub
		// closes the socket (4001) and the reconnect asks for a token.
		c.stopRefreshLocked()
		c.refresh = time.AfterFunc(jitter(5*time.Second), c.rotate)
		c.mu.Unlock()
		c.emit(ErrorEvent{Err: err})
		return
	}
	c.retired, c.conn = old, conn
	c.welcome, c.devices, c.token = w, w.Devices, token
	c.scheduleRefreshLocked()
	c.retireTimer = time.AfterFunc(retireTimeout, func() { old.CloseNow() })
	background, roster := c.background, c.roster
	c.mu.Unlock()
	c.resume(conn, false, background, roster)
}
