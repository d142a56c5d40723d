//go:build unix

package hub_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
)

// While the cluster elects a new JetStream meta leader, replicas connected
// to the surviving nodes stay ready: their probe reads the bucket, which its
// stream's replicas answer without a meta leader. (A probe the meta leader
// answers took every replica out of its load balancer at once.)
func TestReplicasStayReadyThroughMetaLeaderElection(t *testing.T) {
	c := natstest.StartCluster(t)
	var leader *natstest.Node
	wstest.Eventually(t, chaosWait, "the cluster names its meta leader", func() bool {
		leader = c.MetaLeader()
		return leader != nil
	})
	var survivors []string
	for _, n := range c.Nodes {
		if n != leader {
			survivors = append(survivors, n.URL())
		}
	}
	start := func(url string) *testHub {
		return startHubWith(t, url, []nats.Option{nats.PingInterval(2 * time.Second), nats.MaxPingsOutstanding(2)},
			store.BucketConfig{Replicas: 3, LimitMarkerTTL: chaosMarkerTTL},
			hub.Config{Grace: chaosGrace, RefreshEvery: chaosRefresh, LivenessTTL: chaosLiveness, MarkerTTL: chaosMarkerTTL},
			chaosWait)
	}
	hubs := []*testHub{start(survivors[0]), start(survivors[1])}
	for _, h := range hubs {
		wstest.Eventually(t, chaosWait, "the hubs are ready", func() bool { return h.Healthy() == nil })
	}

	leader.Kill()
	// Until a surviving node names another meta leader, every look at the
	// hubs must find them ready.
	wstest.Eventually(t, chaosWait, "a new meta leader", func() bool {
		for i, h := range hubs {
			if err := h.Healthy(); err != nil {
				t.Fatalf("hub %d not ready during the meta leader election: %v", i, err)
			}
		}
		next := c.MetaLeader()
		return next != nil && next != leader
	})
	for i, h := range hubs {
		if err := h.Healthy(); err != nil {
			t.Fatalf("hub %d not ready after the meta leader election: %v", i, err)
		}
	}
}
