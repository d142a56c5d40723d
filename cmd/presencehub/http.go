package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/web"
)

// newTransport is the transport's server for the hub: its sockets and HTTP
// API, with the webhooks and history of st when there are events, ready
// when ready says so.
func newTransport(cfg *serveConfig, h *hub.Hub, auth *transport.Auth, st *stores, proxies []netip.Prefix, reg prometheus.Registerer, log *slog.Logger, ready func() error) *transport.Server {
	return transport.NewServer(h, auth, transport.Config{
		AllowedOrigins:      splitList(cfg.allowedOrigins),
		HelloTimeout:        cfg.helloTimeout,
		MaxMessageBytes:     cfg.maxMessage,
		SendQueue:           cfg.sendQueue,
		WriteTimeout:        cfg.writeTimeout,
		PingInterval:        cfg.pingInterval,
		PongTimeout:         cfg.pongTimeout,
		CloseTimeout:        cfg.closeTimeout,
		Poller:              cfg.poller,
		StatusRate:          cfg.statusRate,
		StatusBurst:         cfg.statusBurst,
		DeviceOpQueue:       cfg.deviceOpQueue,
		MaxWidgetsPerClient: cfg.maxWidgets,
		TrustedProxies:      proxies,
		Webhooks:            st.webhooks,
		History:             st.history,
		Logger:              log,
		Registerer:          reg,
		Ready:               ready,
	})
}

// readiness is what /readyz reports: not ready while the embedded store
// cannot write (emb, nil with --nats-url), nor while JetStream does not
// answer, not only while the connection is down: a frozen NATS server
// keeps its socket open. With the embedded server it also registers
// presencehub_store_writable.
func readiness(h *hub.Hub, emb *embeddedNATS, reg prometheus.Registerer) func() error {
	if emb == nil {
		return h.Healthy
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "presencehub_store_writable",
		Help: "1 while the embedded nats-server's store takes writes, 0 from a failed write (a full disk) until JetStream is restarted on it.",
	}, func() float64 {
		if emb.storeErr() != nil {
			return 0
		}
		return 1
	}))
	return func() error {
		if err := emb.storeErr(); err != nil {
			return err
		}
		return h.Healthy()
	}
}

// mountExtras adds to srv what the transport does not serve itself: the
// metrics, the pages and /dev/token. Every route here must be in the OpenAPI
// description (transport/openapi.json); TestEveryRouteIsDescribed checks.
func mountExtras(srv *transport.Server, reg *prometheus.Registry, auth *transport.Auth, dev bool) {
	srv.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Each page on its own GET pattern, not on the catch-all "/": then a
	// path nobody serves is the transport's JSON 404, and a wrong method
	// on an API path its 405 with Allow (the catch-all would take both).
	pages := web.Handler(web.Options{Dev: dev})
	for _, p := range web.Paths() {
		if p == "/" {
			p = "/{$}"
		}
		srv.Handle("GET "+p, pages)
	}
	if dev {
		srv.Handle("GET /dev/token", transport.DevTokenHandler(auth))
	} else {
		srv.Handle("/dev/token", transport.DevTokenRefused())
	}
}

// newHTTPServer is the HTTP server of srv on ln, within the --http-* limits.
func newHTTPServer(cfg *serveConfig, srv *transport.Server, ln net.Listener, proxies []netip.Prefix, reg prometheus.Registerer, log *slog.Logger) (*http.Server, net.Listener) {
	return transport.NewHTTPServer(srv, ln, transport.HTTPLimits{
		ReadTimeout: cfg.httpRead, HeaderTimeout: cfg.httpHeader, IdleTimeout: cfg.httpIdle, MaxConnsPerClient: cfg.maxHTTPConns,
		TrustedProxies: proxies, Logger: log, Registerer: reg,
	})
}

// printDevURLs tells a developer what to open.
func printDevURLs(addr net.Addr) {
	port := "8080"
	if tcp, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	base := "http://localhost:" + port
	fmt.Fprintf(os.Stderr, `
presencehub dev mode: site %q with groups %v, tokens from %s/dev/token
  start page         %s/
  agent console      %s/console?dev
  same agent, phone  %s/console?dev&device=mobile
  admin dashboard    %s/admin
  widget demo page   %s/demo   (group: %s/demo?group=sales)

`, transport.DevSite, transport.DevGroups, base, base, base, base, base, base, base)
}

// serveDebug serves pprof on its own listener, apart from the public one.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on --debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	log.Info("debug listener", "addr", ln.Addr().String())
	return func() {
		srv.Close()
		<-done
	}, nil
}
