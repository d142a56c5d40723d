package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// BenchmarkEmbeddedStoreWrites measures the cost of --nats-sync
// (docs/benchmarks.md#sync-to-disk): the hub's two frequent writes, a
// device's lease (written at hello and refreshed every --lease-refresh) and
// a status change (a compare-and-set of the agent record), on the embedded
// nats-server as serve starts it, its store in the test's temporary
// directory (put TMPDIR on the disk to measure). "one" writes one at a
// time: ns/op is the latency of a write. "64" keeps 64 writes in flight,
// as a replica's lease keeper may: ns/op is the time per write at that
// concurrency, writes/s its throughput.
//
//	go test -run '^$' -bench EmbeddedStoreWrites -benchtime 3s ./cmd/presencehub/
func BenchmarkEmbeddedStoreWrites(b *testing.B) {
	for _, sync := range []string{"always", "2m"} {
		b.Run("sync="+sync, func(b *testing.B) {
			cfg := &serveConfig{dataDir: b.TempDir(), natsSync: sync, startupTimeout: 30 * time.Second,
				natsPing: defaultNATSPingInterval, natsMaxPings: defaultNATSMaxPingsOut}
			nc, _, shutdown, err := connectNATS(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer shutdown()
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			bucket, err := store.OpenBucket(ctx, js, store.BucketConfig{})
			if err != nil {
				b.Fatal(err)
			}
			st := store.New(bucket, store.Config{Grace: 2 * time.Minute})
			var seq atomic.Int64 // spreads the writes over keys

			lease := func(b *testing.B) {
				i := seq.Add(1)
				key := store.LeaseKey("acme", fmt.Sprintf("agent%d", i%1000), fmt.Sprintf("device%d", i%1000))
				rec := store.DeviceRecord{Kind: presence.Web, Since: time.Now(), Session: "s", Hub: "h", State: presence.Live}
				if _, err := st.WriteLease(ctx, key, rec, 0); err != nil {
					b.Error(err)
				}
			}
			b.Run("lease/one", func(b *testing.B) {
				for b.Loop() {
					lease(b)
				}
			})
			b.Run("lease/64", func(b *testing.B) {
				b.SetParallelism(64)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						lease(b)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
			b.Run("status/one", func(b *testing.B) {
				var cur store.Versioned[store.AgentRecord]
				n := 0
				for b.Loop() {
					writeStatus(b, ctx, st, "solo", &cur, n)
					n++
				}
			})
			b.Run("status/64", func(b *testing.B) {
				b.SetParallelism(64)
				b.RunParallel(func(pb *testing.PB) {
					agent := fmt.Sprintf("agent%d", seq.Add(1))
					var cur store.Versioned[store.AgentRecord]
					for n := 0; pb.Next(); n++ {
						writeStatus(b, ctx, st, agent, &cur, n)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
		})
	}
}

// writeStatus changes agent's status to online or busy (by n) from cur, the
// writer's copy of the record, as the hub does from its view's.
func writeStatus(b *testing.B, ctx context.Context, st *store.Store, agent string, cur *store.Versioned[store.AgentRecord], n int) {
	status := []presence.Status{presence.Online, presence.Busy}[n%2]
	rev, err := st.UpdateAgent(ctx, "acme", agent, cur, func(rec *store.AgentRecord, _ uint64, _ bool) bool {
		rec.Status, rec.At = status, time.Now()
		return true
	})
	if err != nil {
		b.Error(err)
		return
	}
	cur.Rec.Status, cur.Rev, cur.Exists = status, rev, true
}
