package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/jsretry"
)

// Records is a bucket of JSON records kept for another part of the hub
// (webhook registrations): created once, read, changed with a
// compare-and-set, removed, listed and watched. It keeps every key-value
// handle of the module in this package.
type Records struct {
	kv jetstream.KeyValue
}

// RecordsConfig says how a Records bucket is created.
type RecordsConfig struct {
	Name        string
	Description string
	Replicas    int // default 1
}

// Errors of Records.
var (
	ErrNotFound = errors.New("record not found")
	ErrExists   = errors.New("record exists")
	ErrConflict = errors.New("record changed since it was read")
)

// OpenRecords creates the bucket, or updates an existing one to cfg.
func OpenRecords(ctx context.Context, js jetstream.JetStream, cfg RecordsConfig) (*Records, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	var kv jetstream.KeyValue
	err := jsretry.Open(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: cfg.Name, Description: cfg.Description, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open bucket %q: %w", cfg.Name, err)
	}
	return &Records{kv: kv}, nil
}

// Create stores value at key, or returns ErrExists.
func (r *Records) Create(ctx context.Context, key string, value []byte) error {
	_, err := r.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrExists
	}
	return unavailable(err)
}

// Get returns the value at key and its revision, or ErrNotFound.
func (r *Records) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := r.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

// Update stores value at key if its revision is still rev, or returns
// ErrConflict.
func (r *Records) Update(ctx context.Context, key string, value []byte, rev uint64) error {
	_, err := r.kv.Update(ctx, key, value, rev)
	if IsConflict(err) {
		return ErrConflict
	}
	return unavailable(err)
}

// Purge removes key and its history.
func (r *Records) Purge(ctx context.Context, key string) error {
	return unavailable(r.kv.Purge(ctx, key))
}

// Keys lists the keys that match filter (a subject filter: "acme.*").
func (r *Records) Keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := r.kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// WatchAll watches every record, as Store.WatchAll does the presence
// bucket.
func (r *Records) WatchAll(ctx context.Context) (*Watcher, error) { return watchAll(ctx, r.kv) }
