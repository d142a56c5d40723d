package transport

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for HTTPLimits.
const (
	// DefaultHTTPReadTimeout is generous for the hub's requests, which are
	// a few hundred bytes (admin bodies at most 64 KiB), and short enough
	// that a client trickling a body cannot hold a descriptor for long.
	DefaultHTTPReadTimeout = 30 * time.Second
	// DefaultHTTPIdleTimeout keeps a keep-alive connection long enough for
	// a polling widget (or a load balancer's pool) to reuse it.
	DefaultHTTPIdleTimeout = 60 * time.Second
	// DefaultMaxHTTPConnsPerClient is far above what a browser opens to one
	// host (6 per origin) even behind a NAT shared by a few users, and far
	// below the process's file descriptors.
	DefaultMaxHTTPConnsPerClient = 64
	// DefaultHTTPHeaderTimeout bounds the headers alone (slowloris), unless
	// the read timeout is shorter; browsers send theirs in one packet.
	DefaultHTTPHeaderTimeout = 10 * time.Second
)

// HTTPLimits bounds what plain HTTP connections may hold, so that no client
// can use up the process's file descriptors with connections that send
// nothing, trickle a request, or sit idle between requests. WebSocket
// connections are HTTP connections until their upgrade; after it (a hijack)
// none of these limits apply to them: net/http clears a hijacked
// connection's deadlines, and its slot in the per-client count is released.
// The socket caps (Config.MaxWidgetsPerClient, the hello timeout, the
// devices per agent) cover them from then on.
type HTTPLimits struct {
	// ReadTimeout bounds reading one request, headers and body; the headers
	// alone get at most HeaderTimeout. Zero means DefaultHTTPReadTimeout,
	// negative no limit (the headers still get HeaderTimeout).
	ReadTimeout time.Duration
	// HeaderTimeout bounds reading one request's headers, when shorter
	// than ReadTimeout. Zero means DefaultHTTPHeaderTimeout, negative no
	// limit of its own (the headers then get ReadTimeout).
	HeaderTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Zero means DefaultHTTPIdleTimeout, negative no limit.
	IdleTimeout time.Duration
	// MaxConnsPerClient is how many HTTP connections one TCP peer address
	// may have open at once; beyond it a new connection is closed as soon
	// as it is accepted. The peer is the address the connection comes from,
	// never X-Forwarded-For (no request has been read yet), so behind a
	// proxy it would cap the proxy: connections from TrustedProxies are
	// therefore not counted (a proxy carries many clients and limits them
	// itself). Zero means DefaultMaxConnsPerClient, negative no limit.
	MaxConnsPerClient int
	// TrustedProxies are the proxies exempt from MaxConnsPerClient, as in
	// Config.TrustedProxies: nil means DefaultTrustedProxies(), an empty,
	// non-nil slice exempts nobody.
	TrustedProxies []netip.Prefix
	// Logger receives a debug line per refused connection.
	Logger *slog.Logger
	// Registerer receives presencehub_http_connections_refused_total; nil
	// registers none.
	Registerer prometheus.Registerer
}

// NewHTTPServer returns an http.Server serving h with limits applied, and
// the listener to serve it on: ln, which refuses connections over
// limits.MaxConnsPerClient. The server must be served on that listener and
// on no other, since its ConnState hook gives back the slots the listener
// takes.
func NewHTTPServer(h http.Handler, ln net.Listener, limits HTTPLimits) (*http.Server, net.Listener) {
	if limits.ReadTimeout == 0 {
		limits.ReadTimeout = DefaultHTTPReadTimeout
	}
	if limits.IdleTimeout == 0 {
		limits.IdleTimeout = DefaultHTTPIdleTimeout
	}
	if limits.HeaderTimeout == 0 {
		limits.HeaderTimeout = DefaultHTTPHeaderTimeout
	}
	if limits.MaxConnsPerClient == 0 {
		limits.MaxConnsPerClient = DefaultMaxHTTPConnsPerClient
	}
	if limits.Logger == nil {
		limits.Logger = slog.Default()
	}
	if limits.TrustedProxies == nil {
		limits.TrustedProxies = DefaultTrustedProxies()
	}
	// net/http bounds the headers by ReadHeaderTimeout and the rest of the
	// request by ReadTimeout counted from the request's start, so a header
	// timeout longer than the read timeout would let the headers alone
	// take longer than the whole request may.
	headerTimeout := limits.HeaderTimeout
	if limits.ReadTimeout > 0 && (headerTimeout < 0 || limits.ReadTimeout < headerTimeout) {
		headerTimeout = limits.ReadTimeout
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presencehub_http_connections_refused_total",
		Help: "HTTP connections closed as soon as they were accepted, by reason.",
	}, []string{"reason"})
	if limits.Registerer != nil {
		limits.Registerer.MustRegister(refused)
	}
	cl := &connLimiter{
		Listener: ln,
		slots:    newClientSlots(limits.MaxConnsPerClient),
		proxies:  newTrustedProxies(limits.TrustedProxies),
		open:     make(map[net.Conn]netip.Addr),
		// The series exists from the start, so that rate() and alerts see 0.
		refused: refused.WithLabelValues(refusedPerClientLimit),
		log:     limits.Logger,
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       limits.ReadTimeout,
		IdleTimeout:       limits.IdleTimeout,
		ConnState:         cl.connState,
	}
	return srv, cl
}

// connLimiter is a listener that caps the connections open per peer
// address. It hands out the accepted connections themselves, not wrappers,
// so that the sockets keep their file descriptor (syscall.Conn) and
// net/http its CloseWrite; the http.Server's ConnState hook tells it when a
// connection is done.
type connLimiter struct {
	net.Listener
	slots   *clientSlots
	proxies trustedProxies // not counted
	refused prometheus.Counter
	log     *slog.Logger

	mu sync.Mutex
	// open maps each connection holding a slot to the address it holds it
	// for. Guarded by mu.
	open map[net.Conn]netip.Addr
}

// Accept returns the next connection whose peer address is under its cap,
// closing the others as they come: they cost no goroutine and no read.
func (cl *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// The zero Addr (a peer address that does not parse) is one more
		// key, capped like the others.
		peer, _ := parseAddr(c.RemoteAddr().String())
		if cl.proxies.trusted(peer) {
			return c, nil
		}
		if cl.slots.acquire(peer) {
			cl.mu.Lock()
			cl.open[c] = peer
			cl.mu.Unlock()
			return c, nil
		}
		cl.refused.Inc()
		cl.log.Debug("http connection refused", "remote", c.RemoteAddr().String(), "err", errTooManyHTTPConns)
		c.Close()
	}
}

var errTooManyHTTPConns = errors.New("too many HTTP connections from this address")

// connState is the http.Server's ConnState hook: a connection gives its
// slot back when it closes, or when a handler hijacks it (a WebSocket
// upgrade), after which net/http no longer reports on it.
func (cl *connLimiter) connState(c net.Conn, state http.ConnState) {
	if state != http.StateClosed && state != http.StateHijacked {
		return
	}
	cl.mu.Lock()
	peer, ok := cl.open[c]
	delete(cl.open, c)
	cl.mu.Unlock()
	if ok {
		cl.slots.release(peer)
	}
}
