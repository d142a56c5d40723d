package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/presencehub/presencehub/internal/jsretry"
)

// maxUpdateAttempts bounds the compare-and-set attempts of one update that
// find the record changed by another writer: a record that changes under
// every attempt is given up on.
const maxUpdateAttempts = 10

// ErrKeptChanging is returned by UpdateAgent when every attempt lost its
// compare-and-set.
var ErrKeptChanging = errors.New("hub: agent record kept changing; gave up")

// UpdateAgent changes the agent record of (site, agent) with optimistic
// concurrency, the one compare-and-set loop of the store. It starts from
// from, the caller's view of the record (nil: read it from the bucket),
// calls fn with the record, the revision it was read at (0 when there is
// none) and whether it exists, and stores what fn made of it if fn reports
// true. When another write came first it reads the bucket and calls fn
// again. It returns the revision of the record stored, or of the record fn
// left alone (0 if there is none), so that the caller can wait for its view
// to apply it.
func (s *Store) UpdateAgent(ctx context.Context, site, agent string, from *Versioned[AgentRecord],
	fn func(rec *AgentRecord, rev uint64, exists bool) bool) (uint64, error) {
	key := AgentKey(site, agent).String()
	var cur Versioned[AgentRecord]
	if from != nil {
		cur = *from
		cur.Rec.Groups = slices.Clone(cur.Rec.Groups)
	} else if err := s.readAgent(ctx, key, &cur); err != nil {
		return 0, err
	}
	// attempts are the records this call tried to store: any of them may
	// land late, its acknowledgement lost.
	var attempts [][]byte
	var resend []byte // an attempt to send again as it was
	deadline := time.Now().Add(s.cfg.WriteRetry)
	wait := jsretry.FirstWait
	for changed := 0; changed < maxUpdateAttempts; {
		b := resend
		if b == nil {
			if !fn(&cur.Rec, cur.Rev, cur.Exists) {
				return cur.Rev, nil
			}
			b, _ = json.Marshal(cur.Rec)
			attempts = append(attempts, b)
		}
		resend = nil
		expected := cur
		var stored uint64
		err := s.retry(ctx, func(ctx context.Context) (err error) {
			if expected.Exists {
				stored, err = s.kv.Update(ctx, key, b, expected.Rev)
				s.count("update", err)
			} else {
				stored, err = s.kv.Create(ctx, key, b)
				s.count("create", err)
			}
			return err
		})
		if err == nil {
			return stored, nil
		}
		if !IsConflict(err) {
			return 0, fmt.Errorf("failed to write agent record: %w", err)
		}
		var raw []byte
		if err := s.readAgentRaw(ctx, key, &cur, &raw); err != nil {
			return 0, err
		}
		if cur.Exists && slices.ContainsFunc(attempts, func(a []byte) bool { return bytes.Equal(a, raw) }) {
			// An attempt whose acknowledgement was lost landed after all
			// (the record carries its time, so no other write equals it).
			return cur.Rev, nil
		}
		if cur.Exists == expected.Exists && cur.Rev == expected.Rev && s.leaderHolds(ctx, key, &cur, &raw) {
			if cur.Exists && slices.ContainsFunc(attempts, func(a []byte) bool { return bytes.Equal(a, raw) }) {
				return cur.Rev, nil
			}
			changed++
			continue
		}
		if cur.Exists == expected.Exists && cur.Rev == expected.Rev {
			// The record has not changed: what the stream's leader refused
			// is a write still in its log, not yet committed (this call's
			// earlier attempt, whose acknowledgement was lost, or another
			// writer's), as a leader that lost its quorum does with every
			// retry. Wait for it to commit or fail, within the write retry,
			// and send the same record again: no change of the record to
			// give up on.
			if s.cfg.WriteRetry <= 0 || time.Now().Add(wait).After(deadline) {
				return 0, fmt.Errorf("failed to write agent record: a write in flight at the stream's leader did not settle: %w (%w)", err, ErrOutcomeUnknown)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, fmt.Errorf("failed to write agent record: %w (%w)", ctx.Err(), ErrOutcomeUnknown)
			case <-t.C:
			}
			wait = min(2*wait, jsretry.MaxWait)
			resend = b
			continue
		}
		changed++
	}
	return 0, ErrKeptChanging
}

// leaderHolds asks the stream's leader for the last message of key, and
// reports whether it holds a record other than cur, which a read answered
// by a replica behind the leader can miss; it then puts the leader's
// record in cur and raw. When the leader cannot tell (an election), or
// holds what cur says, it reports false.
func (s *Store) leaderHolds(ctx context.Context, key string, cur *Versioned[AgentRecord], raw *[]byte) bool {
	k, _ := ParseKey(key)
	m, err := s.LastMessage(ctx, k)
	if err != nil || m == nil || m.Seq == 0 || m.Seq == cur.Rev || bytes.Contains(m.Header, []byte("KV-Operation")) {
		return false
	}
	rec, err := DecodeAgentRecord(m.Data)
	if err != nil {
		return false
	}
	*cur, *raw = Versioned[AgentRecord]{Rec: rec, Rev: m.Seq, Exists: true}, m.Data
	return true
}

// readAgent reads the agent record at key into v, retrying through an
// election.
func (s *Store) readAgent(ctx context.Context, key string, v *Versioned[AgentRecord]) error {
	var raw []byte
	return s.readAgentRaw(ctx, key, v, &raw)
}

func (s *Store) readAgentRaw(ctx context.Context, key string, v *Versioned[AgentRecord], raw *[]byte) error {
	var e jetstream.KeyValueEntry
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		e, err = s.kv.Get(ctx, key)
		s.count("get", ignoreNotFound(err))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			e = nil
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to read agent record: %w", err)
	}
	if e == nil {
		*v, *raw = Versioned[AgentRecord]{}, nil
		return nil
	}
	rec, err := DecodeAgentRecord(e.Value())
	if err != nil {
		return err
	}
	*v, *raw = Versioned[AgentRecord]{Rec: rec, Rev: e.Revision(), Exists: true}, e.Value()
	return nil
}
