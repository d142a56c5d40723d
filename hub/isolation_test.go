package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// stuckSubscriber's Send blocks until the test releases it, as a subscriber
// that breaks the non-blocking contract would; it then queues like queue.
type stuckSubscriber struct {
	*queue
	entered     chan struct{} // closed when the first Send began
	enteredOnce sync.Once
	release     chan struct{}
}

func newStuckSubscriber() *stuckSubscriber {
	return &stuckSubscriber{queue: newQueue(64), entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *stuckSubscriber) Send(f *hub.Frame) bool {
	s.enteredOnce.Do(func() { close(s.entered) })
	<-s.release
	return s.queue.Send(f)
}

// TestStuckSubscriberHoldsUpOnlyItsOwnSite shows that no lock is held while
// frames are sent: with one site's delivery stuck inside a subscriber's
// Send, another site's connects, status changes and frames go on, the stuck
// site's own view keeps applying changes, and statistics can be read. Once
// released, the stuck subscriber gets its site's frames in order.
func TestStuckSubscriberHoldsUpOnlyItsOwnSite(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	stuck := newStuckSubscriber()
	subscribeWidget(t, h, "stuck", "", stuck)
	select {
	case <-stuck.entered:
	case <-ctx.Done():
		t.Fatal("the stuck site's delivery never reached its subscriber")
	}
	// The stuck site's delivery goroutine now waits inside Send.

	// The stuck site's own view still applies changes: a connect and a
	// status change there wait for their revisions to be applied, not sent.
	stuckDev := newQueue(16)
	stuckSess := connect(t, h, "stuck", "sam", nil, stuckDev)
	if err := stuckSess.SetStatus(ctx, presence.Busy, "s1"); err != nil {
		t.Fatalf("failed to set a status on the stuck site: %v", err)
	}

	// Another site is not held up at all.
	widget := newQueue(16)
	subscribeWidget(t, h, "free", "", widget)
	widget.expect(t, "widget_status", "status", "offline")
	dev := newQueue(16)
	sess := connect(t, h, "free", "alice", nil, dev)
	dev.expect(t, "welcome")
	widget.expect(t, "widget_status", "status", "online")
	if err := sess.SetStatus(ctx, presence.Busy, "r1"); err != nil {
		t.Fatal(err)
	}
	dev.expect(t, "status", "status", "busy", "ref", "r1")
	widget.expect(t, "widget_status", "status", "busy")
	if st := h.AdminStats(ctx, "stuck"); st.SiteStats.Agents.Busy != 1 {
		t.Fatalf("got stats %+v for the stuck site, want its one busy agent", st.SiteStats.Agents)
	}
	if _, err := h.reg.Gather(); err != nil {
		t.Fatalf("failed to gather metrics: %v", err)
	}

	// Released, the stuck subscriber gets its site's story in order: the
	// snapshot (offline), then online when sam connected, then busy.
	close(stuck.release)
	stuck.expect(t, "widget_status", "status", "offline")
	stuck.expect(t, "widget_status", "status", "online")
	stuck.expect(t, "widget_status", "status", "busy")
	stuckDev.expect(t, "welcome")
	stuckDev.expect(t, "status", "status", "busy", "ref", "s1")
}
