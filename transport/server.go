// Package transport serves the hub to its clients: the agent, widget and
// admin stats sockets, and the HTTP API (a site's widget status, the admin
// API over hours, settings, agents, webhooks and history, /healthz,
// /readyz, and the OpenAPI description at /openapi.json, kept by hand in
// openapi.json and held against the routes by the tests). It owns what
// happens at that edge: the routes and their handlers, the tokens (Auth:
// HS256, roles, expiry), the hello and its deadline, Origin checks, the
// status rate per device, the widget sockets per client address and the
// client address behind trusted proxies, the limits of plain HTTP
// connections (HTTPLimits), and draining and closing the sockets at
// shutdown.
//
// It defines nothing of the wire format itself: the messages, error
// codes, close codes and time format are package protocol's (described in
// docs/protocol.md); what crosses a socket byte by byte is package
// wsconn's.
//
// Goroutines: HTTP requests run on net/http's goroutines. A socket's HTTP
// handler returns after the upgrade; from then on package wsconn reads the
// socket: on Linux (Config.Poller epoll, the default) a goroutine runs only
// while the client has sent bytes, woken by wsconn's poller, and an idle
// socket has none; with Config.Poller goroutine each socket has a reader
// goroutine. The reader handles what the client sends and, once the socket
// is closed, cleans up after it. The reader never
// waits for NATS: an agent device's operations (its hello, status changes,
// background mode, bye, the end of its session) run in order on a
// goroutine of the device's own, which runs only while it has operations
// queued (agentops.go). Frames are written by
// whoever sends them (the hub's fan-out) when the socket can take them at
// once; a writer goroutine runs only while a socket has frames the kernel
// did not take yet. Pings and the close handshake's timeout run from
// wsconn's deadline queue (a timer per socket on the goroutine path); the
// hello deadline and token expiry on timers. An admin stats socket has one more
// goroutine, which pushes the stats and which its reader waits for, and
// while it runs a second one that cancels its stats query when the socket
// closes. CloseSockets waits for every reader and every device's
// operations.
package transport

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport/webhook"
)

// Defaults for Config.
const (
	DefaultHelloTimeout    = 10 * time.Second
	DefaultMaxMessageBytes = 32 << 10
	DefaultSendQueue       = 64
	DefaultWriteTimeout    = 10 * time.Second
	DefaultStatusRate      = 10
	DefaultStatusBurst     = 20
	DefaultPingInterval    = 25 * time.Second
	DefaultPongTimeout     = 10 * time.Second
	DefaultCloseTimeout    = wsconn.DefaultCloseTimeout
	// DefaultMaxWidgetsPerClient is generous on purpose: behind a NAT, a
	// carrier-grade NAT or an office proxy many visitors share one address,
	// and each has a few tabs open. The cap exists to stop one client from
	// exhausting a replica's file descriptors, not to ration visitors.
	DefaultMaxWidgetsPerClient = 256
)

