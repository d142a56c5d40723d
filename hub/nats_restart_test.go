package hub_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// Chaos (b): NATS restarts while statuses change. Changes made during the
// outage fail (the caller gets an error and may retry); once NATS is back,
// every hub's view converges to what the bucket holds and the widgets end
// on the right status.
func TestViewsConvergeAfterNATSRestart(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 30 * time.Second
	a := startHubAt(t, ns.ClientURL(), grace)
	b := startHubAt(t, ns.ClientURL(), grace)
	w := newQueue(64)
	subscribeWidget(t, b, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	alice := connect(t, a, "acme", "alice", nil, newQueue(64))
	bob := connect(t, b, "acme", "bob", []string{"sales"}, newQueue(64))
	w.expect(t, "widget_status", "status", "online")

	ctx := context.Background()
	for _, s := range []*hub.Session{alice, bob} {
		if err := s.SetStatus(ctx, presence.Busy, "before"); err != nil {
			t.Fatal(err)
		}
	}
	before := w.expect(t, "widget_status", "status", "busy")

	natstest.Restart(t, ns)
	// Changes keep coming while the hubs reconnect: each is retried until
	// NATS takes it, as a client retries after an internal error.
	setEventually := func(s *hub.Session, st presence.Status, ref string) {
		t.Helper()
		wstest.Eventually(t, 30*time.Second, "a status change goes through after the restart", func() bool {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return s.SetStatus(cctx, st, ref) == nil
		})
	}
	setEventually(alice, presence.Online, "after-1")
	setEventually(bob, presence.Offline, "after-2")
	setEventually(alice, presence.Busy, "after-3")

	// Both views converge on the truth: alice busy, bob offline by choice.
	for name, h := range map[string]*testHub{"a": a, "b": b} {
		wstest.Eventually(t, 30*time.Second, "hub "+name+" shows the site busy", func() bool {
			ws, err := h.WidgetStatus("acme", "")
			return err == nil && ws.Status == presence.Busy && ws.Reason == presence.ReasonAllBusy
		})
		wstest.Eventually(t, 30*time.Second, "hub "+name+" shows sales busy (alice is in no group)", func() bool {
			ws, err := h.WidgetStatus("acme", "sales")
			return err == nil && ws.Status == presence.Busy
		})
	}
	// The subscribed widget ends on busy, whatever it passed through (a hub
	// that caught up from a snapshot may have seen no change at all); the
	// view shows it before the site's delivery goroutine has sent it.
	last := before["status"]
	wstest.Eventually(t, 30*time.Second, "the widget's last frame says busy", func() bool {
		for {
			select {
			case f := <-w.frames:
				var m map[string]any
				if err := json.Unmarshal(f, &m); err != nil {
					t.Fatal(err)
				}
				last = m["status"]
				continue
			default:
			}
			return last == "busy"
		}
	})
	select {
	case reason := <-w.kicked:
		t.Fatalf("got the widget kicked (%v), want it kept through the restart", reason)
	default:
	}
}
