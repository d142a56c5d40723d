package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// The bucket does not grow with churn: 10,000 distinct devices connect and
// leave, half by bye and half by dropping, and once the grace and the
// marker TTL have run out the bucket holds what it held before plus the
// agents' records.
func TestBucketDoesNotGrowWithChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churns 10,000 devices")
	}
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Second) // the shortest grace NATS TTLs allow
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.Stream(ctx, "KV_"+store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	messages := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	baseline := messages()

	const devices, agents = 10000, 10
	var g errgroup.Group
	g.SetLimit(32)
	for i := range devices {
		g.Go(func() error {
			agent := []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"}[i%agents]
			s, err := h.Connect(ctx, hub.Identity{Site: "churn", Agent: agent}, hub.DeviceHello{Kind: presence.Web}, newQueue(64))
			if err != nil {
				return err
			}
			if i%2 == 0 {
				return s.Bye(ctx)
			}
			return s.Close(ctx)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("churn failed: %v", err)
	}
	peak := messages()
	t.Logf("bucket messages: %d before, %d right after the churn", baseline, peak)
	wstest.Eventually(t, 60*time.Second, "the bucket is back to its baseline plus the agent records", func() bool {
		return messages() <= baseline+agents
	})
}
