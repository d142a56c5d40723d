package hub_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// everyDay is a schedule open from to until, every day, in UTC.
func everyDay(from, until string) *presence.Schedule {
	s := &presence.Schedule{Timezone: "UTC", Weekly: map[string][]presence.Interval{}}
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		s.Weekly[d] = []presence.Interval{{From: from, To: until}}
	}
	return s
}

// TestSignOffAtClose: two replicas whose clock is 10s before the site's
// 17:00 close both reach the boundary; the agents the site's hours govern
// who are online or busy are set offline by hours, once; a member of a
// group whose own hours run later, and an agent already offline, are not.
func TestSignOffAtClose(t *testing.T) {
	ns := natstest.Start(t)
	// A fake wall clock on real timers. It reads 16:00 while the agents
	// arrive, however long that takes; then it is moved to 16:59:50 and
	// the schedules are stored, so the replicas arm their timers for the
	// 17:00 close 10 real seconds ahead.
	var offset atomic.Int64
	setClock := func(at time.Time) { offset.Store(int64(time.Until(at))) }
	setClock(time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC))
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Now: now}
	a := startHubWith(t, ns.ClientURL(), nil, hub.BucketConfig{LimitMarkerTTL: time.Second}, cfg, waitTimeout)
	b := startHubWith(t, ns.ClientURL(), nil, hub.BucketConfig{LimitMarkerTTL: time.Second}, cfg, waitTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	putSettings(t, a, "acme", hub.SiteSettings{SignOffAtClose: true})

	alice := watchRecord(t, ns, "acme", "alice") // no group: the site's hours
	bob := watchRecord(t, ns, "acme", "bob")     // sales: open until 18:00
	carol := watchRecord(t, ns, "acme", "carol") // support: no hours of its own, the site's
	dave := watchRecord(t, ns, "acme", "dave")   // offline already
	connect(t, a, "acme", "alice", nil, newQueue(64))
	connect(t, b, "acme", "bob", []string{"sales"}, newQueue(64))
	c := connect(t, b, "acme", "carol", []string{"support"}, newQueue(64))
	d := connect(t, a, "acme", "dave", nil, newQueue(64))
	if err := c.SetStatus(ctx, presence.Busy, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.SetStatus(ctx, presence.Offline, ""); err != nil {
		t.Fatal(err)
	}
	for _, w := range []chan recordWrite{alice, bob, carol, dave} {
		nextWrite(t, w, "the record a first connect creates")
	}
	expectWrite(t, carol, presence.Busy, hub.ByDevice)
	expectWrite(t, dave, presence.Offline, hub.ByDevice)
	setClock(time.Date(2026, 12, 7, 16, 59, 50, 0, time.UTC))
	if err := a.PutSchedule(ctx, "acme", "", everyDay("09:00", "17:00")); err != nil {
		t.Fatal(err)
	}
	if err := a.PutSchedule(ctx, "acme", "sales", everyDay("09:00", "18:00")); err != nil {
		t.Fatal(err)
	}
	// Both replicas arm their timers from the schedules: B once its
	// view has applied the second one.
	waitApplied(t, lastRevision(t, ns, "h.acme.sales"), b)

	wa := expectWrite(t, alice, presence.Offline, hub.ByHours)
	wc := expectWrite(t, carol, presence.Offline, hub.ByHours)
	waitApplied(t, max(wa.Rev, wc.Rev), a, b)
	for _, h := range []*testHub{a, b} {
		if st, _, _ := h.Agent("acme", "bob"); st.Status != presence.Online {
			t.Fatalf("bob of sales (open until 18:00) is %s, want online", st.Status)
		}
	}
	// The replica whose compare-and-set lost re-read each record, found
	// it offline and wrote nothing: no second sign-off of alice or carol,
	// and none of bob or dave, has been written by now.
	select {
	case w := <-bob:
		t.Fatalf("bob's record was written %s by %s", w.Status, w.By)
	case w := <-dave:
		t.Fatalf("dave's record was written %s by %s", w.Status, w.By)
	case w := <-alice:
		t.Fatalf("alice's record was written again: %s by %s", w.Status, w.By)
	case w := <-carol:
		t.Fatalf("carol's record was written again: %s by %s", w.Status, w.By)
	default:
	}
}
