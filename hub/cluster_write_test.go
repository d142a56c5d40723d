//go:build unix

package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// A status change sent through the bucket stream's leader while the leader
// has lost its quorum is stored once a follower is back, instead of being
// given up as "kept changing": a leader left alone may refuse a retry's
// compare-and-set as conflicting with the change's first attempt, still in
// its log and not yet committed, while the record it reads back has not
// changed at all.
func TestStatusChangeThroughLeaderWithoutQuorum(t *testing.T) {
	a, s, dev, others := leaderAlone(t, hub.Config{Grace: time.Hour, WriteRetry: time.Hour, HealthEvery: 500 * time.Millisecond})
	before := kvErrors(t, a)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*chaosWait)
		defer cancel()
		done <- s.SetStatus(ctx, presence.Busy, "r1")
	}()
	wstest.Eventually(t, chaosWait, "the change has failed once and is being retried", func() bool { return kvErrors(t, a) > before })
	others[0].Restart()
	if err := <-done; err != nil {
		t.Fatalf("got %v, want the change stored once the stream has its quorum back", err)
	}
	// The watch catches up once the stream has elected its leader.
	select {
	case f := <-dev.frames:
		if !strings.Contains(string(f), `"ref":"r1"`) || !strings.Contains(string(f), `"status":"busy"`) {
			t.Fatalf("got %s, want busy for r1", f)
		}
	case <-time.After(chaosWait):
		t.Fatal("got no status frame for r1 once the stream was back")
	}
}

// leaderAlone starts a three-node cluster with a three-replica bucket, a
// hub with cfg connected to the node that leads the bucket's stream, and a
// device of alice on it; then it kills the two other nodes, so that the
// leader is left alone without its quorum, and returns them to restart.
func leaderAlone(t *testing.T, cfg hub.Config) (*testHub, *hub.Session, *queue, []*natstest.Node) {
	t.Helper()
	c := natstest.StartCluster(t)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket := store.BucketConfig{Replicas: 3, LimitMarkerTTL: chaosMarkerTTL}
	ctx, cancel := context.WithTimeout(context.Background(), chaosWait)
	defer cancel()
	if _, err := store.OpenBucket(ctx, js, bucket); err != nil {
		t.Fatal(err)
	}
	leader := c.StreamLeader(t, js, kvStream)
	a := startHubWith(t, leader.URL(), nil, bucket, cfg, chaosWait)
	dev := newQueue(16)
	s := connect(t, a, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")
	c.WaitStreamCurrent(t, js, kvStream)
	if l := c.StreamLeader(t, js, kvStream); l != leader {
		t.Skipf("the stream's leader moved to %s before the test could cut it off", l.Name)
	}
	var others []*natstest.Node
	for _, n := range c.Nodes {
		if n != leader {
			others = append(others, n)
			n.Kill()
		}
	}
	return a, s, dev, others
}
