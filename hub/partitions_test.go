package hub_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
)

// sitesOf returns n site ids and the partition of each among partitions.
func sitesOf(n, partitions int) ([]string, map[string]int) {
	sites := make([]string, n)
	parts := make(map[string]int, n)
	for i := range sites {
		sites[i] = fmt.Sprintf("site-%d", i)
		parts[sites[i]] = store.PartitionOf(sites[i], partitions)
	}
	return sites, parts
}

// With several partitions, each site's keys are in its partition's bucket,
// the replicas share the partitions' duties, and when one dies the other
// takes its partitions over and its devices go offline.
func TestPartitionsShareKeysAndDuties(t *testing.T) {
	ns := natstest.Start(t)
	// Rendezvous hashing gives each of two replicas some of 16 partitions
	// but with a chance of 2 in 65,536 (of 4: 1 in 8).
	const partitions = 16
	cfg := hub.Config{Grace: 2 * time.Second, MarkerTTL: time.Second, Partitions: partitions}
	bucket := store.BucketConfig{LimitMarkerTTL: time.Second}
	a := startHubWith(t, ns.ClientURL(), nil, bucket, cfg, waitTimeout)
	b := startHubWith(t, ns.ClientURL(), nil, bucket, cfg, waitTimeout)
	wstest.Eventually(t, waitTimeout, "the replicas share the partitions", func() bool {
		da, db := gauge(t, a, "presencehub_duties"), gauge(t, b, "presencehub_duties")
		return da+db == partitions && da > 0 && db > 0
	})

	sites, parts := sitesOf(8, partitions)
	w := newQueue(64)
	for _, site := range sites {
		subscribeWidget(t, b, site, "", w)
		w.expect(t, "widget_status", "site", site, "status", "offline")
		connect(t, a, site, "alice", nil, newQueue(16))
		w.expect(t, "widget_status", "site", site, "status", "online")
	}

	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, site := range sites {
		for p := range partitions {
			kv, err := js.KeyValue(ctx, store.BucketName(store.DefaultBucket, p))
			if err != nil {
				t.Fatal(err)
			}
			_, err = kv.Get(ctx, "a."+site+".alice")
			if has := err == nil; has != (p == parts[site]) {
				t.Fatalf("bucket of partition %d has %s's agent: %v, want it only in its partition %d's", p, site, has, parts[site])
			}
		}
	}

	// OwnedSites lists each site on one replica, the owner of its
	// partition (the history's summaries of the site are its to write),
	// though both hold every site (a has the agents, b the widgets); then
	// every site on the survivor.
	all := slices.Clone(sites)
	slices.Sort(all)
	wstest.Eventually(t, waitTimeout, "each site listed by one replica", func() bool {
		both := append(a.OwnedSites(), b.OwnedSites()...)
		slices.Sort(both)
		return fmt.Sprint(both) == fmt.Sprint(all)
	})

	a.crash()
	wstest.Eventually(t, waitTimeout, "the survivor owns every partition", func() bool {
		return gauge(t, b, "presencehub_duties") == partitions
	})
	wstest.Eventually(t, waitTimeout, "the survivor lists every site", func() bool {
		got := b.OwnedSites()
		slices.Sort(got)
		return fmt.Sprint(got) == fmt.Sprint(all)
	})
	for range sites {
		w.expect(t, "widget_status", "status", "offline", "reason", "no_agents")
	}
	w.empty(t)
}

// A deployment laid out in one bucket, as every deployment was before
// partitions, started with several: its agents' statuses, settings and
// working hours are moved to their partitions' buckets, and read back the
// same.
func TestMigrationToPartitions(t *testing.T) {
	ns := natstest.Start(t)
	bucket := store.BucketConfig{LimitMarkerTTL: time.Second}
	old := startHubWith(t, ns.ClientURL(), nil, bucket, hub.Config{Grace: time.Hour, MarkerTTL: time.Second}, waitTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sites, _ := sitesOf(6, 4)
	for i, site := range sites {
		s := connect(t, old, site, "alice", nil, newQueue(16))
		if err := s.SetStatus(ctx, presence.Busy, "before"); err != nil {
			t.Fatal(err)
		}
		if err := old.PutSettings(ctx, site, presence.Settings{AllowedOrigins: []string{fmt.Sprintf("shop-%d.example", i)}}); err != nil {
			t.Fatal(err)
		}
		if err := old.PutSchedule(ctx, site, "", everyDay("09:00", "17:00")); err != nil {
			t.Fatal(err)
		}
		if err := s.Bye(ctx); err != nil {
			t.Fatal(err)
		}
	}
	old.stopGracefully()
	// A deployment from before partitions has no members bucket at all.
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, store.DefaultBucket+"-cluster"); err != nil {
		t.Fatal(err)
	}

	h := startHubWith(t, ns.ClientURL(), nil, bucket, hub.Config{Grace: time.Hour, MarkerTTL: time.Second, Partitions: 4}, waitTimeout)
	for i, site := range sites {
		agent, ok, err := h.Agent(site, "alice")
		if err != nil || !ok || agent.Status != presence.Busy {
			t.Fatalf("%s: got alice %+v, %v, %v after the migration, want her status busy kept", site, agent, ok, err)
		}
		if got, want := h.Settings(site).AllowedOrigins, fmt.Sprintf("shop-%d.example", i); len(got) != 1 || got[0] != want {
			t.Fatalf("%s: got allowed origins %v after the migration, want [%s]", site, got, want)
		}
		if _, ok := h.Schedule(site, ""); !ok {
			t.Fatalf("%s: working hours lost in the migration", site)
		}
	}
}
