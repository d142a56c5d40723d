package wsconn_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/internal/wstest"
)

// Idle connections served by the poller have no goroutine: with 1,000 of
// them open, pinged on the shared deadline queue, the process runs a few
// goroutines more than before (the poller's), not one per connection; a
// reader goroutine per connection is what the goroutine path has. Each
// connection still answers at once when its client writes.
func TestIdleSocketsHaveNoGoroutine(t *testing.T) {
	const n = 1000
	opts := &wsconn.Options{PingInterval: time.Hour}
	var mu sync.Mutex
	var conns []*wsconn.Conn
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Accept(w, r, opts)
		if err != nil {
			return
		}
		wg.Add(1)
		c.Run(func(_ wsconn.MessageType, data []byte) { c.SendText(data) }, wg.Done)
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}))
	// Runs after the clients' cleanups, which close them: every
	// connection ends.
	t.Cleanup(func() {
		wg.Wait()
		srv.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	base := runtime.NumGoroutine()
	clients := make([]*wstest.RawClient, n)
	for i := range clients {
		c, _, err := wstest.DialRaw(t, url, wstest.RawOptions{Wait: waitTimeout})
		if err != nil {
			t.Fatalf("failed to dial socket %d: %v", i, err)
		}
		clients[i] = c
	}
	wstest.Eventually(t, waitTimeout, "every socket to run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(conns) == n
	})
	if wsconn.RunPoller() == wsconn.PollerEpoll {
		// The handlers' goroutines end after the upgrade; what stays is the
		// poller's goroutine.
		wstest.Eventually(t, waitTimeout, "the goroutines of the upgrades to end", func() bool { return runtime.NumGoroutine() <= base+5 })
		mu.Lock()
		for i, c := range conns {
			polled, ownTimer := c.Served()
			if !polled || ownTimer {
				mu.Unlock()
				t.Fatalf("socket %d: got served by the poller %v, with a timer of its own %v; want the poller and its queue", i, polled, ownTimer)
			}
		}
		mu.Unlock()
	} else if got := runtime.NumGoroutine() - base; got < n*9/10 {
		// About one each: goroutines of other tests may have ended since.
		t.Fatalf("got %d goroutines more with %d sockets open, want one reader each", got, n)
	}
	// Idle, they still answer.
	for _, i := range []int{0, n / 2, n - 1} {
		if err := clients[i].WriteText([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		f, err := clients[i].ReadFrame()
		if err != nil || string(f.Payload) != "hello" {
			t.Fatalf("socket %d: got %v, %v; want the echo of hello", i, f, err)
		}
	}
}

// Sockets that come and go in waves leave nothing behind: after each wave,
// once its sockets are closed, the goroutines are back to what they were
// (the poller's goroutine ends with its last socket, and the next wave
// starts another).
func TestWavesLeaveNoGoroutine(t *testing.T) {
	ts := serve(t, &wsconn.Options{PingInterval: 50 * time.Millisecond})
	base := runtime.NumGoroutine()
	for wave := range 3 {
		clients := make([]*wstest.RawClient, 200)
		for i := range clients {
			c, _ := ts.dial(t)
			clients[i] = c
		}
		if err := clients[wave].WriteText([]byte("echo:wave")); err != nil {
			t.Fatal(err)
		}
		if f, err := clients[wave].ReadFrame(); err != nil || (f.Op != wstest.OpText && f.Op != wstest.OpPing) {
			t.Fatalf("wave %d: got %v, %v; want the echo or a ping", wave, f, err)
		}
		for _, c := range clients {
			c.Conn.Close()
		}
		wstest.Eventually(t, waitTimeout, "the goroutines to be back to their number before the wave", func() bool {
			return runtime.NumGoroutine() <= base
		})
	}
}

// No wake-up is lost: many sockets each send a message only once the
// previous one was answered, so a message whose readiness went unnoticed
// would never be answered (nothing else arrives on its socket to notice
// it), and the test would fail at its deadline.
func TestNoWakeUpLost(t *testing.T) {
	const sockets, rounds = 50, 200
	ts := serve(t, &wsconn.Options{})
	clients := make([]*wstest.RawClient, sockets)
	for i := range clients {
		clients[i], _ = ts.dial(t)
	}
	// Drained as they come: the test server reports every message.
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-ts.messages:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-drained
	}()
	var wg sync.WaitGroup
	errs := make(chan error, sockets)
	for i, c := range clients {
		wg.Go(func() {
			for r := range rounds {
				want := fmt.Sprintf("%d-%d", i, r)
				if err := c.WriteText([]byte("echo:" + want)); err != nil {
					errs <- err
					return
				}
				f, err := c.ReadFrame()
				if err != nil || string(f.Payload) != want {
					errs <- fmt.Errorf("socket %d round %d: got %v, %v; want %q", i, r, f, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
