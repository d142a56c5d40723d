package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// A hub that was cut off while agents changed tells its subscribers only
// where things ended up once it is back: a widget whose status ended where
// it was gets nothing (alice moved to another device meanwhile, so the
// snapshot lacks her old lease and has a new one), and one whose status
// went through several values gets one frame, the last.
func TestResyncTellsOnlyWhereThingsEndedUp(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	a := startHubAt(t, proxy.URL(), time.Hour)
	b := startHub(t, ns, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	site, groupB, sentinel := newQueue(16), newQueue(16), newQueue(16)
	subscribeWidget(t, a, "acme", "", site)
	subscribeWidget(t, a, "acme", "b", groupB)
	subscribeWidget(t, a, "acme", "s", sentinel)
	site.expect(t, "widget_status", "status", "offline")
	groupB.expect(t, "widget_status", "status", "offline")
	sentinel.expect(t, "widget_status", "status", "offline")
	aliceOld := connect(t, b, "acme", "alice", []string{"a"}, newQueue(16))
	site.expect(t, "widget_status", "status", "online")
	bob := connect(t, b, "acme", "bob", []string{"b"}, newQueue(16))
	groupB.expect(t, "widget_status", "status", "online")
	carol := newQueue(64)
	carolSess := connect(t, a, "acme", "carol", []string{"c"}, carol)
	carol.expect(t, "welcome")
	carolSess.SubscribeRoster()
	carol.expect(t, "roster")

	proxy.Cut()
	connect(t, b, "acme", "alice", []string{"a"}, newQueue(16)) // her new device
	if err := aliceOld.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range []presence.Status{presence.Busy, presence.Offline, presence.Busy} {
		if err := bob.SetStatus(ctx, st, ""); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Restore()
	// The sentinel's change reaches the view after the resync, and the
	// site's frames are sent in the order they were made.
	connect(t, b, "acme", "sam", []string{"s"}, newQueue(16))
	sentinel.expect(t, "widget_status", "status", "online")

	site.empty(t)
	groupB.expect(t, "widget_status", "status", "busy")
	groupB.empty(t)
	// Carol's roster: one frame for bob, the last, none for alice; sam's
	// frames may come from the resync (one) or live (his record, then his
	// lease), depending on when the hub got back.
	bobFrames := 0
	for {
		f := carol.expect(t, "agent")
		switch f["id"] {
		case "bob":
			bobFrames++
			if f["status"] != "busy" {
				t.Fatalf("got %v, want bob's last status only", f)
			}
		case "sam":
		default:
			t.Fatalf("got %v, want nothing about anyone else", f)
		}
		if f["id"] == "sam" && f["status"] == "online" {
			break
		}
	}
	if bobFrames != 1 {
		t.Fatalf("got %d frames about bob, want 1", bobFrames)
	}
	carol.empty(t)
}
