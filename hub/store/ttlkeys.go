package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Keys whose TTL is a deadline of a rule: an agent's activity (the idle
// rule) and a widget's uncovered key (the uncovered alert). When NATS
// expires one, every replica's watch sees its marker; no replica runs a
// timer for it.

// WriteActivity stores an agent's activity key with TTL ttl, replacing the
// one there: its deadline starts again.
func (s *Store) WriteActivity(ctx context.Context, site, agent string, rec ActivityRecord, ttl time.Duration) error {
	b, _ := json.Marshal(rec)
	msg := &nats.Msg{Subject: s.subject + ActivityKey(site, agent).String(), Data: b}
	err := s.retry(ctx, func(ctx context.Context) error {
		_, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(ttl))
		s.count("activity", err)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to write activity: %w", err)
	}
	return nil
}

// Create stores value at key with TTL ttl (0: none) unless the key holds a
// value already, in one attempt: replicas doing the same write together
// write it once. created is false when the key was there.
func (s *Store) Create(ctx context.Context, key Key, value any, ttl time.Duration) (created bool, err error) {
	b, err := json.Marshal(value)
	if err != nil {
		return false, fmt.Errorf("failed to encode %s: %w", key, err)
	}
	var opts []jetstream.KVCreateOpt
	if ttl > 0 {
		opts = append(opts, jetstream.KeyTTL(ttl))
	}
	_, err = s.kv.Create(ctx, key.String(), b, opts...)
	if errors.Is(err, jetstream.ErrKeyExists) {
		s.count("create", nil)
		return false, nil
	}
	s.count("create", err)
	if err != nil {
		return false, fmt.Errorf("failed to create %s: %w", key, err)
	}
	return true, nil
}

// CreateRetrying is Create retried through an election within the store's
// write retry.
func (s *Store) CreateRetrying(ctx context.Context, key Key, value any, ttl time.Duration) (created bool, err error) {
	err = s.retry(ctx, func(ctx context.Context) (err error) {
		created, err = s.Create(ctx, key, value, ttl)
		return err
	})
	return created, err
}
