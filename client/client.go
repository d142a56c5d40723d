package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/protocol"
)

const (
	// handshakeTimeout bounds one connection: the opening handshake, the
	// hello and the welcome.
	handshakeTimeout = 30 * time.Second
	// writeTimeout bounds writing one message.
	writeTimeout = 10 * time.Second
	// retireTimeout is how long a socket replaced by a token refresh is
	// read after the new one is welcomed, waiting for the hub's 4002 (and
	// the frames before it), before it is closed anyway. The new socket is
	// not read meanwhile, so this stays well under the hub's pong timeout
	// (10 s).
	retireTimeout = 5 * time.Second
	// readLimit bounds a message from the hub (a large site's roster).
	readLimit = 16 << 20
	// defaultEventBuffer is Config.EventBuffer's default.
	defaultEventBuffer = 256
)

// Device says which device of the agent a Client is.
type Device struct {
	// ID is the device's id (a UUID) from an earlier run: keep
	// Welcome().Device in the app's storage and pass it here, so that a
	// restart of the app inside the grace continues the same device. Empty
	// on a device's first connection: the hub gives it one.
	ID string
	// Kind is Desktop, Mobile or Web (the default). Only a Mobile device
	// may go into background mode.
	Kind string
}

// Config configures Dial.
type Config struct {
	// URL is the hub: an http(s) or ws(s) URL of its root
	// ("https://presence.example.com"), or of /v1/agent itself. Each
	// socket's URL gets ?site= and the site of the token it says hello
	// with (read without verifying it), for load balancers that hash on
	// it (docs/routing.md); a query of URL's own is dropped.
	URL string
	// Token is the agent's token (docs/protocol.md, Tokens). It may be empty
	// when TokenFunc is set.
	Token string
	// TokenFunc, if set, gets a new token: when Token is empty, when the
	// token in use is about to expire (a quarter of its life before its
	// exp, at most a minute before), and after the hub refused one (close
	// 4001). Without it the client stops when its token expires. It is
	// called on the client's goroutines, never two calls at once; ctx ends
	// when the client closes. It must not call Close, which waits for it.
	TokenFunc func(ctx context.Context) (string, error)
	// Device is this device.
	Device Device
	// HTTPClient, if set, makes the opening handshakes (its Transport's
	// proxy, TLS and dialer apply); default http.DefaultClient.
	HTTPClient *http.Client
	// HTTPHeader is sent with every opening handshake. Agent sockets check
	// Origin: a native client sends none, which passes.
	HTTPHeader http.Header
	// MinBackoff and MaxBackoff bound the delay before each reconnect
	// attempt, drawn at random from 0 to MinBackoff * 2^attempt, at most
	// MaxBackoff (full jitter); default 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// EventBuffer is how many events the Events channel holds; default
	// 256. When it is full the oldest is dropped (see Events).
	EventBuffer int

	// noRefresh turns off refreshing tokens before they expire, for tests
	// of the refresh after 4001.
	noRefresh bool
}

// Client is one agent device connected to the hub. Its methods are safe for
// concurrent use.
type Client struct {
	cfg       Config
	url       string
	refPrefix string

	// ctx ends when the client stops: it bounds reads, reconnects and
	// TokenFunc calls.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once the client stopped and its goroutines ended

	events   chan Event
	evMu     sync.Mutex
	evClosed bool
	dropped  atomic.Int64

	rotations sync.WaitGroup // token refreshes under way

	mu sync.Mutex
	// conn is the socket messages go to; nil while reconnecting. ready is
	// closed while conn is set.
	conn  *websocket.Conn
	ready chan struct{}
	// retired is the socket a token refresh replaced, still read until the
	// hub closes it; retireTimer closes it if the hub does not.
	retired     *websocket.Conn
	retireTimer *time.Timer
	welcome     Welcome
	devices     []DeviceInfo
	token       string
	refresh     *time.Timer
	// rotation is closed when the token refresh under way ends; nil when
	// none is.
	rotation   chan struct{}
	pending    map[string]*request
	seq        uint64
	background bool // the app's last call was Background
	roster     bool // SubscribeRoster was called
	bye        *byeWait
	closing    bool // Close was called
	stopped    bool // the client stopped; err says why
	err        error
}

// request is a call waiting for the hub's answer.
type request struct {
	kind string // a protocol.Type*
	ref  string
	seq  uint64
	done chan result // buffered: the answer is never waited for
}

type result struct {
	status Status
	roster Roster
	err    error
}

// byeWait is a logout under way; done is closed with err set once it ends.
type byeWait struct {
	done chan struct{}
	err  error
}

