package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/protocol"
)

// Transports of a WidgetStatus.
const (
	TransportWebSocket = "websocket"
	TransportPolling   = "polling"
)

// WidgetStatus is what a chat widget shows: the hub's widget_status.
type WidgetStatus struct {
	Site  string
	Group string // "" for the site-wide widget
	// Status is Offline outside the working hours that apply; otherwise
	// Online if at least one relevant agent is online, else Busy if one is
	// busy, else Offline.
	Status string
	// Reason is outside_hours, agents_online, all_busy or no_agents.
	Reason string
	// NextChange is when the working hours next open (while closed) or
	// close (while open); the zero time when no schedule applies. A widget
	// shows "back at" from it.
	NextChange time.Time
	// At is when the hub saw the status take its value.
	At time.Time
	// Transport is how it came: TransportWebSocket, or TransportPolling
	// while the socket cannot be opened.
	Transport string
}

// Widget reconnect and polling timings, as widget.js has them.
const (
	widgetFailsBeforePolling = 3
	widgetPollEvery          = 15 * time.Second
	widgetPollMaxFactor      = 4
	// widgetSocketRetryPolling is how often the socket is tried again while
	// polls are answered: the hub is up and something on the way (a proxy)
	// refuses WebSockets.
	widgetSocketRetryPolling = 60 * time.Second
	widgetPollTimeout        = 10 * time.Second
)

// WatchWidget follows what a chat widget of site (and of group, if not
// empty) shows, as widget.js does, and sends it on the returned channel:
// the status at once, then each change of Status, Reason or NextChange
// (never the same value twice in a row).
//
// It holds a widget socket (GET /v1/widget) and reconnects with jittered
// backoff. After three failed attempts in a row it also polls GET
// /v1/sites/{site}/status (every 15 s or so, less often while polls fail)
// until the socket works again; while polls are answered and the socket
// still fails (a proxy that refuses WebSockets), it tries the socket once a
// minute.
//
// Every change is sent, in order: the watch waits for the reader (the
// channel holds 16), so read it until it closes, which it does once ctx
// ends and the watch's goroutine returned. url is the
// hub, as Config.URL. WatchWidget returns an error only for a bad url, site
// or group.
func WatchWidget(ctx context.Context, url, site, group string) (<-chan WidgetStatus, error) {
	if !validID(site) {
		return nil, fmt.Errorf("failed to watch a widget: invalid site id %q", site)
	}
	if group != "" && !validID(group) {
		return nil, fmt.Errorf("failed to watch a widget: invalid group id %q", group)
	}
	ws, err := endpoint(url, "/v1/widget", true)
	if err != nil {
		return nil, fmt.Errorf("failed to watch a widget: %w", err)
	}
	poll, err := endpoint(url, "/v1/sites/"+site+"/status", false)
	if err != nil {
		return nil, fmt.Errorf("failed to watch a widget: %w", err)
	}
	q := neturl.Values{"site": {site}}
	if group != "" {
		q.Set("group", group)
		poll.RawQuery = neturl.Values{"group": {group}}.Encode()
	}
	ws.RawQuery = q.Encode()
	w := &widgetWatch{
		wsURL: ws.String(), pollURL: poll.String(),
		out:     make(chan WidgetStatus, 16),
		backoff: backoff{base: defaultMinBackoff, cap: defaultMaxBackoff},
	}
	go w.run(ctx)
	return w.out, nil
}

// widgetWatch is one watch; its fields belong to its goroutine.
type widgetWatch struct {
	wsURL, pollURL string
	out            chan WidgetStatus
	last           *WidgetStatus

	backoff backoff
	fails   int // socket attempts in a row that did not open
	polling bool
	// answered: the last poll got an HTTP answer, so the hub is up and it
	// is the socket that fails.
	answered  bool
	pollFails int
	nextPoll  time.Time
}

