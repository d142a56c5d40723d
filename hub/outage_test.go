package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
)

// leaseGone reports whether a device key has no message left in the stream,
// not even the marker of its expiry.
func leaseGone(t *testing.T, js jetstream.JetStream, key string) bool {
	t.Helper()
	st, err := js.Stream(context.Background(), "KV_"+store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.GetLastMsgForSubject(context.Background(), "$KV."+store.DefaultBucket+"."+key)
	return errors.Is(err, jetstream.ErrMsgNotFound)
}

// A hub cut off from NATS while a lease expires, and while the marker of that
// expiry expires too, must still learn that the agent went offline.
func TestViewCatchesUpAfterOutageLongerThanMarkers(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	const grace = 2 * time.Second
	a := startHubAt(t, proxy.URL(), grace)
	b := startHub(t, ns, grace)
	w := newQueue(16)
	subscribeWidget(t, a, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	dev := newQueue(16)
	s := connect(t, b, "acme", "alice", nil, dev)
	w.expect(t, "widget_status", "status", "online")

	proxy.Cut()
	// The device drops: its grace, and then the marker of its expiry, run
	// out while a is away.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	wstest.Eventually(t, waitTimeout, "the lease and its marker are gone", func() bool { return leaseGone(t, js, "d.acme.alice."+s.Device()) })
	w.empty(t)
	proxy.Restore()
	w.expect(t, "widget_status", "status", "offline", "reason", "no_agents")
}

// A session whose hub could not refresh its lease through an outage longer
// than the grace goes offline meanwhile, and is live again once its hub
// reaches NATS: it is not mistaken for a replaced session.
func TestSessionSurvivesOutageLongerThanGrace(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	const grace = 2 * time.Second
	a := startHubAt(t, proxy.URL(), grace)
	b := startHub(t, ns, grace)
	w := newQueue(16)
	subscribeWidget(t, b, "acme", "", w)
	w.expect(t, "widget_status", "status", "offline")
	dev := newQueue(16)
	connect(t, a, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")
	w.expect(t, "widget_status", "status", "online")

	proxy.Cut()
	w.expect(t, "widget_status", "status", "offline", "reason", "no_agents")
	proxy.Restore()
	w.expect(t, "widget_status", "status", "online", "reason", "agents_online")
	select {
	case reason := <-dev.kicked:
		t.Fatalf("got the session kicked (%v), want it kept", reason)
	default:
	}
}