// Dial connects a device to the hub: it opens the socket, says hello and
// waits for the welcome, within ctx (ctx bounds this first connection
// only). It fails if the hub refuses the device: a *CloseError for a bad
// token (4001, after asking TokenFunc for another once), another session of
// the device (4002) or too many devices (4003), an *HTTPError for a refused
// upgrade, or the network's error.
//
// From then on the client keeps the device connected until Close, Bye, or
// a close it does not come back from (4002, 4005, a token refused twice):
// it reconnects with backoff, with the same device id so that the agent's
// grace covers the gap, and never says the agent's status again (the
// status the hub stored wins); it refreshes the token before it expires.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	u, err := endpoint(cfg.URL, "/v1/agent", true)
	if err != nil {
		return nil, fmt.Errorf("failed to dial: %w", err)
	}
	if cfg.Token == "" && cfg.TokenFunc == nil {
		return nil, errors.New("failed to dial: Config has neither Token nor TokenFunc")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = defaultEventBuffer
	}
	c := &Client{
		cfg:       cfg,
		url:       u.String(),
		refPrefix: newRefPrefix(),
		done:      make(chan struct{}),
		events:    make(chan Event, cfg.EventBuffer),
		ready:     make(chan struct{}),
		pending:   make(map[string]*request),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	token, fresh := cfg.Token, false
	if cfg.TokenFunc != nil && (token == "" || c.expiring(token)) {
		if token, err = cfg.TokenFunc(ctx); err != nil {
			c.cancel()
			return nil, fmt.Errorf("failed to dial %s: failed to get a token: %w", c.url, err)
		}
		fresh = true
	}
	conn, w, err := c.connect(ctx, token)
	var ce *CloseError
	if errors.As(err, &ce) && ce.Code == int(protocol.CloseBadHello) && cfg.TokenFunc != nil && !fresh {
		if token, err = cfg.TokenFunc(ctx); err != nil {
			c.cancel()
			return nil, fmt.Errorf("failed to dial %s: failed to get a token: %w", c.url, err)
		}
		conn, w, err = c.connect(ctx, token)
	}
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.install(conn, w, token)
	go c.run(conn)
	return c, nil
}

// newRefPrefix returns a prefix for the refs of one client, so that its
// refs are not another device's.
func newRefPrefix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "go-" + hex.EncodeToString(b) + "-"
}

// Welcome returns the latest welcome: the session, the device id (keep it
// for the next run of the app), the agent, and what the hub said when the
// session started.
func (c *Client) Welcome() Welcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome.clone()
}

// Events returns the channel of what the hub says and of the connection's
// state: Welcome, Status, Devices, Roster and AgentStatus (after
// SubscribeRoster), Hours, State and ErrorEvent values. It is closed after
// the final State (Closed) once the client stopped.
//
// The channel holds Config.EventBuffer events. A client never waits for its
// reader: when the channel is full, the oldest event is dropped to make
// room (Dropped counts them), so an application that does not read Events
// loses nothing else, and one that falls behind gets the latest. Status,
// Devices, Hours and Welcome each carry the whole of what they describe;
// after dropped AgentStatus events, SubscribeRoster again for a whole
// Roster.
func (c *Client) Events() <-chan Event { return c.events }

// Dropped returns how many events were dropped because the Events channel
// was full.
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// Done returns a channel that is closed once the client stopped: Close, Bye,
// or a close it does not come back from. Err says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped: nil after Close or a successful Bye, a
// *CloseError matching ErrReplaced, ErrRevoked, ErrTooManyDevices or
// ErrTokenRefused otherwise. It returns nil while the client runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// SetStatus sets the agent's status (Online, Busy or Offline) on every
// device of theirs, and returns the hub's status frame for this change (its
// Ref is the change's). It waits for a connection while the client
// reconnects, up to ctx.
//
// It fails with the hub's *Error: ErrUnavailable if NATS did not confirm
// the change in time (it may still apply: a Status event with the returned
// error's Ref says it did), ErrRateLimited if the device sent too many
// (the change was not made), ErrBadRequest for an unknown status. It fails
// with ErrConnectionLost if the socket dropped before the answer (the
// status in the next Welcome says whether it applied).
//
// The hub carries out a device's changes in order, so the answer to a later
// SetStatus of this client also answers an earlier one still waiting (a
// replica that runs behind may send the newer status alone). A change made
// elsewhere does not: SetStatus then waits for its own answer, up to ctx.
func (c *Client) SetStatus(ctx context.Context, status string) (Status, error) {
	r, err := c.request(ctx, protocol.TypeSetStatus, status, nil)
	if err != nil {
		return Status{}, fmt.Errorf("failed to set status %s: %w", status, err)
	}
	return r.status, nil
}

// SubscribeRoster asks for the site's roster and returns it; from then on,
// AgentStatus events say each time an agent's effective status or groups
// change, and the client subscribes again after every reconnect (a Roster
// event then carries the whole roster again).
func (c *Client) SubscribeRoster(ctx context.Context) (Roster, error) {
	c.mu.Lock()
	c.roster = true
	c.mu.Unlock()
	r, err := c.request(ctx, protocol.TypeSubscribeRoster, "", nil)
	if err != nil {
		return Roster{}, fmt.Errorf("failed to subscribe to the roster: %w", err)
	}
	return r.roster, nil
}

