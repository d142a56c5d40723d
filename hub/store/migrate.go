package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Migrating a deployment laid out in one bucket, as every deployment was
// before partitions, to the buckets of several partitions.

// Migrated counts what MigrateFrom moved.
type Migrated struct {
	Moved, Skipped int
}

// MigrateFrom moves the keys of the first bucket (partition 0's, the one
// bucket of a single-partition deployment) whose site belongs to another
// partition to that partition's bucket. Records that last are copied and
// then removed from the first bucket: agents (their status and who set
// it), working hours, settings and the coverage-lost keys (so that a
// coverage.restored still follows its coverage.lost). What lives by a TTL
// is left to run out where it is (Skipped): device leases (their devices
// connect again, to the new layout), activity keys (the idle clocks start
// again) and uncovered keys (the alert's delay starts again), as are the
// lease index keys. Copying again what was copied changes nothing, so a
// migration cut short is run again from the start.
func (l *Layout) MigrateFrom(ctx context.Context) (Migrated, error) {
	var m Migrated
	first := l.stores[0]
	if len(l.stores) == 1 {
		return m, nil
	}
	w, err := first.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return m, fmt.Errorf("failed to read bucket %s: %w", first.Bucket(), err)
	}
	defer w.Stop()
	var entries []jetstream.KeyValueEntry
	for e := range w.Updates() {
		if e == nil {
			break
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		k, ok := ParseKey(e.Key())
		if !ok || l.PartitionOf(k.Site) == 0 {
			continue
		}
		switch k.Kind {
		case KindAgent, KindHours, KindSettings, KindCoverageLost:
		default:
			m.Skipped++
			continue
		}
		if _, err := l.For(k.Site).Put(ctx, k, e.Value()); err != nil {
			return m, fmt.Errorf("failed to migrate %s: %w", k, err)
		}
		if _, err := first.Purge(ctx, k, e.Revision(), nil); err != nil && !errors.Is(err, ErrReplaced) {
			return m, fmt.Errorf("failed to remove migrated %s: %w", k, err)
		}
		m.Moved++
	}
	return m, nil
}
