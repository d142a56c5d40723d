package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/transport"
)

// serve is the composition root: NATS, bucket, hub, transport, HTTP. It
// reads as the order of start-up; run serves until a signal or a failure
// and shuts down.
func serve(ctx context.Context, stop func(), args []string) error {
	// Flags first, then ports, and only then anything written into
	// --data-dir (the lock, the generated secret, the embedded NATS store):
	// a bad value or a busy port stops serve at once, naming the flag, and
	// leaves nothing behind. A --data-dir that another process runs on
	// stops it next, before it touches the secret or the store.
	cfg, log, proxies, err := loadServeConfig(args)
	if err != nil {
		return err
	}
	ln, closeListeners, err := listen(cfg, log)
	if err != nil {
		return err
	}
	defer closeListeners()
	lock, err := lockDataDir(cfg)
	if err != nil {
		return err
	}
	if lock != nil {
		defer lock.Release()
	}
	auth, err := newAuth(cfg)
	if err != nil {
		return err
	}

	nc, emb, shutdownNATS, err := connectNATS(cfg, lock, log)
	if err != nil {
		return err
	}
	defer shutdownNATS()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := openStores(ctx, cfg, nc, reg, log)
	if err != nil {
		return err
	}
	h, err := hub.New(hub.Config{
		ID: cfg.replicaID, JetStream: st.js, Bucket: st.bucket, Grace: cfg.grace, RefreshEvery: cfg.refreshEvery, MarkerTTL: cfg.markerTTL,
		LivenessTTL: cfg.livenessTTL, FollowLinger: cfg.followLinger, Partitions: cfg.partitions,
		Logger: log, Registerer: reg, PerSiteMetrics: cfg.perSiteMetrics, MaxDevices: cfg.maxDevices,
		WriteRetry: writeRetryConfig(cfg.writeRetry), RuleWorkers: cfg.ruleWorkers,
		EventsQueue: cfg.eventsQueue, StandbyKept: cfg.standbyKept, WatchPendingBytes: cfg.watchPending, Events: st.events,
	})
	if err != nil {
		return err
	}
	if st.history != nil {
		st.history.SetHours(h) // a widget's hours before its first event
	}
	srv := newTransport(cfg, h, auth, st, proxies, reg, log, readiness(h, emb, reg))
	mountExtras(srv, reg, auth, cfg.dev)
	httpSrv, httpLn := newHTTPServer(cfg, srv, ln, proxies, reg, log)

	announce(cfg, ln.Addr(), h, log)
	r := &replica{hub: h, stores: st, srv: srv, httpSrv: httpSrv, httpLn: httpLn}
	return r.run(ctx, stop, cfg, log)
}

// listen opens the HTTP listener and the debug one, and checks that
// --nats-listen is free, so that a busy port stops serve before it writes
// anything. It sets the default --replica-id, which takes the HTTP port.
// The returned func closes the listeners, in case serving never starts
// (Serve closes the HTTP listener otherwise).
func listen(cfg *serveConfig, log *slog.Logger) (net.Listener, func(), error) {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to listen on --addr %s: %w", cfg.addr, err)
	}
	if cfg.natsListen != "" {
		if err := checkListen(cfg.natsListen); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("failed to listen on --nats-listen %s: %w", cfg.natsListen, err)
		}
	}
	stopDebug := func() {}
	if cfg.debugAddr != "" {
		if stopDebug, err = serveDebug(cfg.debugAddr, log); err != nil {
			ln.Close()
			return nil, nil, err
		}
	}
	if cfg.replicaID == "" {
		cfg.replicaID = defaultReplicaID(ln.Addr())
	}
	return ln, func() {
		stopDebug()
		ln.Close()
	}, nil
}

// newAuth checks tokens with the signing secret: --jwt-secret, else the one
// kept in --data-dir (generated there the first time), else with --dev a
// random one.
func newAuth(cfg *serveConfig) (*transport.Auth, error) {
	var secret []byte
	var err error
	if cfg.dev && cfg.jwtSecret == "" {
		secret = randomSecret()
	} else if secret, err = loadSecret(cfg.jwtSecret, cfg.dataDir, true); err != nil {
		return nil, err
	}
	return transport.NewAuth(secret)
}