// Activity tells the hub the person interacted with this device: on input
// and focus, at most every 30 s or so, and when a mobile app comes to the
// foreground. With the site's idle rule on, it postpones the agent's idle
// deadline, and brings back online an agent the rule set away. The hub
// never answers it. While the client reconnects it does nothing: the hello
// of the reconnect counts as activity.
func (c *Client) Activity(ctx context.Context) error {
	c.mu.Lock()
	conn, stopped := c.conn, c.stopped || c.closing || c.bye != nil
	c.mu.Unlock()
	if stopped {
		return fmt.Errorf("failed to send activity: %w", c.closedErr())
	}
	if conn == nil {
		return nil
	}
	if err := c.write(ctx, conn, protocol.ClientMessage{Type: protocol.TypeActivity}); err != nil {
		return fmt.Errorf("failed to send activity: %w", err)
	}
	return nil
}

// Background puts a Mobile device into background mode: call it before the
// operating system suspends the app. With the site's background setting on,
// the device's lease then lasts the site's background max instead of the
// grace once its socket drops, so that the agent stays reachable by push.
// It returns once the hub confirms (the device shows State Background in
// Devices), or the hub's *Error (ErrBadRequest: the site's setting is off,
// or the device is not Mobile). The client keeps the mode across
// reconnects (a new hello ends it, so it says background again) until
// Foreground.
func (c *Client) Background(ctx context.Context) error {
	if err := c.setMode(ctx, true); err != nil {
		return fmt.Errorf("failed to go to the background: %w", err)
	}
	return nil
}

// Foreground ends background mode: the lease is a live one again, with the
// grace. Call Activity too when the person is back.
func (c *Client) Foreground(ctx context.Context) error {
	if err := c.setMode(ctx, false); err != nil {
		return fmt.Errorf("failed to come to the foreground: %w", err)
	}
	return nil
}

func (c *Client) setMode(ctx context.Context, background bool) error {
	c.mu.Lock()
	c.background = background
	c.mu.Unlock()
	typ, want := protocol.TypeForeground, Live
	if background {
		typ, want = protocol.TypeBackground, Background
	}
	_, err := c.request(ctx, typ, "", func() bool { return c.deviceStateLocked() == want })
	return err
}

// deviceStateLocked returns this device's state in the latest list of
// devices, or "".
func (c *Client) deviceStateLocked() string {
	for _, d := range c.devices {
		if d.ID == c.welcome.Device {
			return d.State
		}
	}
	return ""
}

// Bye logs the device out: its lease is removed at once, with no grace (if
// it was the agent's last device, the agent is offline for everyone at
// once), and the client stops. It returns once the hub stored the logout:
// when the hub could not store it in time (close 4004) or the socket
// dropped first, the client reconnects and says bye again, until ctx ends.
// If ctx ends first, Bye closes the client and returns ctx's error: the
// logout may not be stored, and the agent keeps their status until the
// grace runs out.
func (c *Client) Bye(ctx context.Context) error {
	c.mu.Lock()
	for c.rotation != nil { // a token refresh is switching sockets: let it finish
		rot := c.rotation
		c.mu.Unlock()
		select {
		case <-rot:
		case <-ctx.Done():
			c.Close()
			return fmt.Errorf("failed to log out: %w", ctx.Err())
		}
		c.mu.Lock()
	}
	if c.stopped || c.closing {
		err := c.closedErrLocked()
		c.mu.Unlock()
		return fmt.Errorf("failed to log out: %w", err)
	}
	var conn *websocket.Conn
	if c.bye == nil {
		c.bye = &byeWait{done: make(chan struct{})}
		c.stopRefreshLocked()
		conn = c.conn // nil while reconnecting: the reconnect says bye
	}
	bw := c.bye
	c.mu.Unlock()
	if conn != nil {
		// A failed write drops the socket: the reconnect says bye again.
		c.write(ctx, conn, protocol.ClientMessage{Type: protocol.TypeBye})
	}
	select {
	case <-bw.done:
		if bw.err != nil {
			return fmt.Errorf("failed to log out: %w", bw.err)
		}
		return nil
	case <-ctx.Done():
		c.Close()
		return fmt.Errorf("failed to log out: %w", ctx.Err())
	}
}

// Close closes the socket and stops the client, without logging out: the
// device drops, and the agent keeps their status for the grace (an app that
// quits and starts again inside it, with the same Device.ID, continues the
// device). Use Bye to log out. Close returns once the client's goroutines
// ended; it always returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.stopped || c.closing {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closing = true
	c.stopRefreshLocked()
	conns := []*websocket.Conn{c.conn, c.retired}
	c.mu.Unlock()
	for _, conn := range conns {
		if conn != nil {
			conn.Close(websocket.StatusNormalClosure, "")
		}
	}
	c.cancel()
	<-c.done
	return nil
}
