package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// newClients returns one HTTP client per source address (one client with
// the default source when there are none). They never use a proxy: the
// generator talks to the given URLs only.
func newClients(src []net.IP) []*http.Client {
	mk := func(local net.Addr) *http.Client {
		d := &net.Dialer{Timeout: dialTimeout, LocalAddr: local}
		if local != nil {
			d.Control = bindAddressNoPort
		}
		return &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: dialTimeout,
		}}
	}
	if len(src) == 0 {
		return []*http.Client{mk(nil)}
	}
	var out []*http.Client
	for _, ip := range src {
		out = append(out, mk(&net.TCPAddr{IP: ip}))
	}
	return out
}

// dial opens one WebSocket to u, through the next source address.
func (l *loadTest) dial(ctx context.Context, u string) (*websocket.Conn, error) {
	cl := l.clients[(l.next.Add(1)-1)%uint64(len(l.clients))]
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: cl})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return nil, fmt.Errorf("dial %s: HTTP 429: %s: %w", u, capHint, err)
		}
		if resp != nil {
			return nil, fmt.Errorf("dial %s: HTTP %d: %w", u, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	c.SetReadLimit(1 << 20)
	return c, nil
}

// capHint explains an HTTP 429 on a widget dial: every socket of the
// generator comes from a few addresses, and the hub caps widget sockets per
// client address (--max-widgets-per-client, 256 by default).
const capHint = "hub refused: too many widget sockets per client address; start the hub with --max-widgets-per-client -1 for load tests"

// retry runs open up to dialAttempts times with a short backoff.
func retry(ctx context.Context, open func() error) error {
	var err error
	for attempt := range dialAttempts {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 250 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		if err = open(); err == nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// connectResult describes one connect phase.
type connectResult struct {
	sockets int
	elapsed time.Duration
	each    []time.Duration // per socket; 0 for failed ones
	failed  int
	firstEr error
}

// connectPhase opens n sockets with open, at most perSec per second (0: no
// limit) and dialers at a time, showing progress on stderr. Unless tolerate,
// the first failure ends the phase with an error.
func (l *loadTest) connectPhase(ctx context.Context, what string, n int, perSec float64, dialers int, tolerate bool, open func(ctx context.Context, i int) error) (*connectResult, error) {
	res := &connectResult{sockets: n, each: make([]time.Duration, n)}
	if n == 0 {
		return res, nil
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if perSec > 0 {
		lim = rate.NewLimiter(rate.Limit(perSec), max(1, int(perSec/50)))
	}
	var done, failed atomic.Int64
	var errOnce sync.Once
	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				d := done.Load()
				fmt.Fprintf(l.stderr, "connected %s %d/%d (%.0f/s)\n", what, d, n, float64(d-last)/now.Sub(lastAt).Seconds())
				last, lastAt = d, now
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dialers)
	for i := range n {
		if err := lim.Wait(gctx); err != nil {
			break // a failure or ctx ended the phase; g.Wait reports why
		}
		g.Go(func() error {
			t0 := time.Now()
			if err := retry(gctx, func() error { return open(gctx, i) }); err != nil {
				if tolerate && ctx.Err() == nil {
					failed.Add(1)
					errOnce.Do(func() { res.firstEr = err })
					return nil
				}
				return err
			}
			res.each[i] = time.Since(t0)
			done.Add(1)
			return nil
		})
	}
	err := g.Wait()
	close(stopProgress)
	<-progressDone
	res.elapsed = time.Since(start)
	res.failed = int(failed.Load())
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("connecting %s: %w", what, err)
	}
	fmt.Fprintf(l.stderr, "connected %s %d/%d in %v (%.0f/s)\n", what, done.Load(), n, res.elapsed.Round(time.Millisecond), float64(done.Load())/res.elapsed.Seconds())
	return res, nil
}

// openDevice connects device i (agent i/devices, device i%devices), says
// hello and waits for the welcome.
func (l *loadTest) openDevice(ctx context.Context, i int) error {
	a := l.agents[i/l.cfg.devices]
	d := a.devices[i%l.cfg.devices]
	// The URL names the site, as the SDKs' do, for a balancer that hashes
	// on it (docs/routing.md).
	c, err := l.dial(ctx, d.url+"/v1/agent?"+url.Values{"site": {a.site}}.Encode())
	if err != nil {
		return err
	}
	kind := [...]string{"desktop", "mobile", "web"}[d.idx%3]
	hello := fmt.Appendf(nil, `{"type":"hello","token":%q,"device":{"kind":%q}}`, a.token, kind)
	hctx, cancel := context.WithTimeout(ctx, l.cfg.timeout)
	defer cancel()
	if err := c.Write(hctx, websocket.MessageText, hello); err != nil {
		c.CloseNow()
		return fmt.Errorf("agent %s/%s device %d: hello: %w", a.site, a.id, d.idx, err)
	}
	for {
		_, data, err := c.Read(hctx)
		if err != nil {
			c.CloseNow()
			return fmt.Errorf("agent %s/%s device %d: waiting for welcome: %w", a.site, a.id, d.idx, err)
		}
		f, err := decodeFrame(data)
		if err != nil {
			c.CloseNow()
			return fmt.Errorf("agent %s/%s device %d: %w", a.site, a.id, d.idx, err)
		}
		switch f.Type {
		case "welcome":
			d.conn, d.id = c, f.Device
			d.closing.Store(false)
			if d.idx == 0 {
				st := f.Status
				a.status.Store(&st)
			}
			l.deviceReaders.Go(func() { l.readDevice(d) })
			return nil
		case "error":
			c.CloseNow()
			return fmt.Errorf("agent %s/%s device %d: hello refused: %s: %s", a.site, a.id, d.idx, f.Code, f.Message)
		}
	}
}

// openWidget connects widget i; with storm, its reader measures the time to
// the first snapshot.
func (l *loadTest) openWidget(ctx context.Context, i int, storm bool) error {
	w := l.widgets[i]
	t := l.targets[w.target]
	q := url.Values{"site": {t.site}}
	if t.group != "" {
		q.Set("group", t.group)
	}
	c, err := l.dial(ctx, w.url+"/v1/widget?"+q.Encode())
	if err != nil {
		return err
	}
	w.conn = c
	w.closing.Store(false)
	l.widgetReaders.Go(func() { l.readWidget(w, c, storm) })
	return nil
}
