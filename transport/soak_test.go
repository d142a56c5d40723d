//go:build soak

package transport_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/transport"
)

var soakFor = flag.Duration("soak", 10*time.Minute, "how long the soak test churns")

// TestSoak churns connections and statuses on two replicas for -soak (10
// minutes by default), then shows goroutines and heap back at their
// baseline. Run: go test -tags soak -run TestSoak -timeout 30m ./transport/
func TestSoak(t *testing.T) {
	ns := natstest.Start(t)
	cfg := transport.Config{StatusRate: 1000, StatusBurst: 1000}
	r1 := startReplica(t, ns, replicaOptions{grace: 2 * time.Second, transport: cfg})
	r2 := startReplica(t, ns, replicaOptions{grace: 2 * time.Second, transport: cfg})

	settle := func() (int, uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapAlloc
	}
	baseG, baseHeap := settle()
	t.Logf("baseline: %d goroutines, %d KiB heap", baseG, baseHeap>>10)

	// Plain sockets, not the test client: its cleanup hooks would keep every
	// client until the test ends and hide the hub's own memory.
	ctx := context.Background()
	dialRaw := func(url string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	readType := func(c *websocket.Conn, typ string) {
		for {
			var m map[string]any
			if err := wsjson.Read(ctx, c, &m); err != nil {
				t.Fatalf("failed waiting for %s: %v", typ, err)
			}
			if m["type"] == typ {
				return
			}
		}
	}
	end := time.Now().Add(*soakFor)
	for round := 0; time.Now().Before(end); round++ {
		reps := []*replica{r1, r2}
		var widgets []*websocket.Conn
		for i := range 20 {
			w := dialRaw(reps[i%2].wsURL + "/v1/widget?site=" + fmt.Sprint("soak", i%3))
			readType(w, "widget_status")
			widgets = append(widgets, w)
		}
		for i := range 10 {
			a := dialRaw(reps[i%2].wsURL + "/v1/agent")
			wsjson.Write(ctx, a, map[string]any{"type": "hello", "token": mintToken(t, fmt.Sprint("soak", i%3), fmt.Sprint("agent", i))})
			readType(a, "welcome")
			for _, st := range []string{"busy", "online", "offline", "online"} {
				wsjson.Write(ctx, a, map[string]string{"type": "set_status", "status": st})
				readType(a, "status")
			}
			if i%2 == 0 {
				wsjson.Write(ctx, a, map[string]string{"type": "bye"})
				a.Read(ctx) // the close
			}
			a.CloseNow() // for odd i a drop: the lease runs out the grace
		}
		for _, w := range widgets {
			w.CloseNow()
		}
		if round%50 == 0 {
			g, heap := settle()
			t.Logf("round %d: %d goroutines, %d KiB heap", round, g, heap>>10)
		}
	}
	// Let the dropped devices' graces and the markers run out, then look.
	var g int
	var heap uint64
	eventually(t, "goroutines back at the baseline", func() bool {
		g, heap = settle()
		return g <= baseG+5
	})
	t.Logf("after: %d goroutines, %d KiB heap", g, heap>>10)
	if heap > baseHeap+8<<20 {
		t.Fatalf("got %d KiB heap after the soak, want within 8 MiB of the %d KiB baseline", heap>>10, baseHeap>>10)
	}
}