// run is the watch's goroutine: the socket, and between its attempts, the
// polls.
func (w *widgetWatch) run(ctx context.Context) {
	defer close(w.out)
	for ctx.Err() == nil {
		code, opened, got := w.socket(ctx)
		if ctx.Err() != nil {
			return
		}
		if opened {
			w.fails = 0
		} else {
			w.fails++
		}
		// A socket that stayed up and delivered a status resets the
		// backoff; one refused (1008: a bad site or group) never hammers.
		if got && code != int(websocket.StatusPolicyViolation) {
			w.backoff.reset()
		}
		if code == int(websocket.StatusPolicyViolation) || code == int(protocol.CloseBadHello) {
			w.backoff.atLeast(3)
		}
		delay := w.backoff.next()
		if w.polling || w.fails >= widgetFailsBeforePolling {
			if !w.polling {
				w.polling, w.nextPoll = true, time.Now()
			}
			// With polls answered the socket is blocked on the way: try it
			// again only now and then. Without, the hub itself is away (a
			// restart): keep backing off, to be back on the socket soon
			// after it returns.
			if w.answered {
				delay = jitter(widgetSocketRetryPolling)
			}
		}
		w.wait(ctx, delay)
	}
}

// socket opens the widget socket and reads it until it ends. It returns
// the close code (-1 without one), whether it opened, and whether it
// delivered a status and stayed open at least a second.
func (w *widgetWatch) socket(ctx context.Context) (code int, opened, got bool) {
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	conn, _, err := websocket.Dial(dctx, w.wsURL, nil)
	cancel()
	if err != nil {
		return -1, false, false
	}
	defer conn.CloseNow()
	conn.SetReadLimit(readLimit)
	openedAt := time.Now()
	delivered := false
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return int(websocket.CloseStatus(err)), true, delivered && time.Since(openedAt) >= time.Second
		}
		if typ != websocket.MessageText {
			continue
		}
		if w.apply(ctx, data, TransportWebSocket) {
			delivered = true
			w.fails = 0
			w.polling = false
		}
	}
}

// wait waits d, polling meanwhile while polling is on.
func (w *widgetWatch) wait(ctx context.Context, d time.Duration) {
	socketAt := time.Now().Add(d)
	for {
		next := socketAt
		if w.polling && w.nextPoll.Before(next) {
			next = w.nextPoll
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(socketAt) {
			return
		}
		w.poll(ctx)
		factor := min(widgetPollMaxFactor, 1<<min(w.pollFails, 3))
		w.nextPoll = time.Now().Add(jitter(widgetPollEvery * time.Duration(factor)))
	}
}

// poll asks GET /v1/sites/{site}/status once.
func (w *widgetWatch) poll(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, widgetPollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, w.pollURL, nil)
	if err != nil {
		w.pollFails++
		return
	}
	req.Header.Set("Cache-Control", "no-store")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.answered = false // no answer at all: the hub is away
		w.pollFails++
		return
	}
	defer resp.Body.Close()
	w.answered = true
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK || !w.apply(ctx, body, TransportPolling) {
		w.pollFails++
		return
	}
	w.pollFails = 0
}

// apply takes one widget_status object from either transport and sends it
// on if it differs from the last; it reports whether data was one.
func (w *widgetWatch) apply(ctx context.Context, data []byte, transport string) bool {
	var f protocol.WidgetStatus
	if err := json.Unmarshal(data, &f); err != nil || f.Type != "widget_status" {
		return false
	}
	switch f.Status {
	case Online, Busy, Offline:
	default:
		return false
	}
	s := WidgetStatus{
		Site: f.Site, Group: f.Group, Status: string(f.Status), Reason: string(f.Reason),
		NextChange: fromOptionalTime(f.NextChange), At: fromTime(f.At), Transport: transport,
	}
	if l := w.last; l != nil && l.Status == s.Status && l.Reason == s.Reason && l.NextChange.Equal(s.NextChange) {
		return true
	}
	w.last = &s
	select {
	case w.out <- s:
	case <-ctx.Done():
	}
	return true
}
