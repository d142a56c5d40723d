package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/jsretry"
)

// BucketConfig says how the presence bucket is created.
type BucketConfig struct {
	Name     string // default DefaultBucket
	Replicas int    // default 1; 3 on a NATS cluster
	// LimitMarkerTTL is how long the marker that NATS leaves when a lease
	// expires stays; it is what lets every watcher see the expiry. Default 1m.
	LimitMarkerTTL time.Duration
}

// OpenBucket creates the presence bucket, or updates an existing one to the
// settings the hub relies on: one value per key, per-message TTLs and limit
// markers. One value per key because leases are per-key TTLs: NATS expires a
// key by TTL, leaving the marker that tells every watcher, only through its
// last revision, and with a longer history it raises each message's TTL to
// the marker TTL. A watch that runs behind therefore skips revisions replaced
// meanwhile (see Hub.noteSkipped).
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg BucketConfig) (jetstream.KeyValue, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.LimitMarkerTTL == 0 {
		cfg.LimitMarkerTTL = DefaultMarkerTTL
	}
	kvcfg := jetstream.KeyValueConfig{
		Bucket:         cfg.Name,
		Description:    "presencehub: agent records and device leases",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
		LimitMarkerTTL: cfg.LimitMarkerTTL,
	}
	var kv jetstream.KeyValue
	err := jsretry.Open(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, kvcfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open bucket %q: %w", cfg.Name, err)
	}
	return kv, nil
}
