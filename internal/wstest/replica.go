package wstest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/transport/webhook"
)

// ReplicaOptions configures StartReplica.
type ReplicaOptions struct {
	// Secret signs and verifies the replica's tokens.
	Secret []byte
	// Bucket configures the presence bucket the replica opens.
	Bucket store.BucketConfig
	// Hub configures the hub; StartReplica sets JetStream and KV, and
	// Logger if it is nil, to Logger(t).
	Hub hub.Config
	// Transport configures the server; StartReplica sets Logger if it is
	// nil, to Logger(t), and an empty Poller to TestPoller().
	Transport transport.Config
	// Webhooks, if set, turns on the event stream and the webhooks: the
	// replica opens the stream, sets Hub.Events, and runs a webhook
	// Manager with this configuration (JetStream set here; Logger, if
	// nil, to Logger(t)).
	Webhooks *webhook.Config
	// History, if set, turns on the event stream and the history index:
	// the replica opens the stream, sets Hub.Events, and runs an index with
	// this configuration (JetStream set here; Logger, if nil, to
	// Logger(t)), which it waits for before serving.
	History *history.Config
	// Setup, if set, is called with the server before it serves, to add
	// handlers.
	Setup func(srv *transport.Server, auth *transport.Auth)
	// Addr is the address to listen on; default a free loopback port.
	Addr string
	// NATSURL is where the replica reaches NATS (a natstest.Proxy in
	// front of ns, say, or a node of a natstest.Cluster, with ns nil);
	// default ns itself.
	NATSURL string
	// Wait bounds loading the view and closing the sockets; default
	// DefaultWait.
	Wait time.Duration
}

// Replica is one hub instance with its own NATS connection and HTTP server.
type Replica struct {
	Hub    *hub.Hub
	Server *transport.Server
	Auth   *transport.Auth
	HTTP   *httptest.Server
	// Addr is the host:port the replica listens on, URL its http:// base
	// URL and WSURL its ws:// base URL.
	Addr, URL, WSURL string

	stopOnce sync.Once
	stop     func()
}

// StartReplica runs a hub on ns and serves it over HTTP until Stop is called
// or the test ends.
func StartReplica(t testing.TB, ns *natsserver.Server, o ReplicaOptions) *Replica {
	t.Helper()
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	var nc *nats.Conn
	if o.NATSURL != "" {
		nc = natstest.ConnectURL(t, o.NATSURL)
	} else {
		nc = natstest.Connect(t, ns)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("failed to create JetStream client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Wait)
	defer cancel()
	kv, err := store.OpenBucket(ctx, js, o.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	hcfg := o.Hub
	hcfg.JetStream, hcfg.Bucket = js, kv
	if hcfg.Logger == nil {
		hcfg.Logger = Logger(t)
	}
	tcfg := o.Transport
	if tcfg.Poller == "" {
		tcfg.Poller = TestPoller()
	}
	stopWebhooks := func() {}
	if o.Webhooks != nil {
		hcfg.Events = true
		tcfg.Webhooks, stopWebhooks = startWebhooks(t, ctx, js, *o.Webhooks)
		t.Cleanup(stopWebhooks) // if the replica fails to start
	}
	stopHistory := func() {}
	if o.History != nil {
		hcfg.Events = true
		tcfg.History, stopHistory = startHistory(t, ctx, js, *o.History)
		t.Cleanup(stopHistory) // if the replica fails to start
	}
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	if tcfg.History != nil {
		tcfg.History.SetHours(h)
	}
	runCtx, stopHub := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	select {
	case <-h.Loaded():
	case err := <-done:
		stopHub()
		t.Fatalf("hub stopped before loading: %v", err)
	case <-ctx.Done():
		stopHub()
		<-done
		t.Fatal("hub view did not load")
	}
	auth, err := transport.NewAuth(o.Secret)
	if err != nil {
		stopHub()
		<-done
		t.Fatal(err)
	}
	if tcfg.Logger == nil {
		tcfg.Logger = Logger(t)
	}
	srv := transport.NewServer(h, auth, tcfg)
	if o.Setup != nil {
		o.Setup(srv, auth)
	}
	hs := httptest.NewUnstartedServer(srv)
	if o.Addr != "" {
		ln, err := net.Listen("tcp", o.Addr)
		if err != nil {
			stopHub()
			<-done
			t.Fatalf("failed to listen on %s: %v", o.Addr, err)
		}
		hs.Listener.Close()
		hs.Listener = ln
	}
	hs.Start()
	r := &Replica{
		Hub: h, Server: srv, Auth: auth, HTTP: hs,
		Addr: hs.Listener.Addr().String(), URL: hs.URL, WSURL: "ws" + strings.TrimPrefix(hs.URL, "http"),
	}
	r.stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.Wait)
		defer cancel()
		if err := srv.CloseSockets(ctx); err != nil {
			t.Errorf("sockets did not close: %v", err)
		}
		hs.Close()
		stopHub()
		if err := <-done; err != nil {
			t.Errorf("hub.Run: %v", err)
		}
		stopWebhooks()
		stopHistory()
	}
	t.Cleanup(r.Stop)
	return r
}

// startWebhooks opens the event stream and a webhook Manager on js and runs
// it until the returned func is called.
func startWebhooks(t testing.TB, ctx context.Context, js jetstream.JetStream, cfg webhook.Config) (*webhook.Manager, func()) {
	t.Helper()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{Name: cfg.EventStream}); err != nil {
		t.Fatal(err)
	}
	cfg.JetStream = js
	if cfg.Logger == nil {
		cfg.Logger = Logger(t)
	}
	m, err := webhook.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	var once sync.Once
	return m, func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("webhook Run: %v", err)
			}
		})
	}
}

// startHistory opens the event stream and a history index on js, runs it
// until the returned func is called, and waits until it is ready.
func startHistory(t testing.TB, ctx context.Context, js jetstream.JetStream, cfg history.Config) (*history.Index, func()) {
	t.Helper()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{Name: cfg.Stream}); err != nil {
		t.Fatal(err)
	}
	cfg.JetStream = js
	if cfg.Logger == nil {
		cfg.Logger = Logger(t)
	}
	x, err := history.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(runCtx) }()
	var once sync.Once
	stopFn := func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("history Run: %v", err)
			}
		})
	}
	select {
	case <-x.Loaded():
	case err := <-done:
		once.Do(stop)
		t.Fatalf("history index stopped before ready: %v", err)
	case <-ctx.Done():
		stopFn()
		t.Fatal("history index not ready")
	}
	return x, stopFn
}

// Stop closes the replica's sockets, stops serving and stops the hub, as a
// deploy does; it fails the test if the sockets do not close in time or the
// hub ends with an error. Only the first call does anything.
func (r *Replica) Stop() { r.stopOnce.Do(r.stop) }

// Logger returns a logger that logs warnings and errors to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestPoller is the poller of the sockets of the replicas the tests start:
// $PRESENCEHUB_TEST_POLLER ("epoll" or "goroutine"), or "" for
// wsconn.DefaultPoller. The socket tests run on both paths with
//
//	PRESENCEHUB_TEST_POLLER=goroutine go test -race ./transport/ ./cmd/presence-load/
//
// besides the default run (.ci/run runs both).
func TestPoller() wsconn.Poller {
	v := os.Getenv("PRESENCEHUB_TEST_POLLER")
	if v == "" {
		return ""
	}
	p, err := wsconn.ParsePoller(v)
	if err != nil {
		panic(fmt.Sprintf("PRESENCEHUB_TEST_POLLER: %v", err))
	}
	return p
}
