package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// The layout of a deployment's keys: its sites are partitioned by a hash
// of their id, and each partition has a bucket of its own, so that writes
// spread over as many streams, each with its own leader. Partition 0's
// bucket has the base name (DefaultBucket), which is the one bucket of a
// deployment with one partition, as every deployment had before
// partitions; partition p > 0's is "<base>-<p>". The count is fixed when a
// deployment is created (Members.Layout).

// PartitionOf returns the partition of site among n (n > 0): the FNV-1a
// 32-bit hash of its id modulo n. It must never change: a site's keys live
// in its partition's bucket.
func PartitionOf(site string, n int) int {
	h := uint32(2166136261)
	for i := range len(site) {
		h ^= uint32(site[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// BucketName is the name of partition p's bucket in a layout whose
// partition 0 is base.
func BucketName(base string, p int) string {
	if p == 0 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, p)
}

// Layout is the stores of a deployment's partitions. It is safe for
// concurrent use.
type Layout struct {
	stores []*Store
	// byBucket finds a store by its bucket's name.
	byBucket map[string]*Store
}

// OpenLayout opens the buckets of partitions 1..n-1 like first, which is
// partition 0's, and returns the stores of all n.
func OpenLayout(ctx context.Context, first *Bucket, n int, cfg Config) (*Layout, error) {
	l := &Layout{byBucket: make(map[string]*Store)}
	for p := range n {
		b := first
		if p > 0 {
			var err error
			b, err = OpenBucket(ctx, first.js, BucketConfig{Name: BucketName(first.Name(), p), Replicas: first.replicas, LimitMarkerTTL: first.markerTTL})
			if err != nil {
				return nil, err
			}
		}
		s := New(b, cfg)
		l.stores = append(l.stores, s)
		l.byBucket[b.Name()] = s
	}
	return l, nil
}

// SingleLayout is the layout of one partition, whose store is s.
func SingleLayout(s *Store) *Layout {
	return &Layout{stores: []*Store{s}, byBucket: map[string]*Store{s.Bucket(): s}}
}

// Partitions returns how many partitions the layout has.
func (l *Layout) Partitions() int { return len(l.stores) }

// PartitionOf returns site's partition.
func (l *Layout) PartitionOf(site string) int { return PartitionOf(site, len(l.stores)) }

// For returns the store of site's partition.
func (l *Layout) For(site string) *Store { return l.stores[l.PartitionOf(site)] }

// Partition returns the store of partition p.
func (l *Layout) Partition(p int) *Store { return l.stores[p] }

// All returns every partition's store, by partition.
func (l *Layout) All() []*Store { return l.stores }

// Base returns the name of partition 0's bucket, which names the layout.
func (l *Layout) Base() string { return l.stores[0].Bucket() }

// WriteRetry returns how long a write is retried (Config.WriteRetry).
func (l *Layout) WriteRetry() time.Duration { return l.stores[0].WriteRetry() }

// Republished decodes a message a bucket of the layout republished; ok is
// false for one that is not.
func (l *Layout) Republished(m *nats.Msg) (*Entry, bool) {
	rest, ok := strings.CutPrefix(m.Subject, RepublishPrefix)
	if !ok {
		return nil, false
	}
	bucket, _, _ := strings.Cut(rest, ".")
	s := l.byBucket[bucket]
	if s == nil {
		return nil, false
	}
	e, ok := s.Republished(m)
	if !ok || !l.Holds(s, e.Key) {
		return nil, false
	}
	return e, true
}

// Holds reports whether key belongs in the bucket of s: its site is of
// that bucket's partition. A key of another partition's site in it is a
// left-over of a migration (MigrateFrom's purge markers), which the view
// must not apply: revisions of two buckets do not compare.
func (l *Layout) Holds(s *Store, key string) bool {
	k, ok := ParseKey(key)
	return ok && l.For(k.Site) == s
}

// ListIndex returns the index keys of replica in every partition.
func (l *Layout) ListIndex(ctx context.Context, replica string) ([]Key, error) {
	var out []Key
	for _, s := range l.stores {
		keys, err := s.ListIndex(ctx, replica)
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

// HasKeys reports whether the bucket of s holds any key.
func (s *Store) HasKeys(ctx context.Context) (bool, error) {
	info, err := s.js.Stream(ctx, "KV_"+s.kv.Bucket())
	if err != nil {
		return false, fmt.Errorf("failed to read bucket %s: %w", s.kv.Bucket(), err)
	}
	st := info.CachedInfo().State
	return st.Msgs > 0, nil
}
