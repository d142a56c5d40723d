//go:build unix

package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
)

// clusterWait bounds the waits of a test on a NATS cluster: the cluster
// starting, a stream electing its leader after a node comes back.
const clusterWait = 60 * time.Second

// A device's status change waits out a bucket stream that has lost its
// quorum, and meanwhile the same socket goes on reading: it answers a
// ping, answers a bad message at once, queues a second change and refuses
// a third, over the device's queue bound, with rate_limited. Once the
// stream is back the changes land in order, and the device gets the status
// frame with its ref. (When operations ran on the socket's reader, the
// reader waited inside the first change and read nothing, pongs included,
// until NATS took it.)
func TestSocketReadsWhileStatusChangeWaitsOutStream(t *testing.T) {
	c := natstest.StartCluster(t)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	bucket := store.BucketConfig{Replicas: 3}
	if _, err := store.OpenBucket(ctx, js, bucket); err != nil {
		t.Fatal(err)
	}
	// The hub reaches NATS through one node, a follower of the bucket's
	// stream, which stays up while the two others go: its connection
	// lives while the stream has no quorum. (A leader left alone would
	// answer writes itself, with errors of its own.)
	stream := "KV_" + store.DefaultBucket
	leader := c.StreamLeader(t, js, stream)
	var survivor *natstest.Node
	var others []*natstest.Node
	for _, n := range c.Nodes {
		if n != leader && survivor == nil {
			survivor = n
		} else {
			others = append(others, n)
		}
	}
	r := wstest.StartReplica(t, nil, wstest.ReplicaOptions{
		Secret: testSecret,
		Bucket: bucket,
		// The first change waits for the stream however long it takes;
		// the test ends it by bringing a node back.
		Hub:       hub.Config{Grace: time.Hour, WriteRetry: time.Hour},
		Transport: transport.Config{DeviceOpQueue: 2},
		NATSURL:   survivor.URL(),
		Wait:      clusterWait,
	})
	alice := connectAgent(t, &replica{hub: r.Hub, srv: r.Server, http: r.HTTP, wsURL: r.WSURL}, mintToken(t, "acme", "alice"), "", "desktop")
	c.WaitStreamCurrent(t, js, stream)
	if l := c.StreamLeader(t, js, stream); l != leader {
		t.Fatalf("got the stream's leader moved to %s, want %s still", l.Name, leader.Name)
	}

	for _, n := range others {
		n.Kill()
	}
	alice.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "r1"})

	pctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := alice.Conn.Ping(pctx); err != nil {
		t.Fatalf("got %v pinging the hub while a status change waits for NATS, want a pong", err)
	}
	alice.Send(map[string]string{"type": "set_status", "status": "away", "ref": "bad"})
	alice.WaitFor("error", "code", protocol.CodeBadRequest, "ref", "bad")
	alice.Send(map[string]string{"type": "set_status", "status": "offline", "ref": "r2"})
	alice.Send(map[string]string{"type": "set_status", "status": "online", "ref": "r3"})
	alice.WaitFor("error", "code", protocol.CodeRateLimited, "ref", "r3")

	others[0].Restart()
	alice.Wait = clusterWait // the stream elects a leader, the watch catches up
	// A status frame carries the latest status: r1's may be replaced by
	// r2's before the watch reads it (docs/protocol.md), but r2 is last.
	for {
		f := alice.Next()
		switch {
		case f.Str("type") == "error":
			t.Fatalf("got %s, want the changes stored once the stream is back", f)
		case f.Str("type") != "status":
		case f.Str("ref") == "r2":
			if f.Str("status") != "offline" {
				t.Fatalf("got %s, want offline for r2", f)
			}
			return
		case f.Str("ref") != "r1" || f.Str("status") != "busy":
			t.Fatalf("got %s, want busy for r1 or offline for r2", f)
		}
	}
}