// announce logs that the replica listens, warns of a --liveness-ttl too
// short for a replicated bucket, and with --dev prints the pages' URLs.
func announce(cfg *serveConfig, addr net.Addr, h *hub.Hub, log *slog.Logger) {
	log.Info("listening", "addr", addr.String(), "hub", h.ID(), "grace", cfg.grace)
	if floor := cfg.clusterLivenessFloor(); floor > 0 && cfg.livenessTTL < floor {
		log.Warn("--liveness-ttl is too short for a replicated bucket: a stream leader election can outlast the replica's liveness key, starting the grace of its connected devices",
			"liveness_ttl", cfg.livenessTTL, "kv_replicas", cfg.kvReplicas, "at_least", floor)
	}
	if cfg.dev {
		printDevURLs(addr)
	}
}

// replica is what serve has built: the hub, the stores' background parts
// and the HTTP server in front of them.
type replica struct {
	hub     *hub.Hub
	stores  *stores
	srv     *transport.Server
	httpSrv *http.Server
	httpLn  net.Listener
}

// run starts the hub, the webhooks, the history (and its walk of the owned
// sites' summaries) and the HTTP server, each on a goroutine of its own,
// waits for a signal (ctx) or the first failure, and shuts down. It
// returns the failure, if any.
func (r *replica) run(ctx context.Context, stop func(), cfg *serveConfig, log *slog.Logger) error {
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	g := new(errgroup.Group)
	// failed receives the first error of the hub or the HTTP server, either
	// of which ends the process.
	failed := make(chan error, 3)
	g.Go(func() error {
		err := r.hub.Run(hubCtx)
		if err != nil {
			failed <- fmt.Errorf("hub stopped: %w", err)
		}
		return err
	})
	if webhooks := r.stores.webhooks; webhooks != nil {
		g.Go(func() error {
			err := webhooks.Run(hubCtx)
			if err != nil {
				failed <- fmt.Errorf("webhooks stopped: %w", err)
			}
			return err
		})
	}
	if hist := r.stores.history; hist != nil {
		g.Go(func() error { return hist.Run(hubCtx) })
		if cfg.summarizesOwned() {
			g.Go(func() error { return summarizeOwned(hubCtx, cfg, hist, r.hub) })
		}
	}
	g.Go(func() error {
		if err := r.httpSrv.Serve(r.httpLn); !errors.Is(err, http.ErrServerClosed) {
			err = fmt.Errorf("failed to serve HTTP: %w", err)
			failed <- err
			return err
		}
		return nil
	})

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("draining; a second signal stops at once", "delay", cfg.shutdownDelay)
		stop()
	case runErr = <-failed:
		log.Error("stopping", "err", runErr)
	}
	r.closeSockets(cfg, log, runErr == nil)
	stopHub()
	if err := g.Wait(); runErr == nil && err != nil {
		runErr = err
	}
	log.Info("stopped")
	return runErr
}

// closeSockets drains the replica: /readyz turns 503 and new sockets are
// refused; after --shutdown-delay (when signalled, not on a failure) the
// open sockets close with 1001. Their devices' leases are left to run out
// the grace, so the devices reconnect to another replica with no visible
// change. Then the HTTP server shuts down; the hub stops and NATS is
// drained after.
func (r *replica) closeSockets(cfg *serveConfig, log *slog.Logger, signalled bool) {
	r.srv.Drain()
	if signalled && cfg.shutdownDelay > 0 {
		time.Sleep(cfg.shutdownDelay) // a second signal ends the process (stop restored its default)
	}
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancelShutdown()
	if err := r.srv.CloseSockets(shutdownCtx); err != nil {
		log.Warn("sockets still open at shutdown", "err", err)
	}
	r.httpSrv.Shutdown(shutdownCtx)
}