// Config configures a Server.
type Config struct {
	// AllowedOrigins are the Origin host patterns (path.Match syntax, see
	// wsconn.Options.OriginPatterns) allowed to open agent sockets
	// besides the hub's own host. Requests without Origin (native apps) pass.
	AllowedOrigins []string
	// HelloTimeout is how long an agent socket may take to say hello.
	HelloTimeout time.Duration
	// MaxMessageBytes is the largest message a client may send, all its
	// fragments together; larger closes the socket with 1009.
	MaxMessageBytes int64
	// StatusRate and StatusBurst limit set_status per device: beyond them a
	// device gets rate_limited errors (it is not disconnected).
	StatusRate  float64
	StatusBurst int
	// DeviceOpQueue is how many operations of one agent device (status
	// changes, background mode) may be pending at once, the one running
	// included, while they wait for NATS; beyond it the device gets
	// rate_limited errors (it is not disconnected). Zero means
	// DefaultDeviceOpQueue.
	DeviceOpQueue int
	// SendQueue is how many frames may wait for a slow socket before it is
	// closed with 1008.
	SendQueue int
	// WriteTimeout bounds one frame write, and one hub operation done for a
	// socket.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings every socket; negative
	// disables pings. PongTimeout is how long a pong may take before the
	// socket is closed (1008); pings go out every PingInterval whatever it
	// is.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// CloseTimeout is how long a client has to answer the server's close
	// frame with its own before the connection is closed anyway.
	CloseTimeout time.Duration
	// Poller is how sockets learn they have bytes to read (wsconn.Poller):
	// "" is wsconn.DefaultPoller, epoll on Linux, where an idle socket has
	// no goroutine; wsconn.PollerGoroutine gives each socket a reader
	// goroutine, the only path on other systems.
	Poller wsconn.Poller
	// MaxWidgetsPerClient is how many widget sockets one client address may
	// hold open on this replica; beyond it the upgrade is refused with HTTP
	// 429. Zero means DefaultMaxWidgetsPerClient, negative no limit.
	MaxWidgetsPerClient int
	// TrustedProxies are the networks whose X-Forwarded-For is believed when
	// resolving a request's client address (for MaxWidgetsPerClient and the
	// logs). nil means DefaultTrustedProxies(); an empty, non-nil slice
	// trusts nobody, so the client is always the TCP peer.
	TrustedProxies []netip.Prefix
	// Webhooks registers and delivers webhooks; nil answers the webhooks
	// API with 404 (the hub runs without the event stream).
	Webhooks *webhook.Manager
	// History answers the timeline and the availability report; nil
	// answers them with 404 (the hub runs without the event stream).
	History *history.Index
	// Ready reports why the process is not ready, or nil; /readyz uses it.
	Ready func() error
	// Logger receives the transport's logs.
	Logger *slog.Logger
	// Registerer receives the transport's Prometheus metrics; nil registers
	// none.
	Registerer prometheus.Registerer
}

// Server serves the hub's HTTP and WebSocket endpoints.
type Server struct {
	cfg  Config
	hub  *hub.Hub
	auth *Auth
	log  *slog.Logger
	mux  *http.ServeMux
	// patterns are the mux's patterns, for Routes; written only while
	// the server is being set up.
	patterns []string
	// base is cancelled by Shutdown; every socket closes with 1001 then.
	base       context.Context
	cancelBase context.CancelFunc
	// sockets counts the socket handlers running; hijacked connections are
	// not tracked by http.Server.Shutdown, so CloseSockets waits on this.
	// Guarded by mu together with draining, so that no handler is added once
	// CloseSockets waits.
	mu       sync.Mutex
	sockets  sync.WaitGroup
	draining bool
	// open are the sockets running (sock.run until done), which
	// CloseSockets closes with 1001; once closeAll is set, a socket that
	// starts closes at once. A set, not a context.AfterFunc per socket:
	// that cost about 250 bytes per idle socket. Guarded by openMu.
	openMu   sync.Mutex
	open     map[*sock]struct{}
	closeAll bool

	// adminSockets counts the admin stats sockets being served, which the
	// hub publishes with this replica's numbers.
	adminSockets atomic.Int64
	// helloOpts are the socket options of agent and admin sockets, whose
	// Origin is checked; widgetOpts those of widget sockets, whose Origin
	// the site's settings decide.
	helloOpts, widgetOpts *wsconn.Options

	proxies trustedProxies
	// widgetSlots caps the widget sockets per client address.
	widgetSlots *clientSlots

	framesIn      *prometheus.CounterVec
	widgetRefused *prometheus.CounterVec
}

