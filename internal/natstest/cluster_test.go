//go:build unix

package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/natstest"
)

// openKV creates a three-replica bucket named "presence" on the cluster.
func openKV(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "presence", Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// putEventually puts until a put is acknowledged, and returns how long that
// took; it fails the test after deadline.
func putEventually(t *testing.T, kv jetstream.KeyValue, key string, deadline time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < deadline {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := kv.Put(ctx, key, []byte("v"))
		cancel()
		if err == nil {
			return time.Since(start)
		}
		last = err
	}
	t.Fatalf("no put acknowledged within %v: %v", deadline, last)
	return 0
}

// Killing the stream leader of a three-replica bucket elects another: puts
// go through again, the killed node comes back on its ports with its store,
// and nothing is lost. The time from the kill to the first acknowledged put
// is the election time that docs/operations.md quotes.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	c := natstest.StartCluster(t)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	kv := openKV(t, js)
	putEventually(t, kv, "before", 30*time.Second)

	leader := c.StreamLeader(t, js, "KV_presence")
	leader.Kill()
	took := putEventually(t, kv, "during", time.Minute)
	t.Logf("election after killing stream leader %s: first put acknowledged %v after the kill", leader.Name, took.Round(10*time.Millisecond))
	if next := c.StreamLeader(t, js, "KV_presence"); next == leader {
		t.Fatalf("got %s still leading after it was killed", next.Name)
	}

	leader.Restart()
	for _, key := range []string{"before", "during"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := kv.Get(ctx, key)
		cancel()
		if err != nil {
			t.Fatalf("failed to read %s after the restart: %v", key, err)
		}
	}
}

// A frozen node keeps its sockets open but answers nothing; a client that
// pings leaves it for another node, and the node is thawed at the end. A
// node left frozen would be thawed and killed by the cleanup.
func TestClusterFreezeAndThaw(t *testing.T) {
	c := natstest.StartCluster(t)
	n1 := c.Nodes[0]
	nc := c.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv := openKV(t, js)
	putEventually(t, kv, "before", 30*time.Second)

	connected := c.Node(nc.ConnectedServerName())
	if connected == nil {
		t.Fatalf("connected to unknown server %q", nc.ConnectedServerName())
	}
	connected.Freeze()
	took := putEventually(t, kv, "during", time.Minute)
	t.Logf("put acknowledged %v after freezing the client's node %s", took.Round(10*time.Millisecond), connected.Name)
	if nc.ConnectedServerName() == connected.Name {
		t.Fatalf("got the client still on frozen node %s", connected.Name)
	}
	connected.Thaw()
	// Leave n1 frozen (unless it was the one thawed): cleanup must end it.
	if n1 != connected {
		n1.Freeze()
	}
}
