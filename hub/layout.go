package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/hub/store"
)

// The deployment's layout: how many partitions its sites have, each with
// a bucket of its own (store.Layout). The count is stored in the members
// bucket by the first replica of a deployment; a deployment that ran with
// one bucket before partitions existed, started with more, is migrated
// first (store.Layout.MigrateFrom), by one replica, while the others wait.

// migrationClaim is the members bucket's claim of the one replica that
// migrates, and how long it holds without the replica finishing.
const (
	migrationClaim    = store.ClaimPrefix + "migrate"
	migrationClaimTTL = 5 * time.Minute
)

// openLayout reads the deployment's partition count, creating it with
// Config.Partitions for a new deployment (after migrating a one-bucket
// deployment's keys when that is more than one), and opens its buckets.
func (m *membership) openLayout(ctx context.Context, members *store.Members) (int, error) {
	h := m.h
	for {
		n, ok, err := members.StoredLayout(ctx)
		if err != nil {
			return 0, err
		}
		if !ok {
			n, ok, err = m.createLayout(ctx, members)
			if err != nil {
				return 0, err
			}
		}
		if ok {
			if n != h.cfg.Partitions {
				h.log.Warn("the deployment's partition count is the one stored when it was created, not the one configured",
					"stored", n, "configured", h.cfg.Partitions)
			}
			if n > 1 {
				l, err := store.OpenLayout(ctx, h.cfg.Bucket, n, h.storeCfg)
				if err != nil {
					return 0, err
				}
				h.store = l
			}
			return n, nil
		}
		// Another replica migrates: wait for the layout it stores.
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// createLayout stores the layout of Config.Partitions, migrating the keys
// of a one-bucket deployment first; ok is false when another replica holds
// the migration's claim.
func (m *membership) createLayout(ctx context.Context, members *store.Members) (n int, ok bool, err error) {
	h := m.h
	n = h.cfg.Partitions
	if n > 1 {
		has, err := store.New(h.cfg.Bucket, h.storeCfg).HasKeys(ctx)
		if err != nil {
			return 0, false, err
		}
		if has {
			if _, err := members.ClaimKey(ctx, migrationClaim, []byte(h.memberID), migrationClaimTTL, 0); err != nil {
				h.log.Info("another replica migrates the deployment to partitions; waiting", "err", err)
				return 0, false, nil
			}
			l, err := store.OpenLayout(ctx, h.cfg.Bucket, n, h.storeCfg)
			if err != nil {
				return 0, false, err
			}
			h.log.Info("migrating a one-bucket deployment to partitions", "partitions", n)
			m, err := l.MigrateFrom(ctx)
			if err != nil {
				return 0, false, fmt.Errorf("failed to migrate to %d partitions: %w", n, err)
			}
			h.log.Info("migrated to partitions", "partitions", n, "moved", m.Moved, "left_to_expire", m.Skipped)
		}
	}
	n, err = members.Layout(ctx, n)
	return n, err == nil, err
}
