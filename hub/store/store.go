package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presencehub/presencehub/internal/jsretry"
)

// Defaults of the bucket and the store.
const (
	DefaultBucket     = "presence"
	DefaultMarkerTTL  = time.Minute
	DefaultWriteRetry = 15 * time.Second
)

// BucketConfig says how the presence bucket is created.
type BucketConfig struct {
	Name     string // default DefaultBucket
	Replicas int    // default 1; 3 on a NATS cluster
	// LimitMarkerTTL is how long the marker that NATS leaves when a lease
	// expires stays; it is what lets every watcher see the expiry. Default 1m.
	LimitMarkerTTL time.Duration
}

// Bucket is the opened presence bucket; only a Store reads and writes it.
type Bucket struct {
	js        jetstream.JetStream
	kv        jetstream.KeyValue
	replicas  int
	markerTTL time.Duration
}

// Name returns the bucket's name.
func (b *Bucket) Name() string { return b.kv.Bucket() }

// Replicas returns how many replicas the bucket's stream has.
func (b *Bucket) Replicas() int { return b.replicas }

// OpenBucket creates the presence bucket, or updates an existing one to the
// settings the hub relies on: one value per key, per-message TTLs and limit
// markers. One value per key because leases are per-key TTLs: NATS expires a
// key by TTL, leaving the marker that tells every watcher, only through its
// last revision, and with a longer history it raises each message's TTL to
// the marker TTL. A watch that runs behind therefore skips revisions
// replaced meanwhile (the hub's watch notices and re-reads the bucket).
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg BucketConfig) (*Bucket, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultBucket
	}
	return openTTLBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:         cfg.Name,
		Description:    "presencehub: agent records and device leases",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
		LimitMarkerTTL: cfg.LimitMarkerTTL,
		// Every stored message, republished for the replicas that follow
		// its site (follow.go).
		RePublish: republish(cfg.Name),
	})
}

// openTTLBucket creates or updates a bucket of per-message TTLs with cfg,
// through a forming cluster; no replicas are 1, no limit marker TTL is
// DefaultMarkerTTL.
func openTTLBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (*Bucket, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.LimitMarkerTTL == 0 {
		cfg.LimitMarkerTTL = DefaultMarkerTTL
	}
	var kv jetstream.KeyValue
	err := jsretry.Open(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open bucket %q: %w", cfg.Bucket, err)
	}
	return &Bucket{js: js, kv: kv, replicas: cfg.Replicas, markerTTL: cfg.LimitMarkerTTL}, nil
}

// Config configures a Store.
type Config struct {
	// Grace is the TTL of a live or dropped device's lease; required.
	Grace time.Duration
	// MarkerTTL is how long purge markers stay; default DefaultMarkerTTL.
	MarkerTTL time.Duration
	// WriteRetry bounds how long a write that meets a stream without a
	// leader, or a server that went away, is retried; 0 means
	// DefaultWriteRetry, negative means no retries.
	WriteRetry time.Duration
	// Metrics counts the store's operations; nil counters count nothing.
	Metrics Metrics
}

// Metrics are the store's counters, registered by its owner.
type Metrics struct {
	// Ops counts bucket operations by op, Errors those that failed (a
	// lost compare-and-set that the caller resolves is no failure).
	Ops, Errors *prometheus.CounterVec
	// Retries counts writes retried through an election, by outcome:
	// stored, failed or unknown.
	Retries *prometheus.CounterVec
}

// Store reads and writes the presence bucket for one replica. It is safe
// for concurrent use.
type Store struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	subject string // "$KV.<bucket>.", the subject prefix of keys
	cfg     Config
}

// New returns a store of bucket b.
func New(b *Bucket, cfg Config) *Store {
	if cfg.MarkerTTL == 0 {
		cfg.MarkerTTL = DefaultMarkerTTL
	}
	if cfg.WriteRetry == 0 {
		cfg.WriteRetry = DefaultWriteRetry
	}
	return &Store{js: b.js, kv: b.kv, subject: "$KV." + b.kv.Bucket() + ".", cfg: cfg}
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.kv.Bucket() }

// Conn returns the NATS connection the store uses.
func (s *Store) Conn() *nats.Conn { return s.js.Conn() }

// WriteRetry returns how long a write is retried through an election or a
// NATS reconnect; a caller that wants the write stored should allow at
// least this long.
func (s *Store) WriteRetry() time.Duration { return max(s.cfg.WriteRetry, 0) }

// probeKey is the key the health probe reads: no key of the layout has it,
// so the answer is always "not found".
const probeKey = "_probe"

// Probe reads a key that never exists, a direct get answered by a replica
// of the bucket's stream through the server this replica is connected to:
// it fails while that server is frozen or unreachable, and succeeds during
// a stream or meta leader election, which writes ride out and which must
// not take every replica out of its load balancer at once. "No responders"
// comes from the connected server itself while the stream's replicas stop
// serving reads for an election: the server is alive, so that is an
// answer too.
func (s *Store) Probe(ctx context.Context) error {
	_, err := s.kv.Get(ctx, probeKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, nats.ErrNoResponders) {
		return nil
	}
	return err
}

// Put stores value at key (settings, a schedule) and returns its revision.
func (s *Store) Put(ctx context.Context, key Key, value []byte) (uint64, error) {
	var rev uint64
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		rev, err = s.kv.Put(ctx, key.String(), value)
		s.count("put", err)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", key, err)
	}
	return rev, nil
}

// Exists reports whether key holds a value now (one read, not retried).
func (s *Store) Exists(ctx context.Context, key Key) (bool, error) {
	_, err := s.kv.Get(ctx, key.String())
	s.count("get", ignoreNotFound(err))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("failed to read %s: %w", key, err)
}

// count counts one bucket operation and its failure; ErrReplaced and
// conflicts that the caller resolves are not failures.
func (s *Store) count(op string, err error) {
	m := s.cfg.Metrics
	if m.Ops != nil {
		m.Ops.WithLabelValues(op).Inc()
	}
	if m.Errors != nil && err != nil && !errors.Is(err, ErrReplaced) && !IsConflict(err) {
		m.Errors.WithLabelValues(op).Inc()
	}
}

// IsConflict reports whether err is a lost optimistic-concurrency race,
// which the callers resolve.
func IsConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}
