package transport_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

func TestWidgetKeepalive(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{
		PingInterval: 50 * time.Millisecond, PongTimeout: 200 * time.Millisecond,
	}})

	// A widget that reads answers the server's pings and stays open.
	pings := make(chan struct{}, 100)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	alive, _, err := websocket.Dial(ctx, r.wsURL+"/v1/widget?site=acme", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer alive.CloseNow()
	frames := make(chan []byte, 16)
	go func() {
		for {
			_, b, err := alive.Read(context.Background())
			if err != nil {
				close(frames)
				return
			}
			frames <- b
		}
	}()
	for i := range 3 {
		select {
		case <-pings:
		case <-time.After(waitTimeout):
			t.Fatalf("got %d pings, want 3", i)
		}
	}
	// The server answers the widget's own pings too.
	if err := alive.Ping(ctx); err != nil {
		t.Fatalf("got %v pinging the server, want a pong", err)
	}

	// A widget that does not answer pings (a peer gone without closing) is
	// closed by the server.
	silent, _, err := websocket.Dial(ctx, r.wsURL+"/v1/widget?site=acme", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.CloseNow()
	var closeErr error
	for closeErr == nil {
		_, _, closeErr = silent.Read(ctx)
	}
	var ce websocket.CloseError
	if !errors.As(closeErr, &ce) || ce.Code != websocket.StatusPolicyViolation {
		t.Fatalf("got %v on the silent widget, want close 1008", closeErr)
	}

	// The live one still gets frames.
	connectAgent(t, r, mintToken(t, "acme", "alice"), "", "web")
	for f := range frames {
		if strings.Contains(string(f), `"status":"online"`) {
			return
		}
	}
	t.Fatal("the live widget closed, want it open and told alice is online")
}

// Pings go out every --ping-interval even when --pong-timeout is longer: a
// widget counts several within a deadline that a ping every pong timeout
// could not meet.
func TestPingsEveryIntervalWhateverThePongTimeout(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{
		PingInterval: 20 * time.Millisecond, PongTimeout: time.Hour,
	}})
	c, _, err := wstest.DialRaw(t, widgetURL(r, "acme", ""), wstest.RawOptions{Wait: waitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	for pings := 0; pings < 5; {
		f, err := c.ReadFrame()
		if err != nil {
			t.Fatalf("got %v after %d pings, want 5", err, pings)
		}
		if f.Op == wstest.OpPing {
			pings++
		}
	}
}
