package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// presenceKV opens the presence bucket on a connection of the test's own.
func presenceKV(t *testing.T, ns interface{ ClientURL() string }) (jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	js, err := jetstream.New(natstest.ConnectURL(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv
}

// A live session whose lease another replica writes as dropped (it took
// this replica for gone, and handed the lease over after this replica had
// asserted it again) writes it again: the device stays live, not offline
// once the grace runs out.
func TestLiveLeaseDroppedByAnotherIsAssertedAgain(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, ns, 2*time.Second)
	s := connect(t, h, "acme", "alice", nil, newQueue(16))
	js, kv := presenceKV(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	keys, err := kv.ListKeysFiltered(ctx, "x.acme.*.alice."+s.Device())
	if err != nil {
		t.Fatal(err)
	}
	var idx store.Key
	for key := range keys.Keys() {
		idx, _ = store.ParseKey(key)
	}
	if idx.Kind != store.KindIndex {
		t.Fatal("got no index key of the live lease")
	}
	bucket, err := store.OpenBucket(ctx, js, store.BucketConfig{LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	taker := store.New(bucket, store.Config{Grace: 2 * time.Second})
	if dropped, err := taker.DropIndexed(ctx, idx, time.Now()); err != nil || !dropped {
		t.Fatalf("got %v, %v dropping the live lease as a take-over does, want it dropped", dropped, err)
	}
	wstest.Eventually(t, waitTimeout, "the session asserts its lease again", func() bool {
		rec, ok := leaseRecord(t, kv, "d.acme.alice."+s.Device())
		return ok && rec.State == presence.Live && rec.Session == s.ID()
	})
}

// A device that drops while NATS cannot take its lease's drop: the write
// is tried again until NATS takes it, so the lease, which has no TTL while
// live, does not stay live for as long as the replica lives.
func TestDropWrittenOnceNATSIsBack(t *testing.T) {
	ns := natstest.Start(t)
	proxy := natstest.NewProxy(t, ns.Addr().String())
	h := startHubAt(t, proxy.URL(), time.Hour)
	s := connect(t, h, "acme", "alice", nil, newQueue(16))
	_, kv := presenceKV(t, ns)

	proxy.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Close(ctx); err == nil {
		t.Fatal("got the drop stored with NATS cut off")
	}
	proxy.Restore()
	wstest.Eventually(t, waitTimeout, "the drop is stored once NATS is back", func() bool {
		rec, ok := leaseRecord(t, kv, "d.acme.alice."+s.Device())
		return ok && rec.State == presence.Lingering
	})
}