// NewServer returns a Server for h that verifies tokens with auth.
func NewServer(h *hub.Hub, auth *Auth, cfg Config) *Server {
	if cfg.HelloTimeout == 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.SendQueue == 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.StatusRate == 0 {
		cfg.StatusRate = DefaultStatusRate
	}
	if cfg.StatusBurst == 0 {
		cfg.StatusBurst = DefaultStatusBurst
	}
	if cfg.DeviceOpQueue == 0 {
		cfg.DeviceOpQueue = DefaultDeviceOpQueue
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingInterval < 0 {
		cfg.PingInterval = 0
	}
	if cfg.PongTimeout == 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.MaxWidgetsPerClient == 0 {
		cfg.MaxWidgetsPerClient = DefaultMaxWidgetsPerClient
	}
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = DefaultTrustedProxies()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Ready == nil {
		// Not ready while NATS or JetStream does not answer, as well as
		// while the view loads.
		cfg.Ready = h.Healthy
	}
	s := &Server{cfg: cfg, hub: h, auth: auth, log: cfg.Logger, mux: http.NewServeMux(),
		proxies: newTrustedProxies(cfg.TrustedProxies), widgetSlots: newClientSlots(cfg.MaxWidgetsPerClient)}
	s.helloOpts, s.widgetOpts = socketOptions(cfg)
	s.framesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presencehub_frames_in_total",
		Help: "Frames received from clients, by socket kind.",
	}, []string{"kind"})
	s.widgetRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "presencehub_widget_refused_total",
		Help: "Widget socket upgrades refused, by reason.",
	}, []string{"reason"})
	// The series exists from the start, so that rate() and alerts see 0.
	s.widgetRefused.WithLabelValues(refusedPerClientLimit)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.framesIn, s.widgetRefused)
	}
	if h != nil { // nil only in tests of the server's own options
		h.ReportAdminSockets(func() int { return int(s.adminSockets.Load()) })
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.open = make(map[*sock]struct{})
	s.handleFunc("GET /v1/agent", s.socket(s.serveAgent))
	s.handleFunc("GET /v1/widget", s.socket(s.serveWidget))
	s.handleFunc("GET /v1/admin", s.socket(s.serveAdminStats))
	s.handleFunc("GET /v1/sites/{site}/status", s.serveSiteStatus)
	api := &adminAPI{s: s}
	api.routeAdmin()
	api.routeWebhooks()
	api.routeHistory()
	s.handleFunc("GET /openapi.json", serveOpenAPI)
	s.handleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	s.handleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.Draining() {
			http.Error(w, "not ready: draining", http.StatusServiceUnavailable)
			return
		}
		if err := s.cfg.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return s
}

// refusedPerClientLimit is the presencehub_widget_refused_total reason for
// a client address over MaxWidgetsPerClient.
const refusedPerClientLimit = "per_client_limit"

// clientAddr returns the client address of r, resolved through the trusted
// proxies' X-Forwarded-For (see trustedProxies.clientAddr).
func (s *Server) clientAddr(r *http.Request) netip.Addr { return s.proxies.clientAddr(r) }

// Handle registers an extra handler on the server's mux, for the pages and
// endpoints other packages add.
func (s *Server) Handle(pattern string, h http.Handler) { s.handle(pattern, h) }

// ServeHTTP implements http.Handler. A request no route takes is answered
// in the API's JSON errors (errors.go): 404 for a path nobody serves, 405
// with Allow for a method the path does not take.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// The mux's own answer: not found, method not allowed (it
		// computes Allow), or a redirect to the cleaned path.
		s.mux.ServeHTTP(&unmatched{ResponseWriter: w, r: r}, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Drain marks the server as draining: /readyz answers 503 and new sockets
// are refused with 503, while open sockets stay until CloseSockets.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
}

// Draining reports whether Drain or CloseSockets was called.
func (s *Server) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// CloseSockets drains the server, closes every open socket with 1001 (going
// away) and waits until their handlers are done or ctx ends. Device sessions
// end as drops, so their grace periods run and the devices can reconnect to
// another replica without any visible change.
func (s *Server) CloseSockets(ctx context.Context) error {
	s.Drain()
	s.cancelBase()
	s.openMu.Lock()
	s.closeAll = true
	open := make([]*sock, 0, len(s.open))
	for l := range s.open {
		open = append(open, l)
	}
	s.openMu.Unlock()
	for _, l := range open {
		l.closeWith(wsconn.StatusGoingAway, "server shutting down", false)
	}
	done := make(chan struct{})
	go func() {
		s.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// socket wraps a socket handler so that CloseSockets can wait for it.
func (s *Server) socket(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "server draining; connect to another replica")
			return
		}
		s.sockets.Add(1)
		s.mu.Unlock()
		defer s.sockets.Done()
		h(w, r)
	}
}
