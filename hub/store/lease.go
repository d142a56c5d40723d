package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Leases and purges are written to the bucket's stream as messages with
// their own TTL (the grace, a background lease's max, the marker TTL),
// which the key-value API has no call for.

// WriteLease writes a device lease. A held lease (a live session's, see
// DeviceRecord.Held) has no TTL; a dropped one has TTL = the grace, or
// rec.TTL in background mode. With expect > 0 the write succeeds only if the
// key's last revision is expect, else it returns ErrReplaced.
func (s *Store) WriteLease(ctx context.Context, key Key, rec DeviceRecord, expect uint64) (uint64, error) {
	b, _ := json.Marshal(rec)
	var ttl time.Duration
	if !rec.Held() {
		ttl = s.cfg.Grace
		if rec.TTL > 0 {
			ttl = rec.TTL
		}
	}
	rev, err := s.publish(ctx, "lease", &nats.Msg{Subject: s.subject + key.String(), Data: b}, ttl, expect)
	if err != nil && !errors.Is(err, ErrReplaced) {
		return 0, fmt.Errorf("failed to write lease: %w", err)
	}
	return rev, err
}

// WriteIndex records that replica holds the live lease of the device of
// key (an IndexKey) for session, and returns the revision to expect when
// it is removed.
func (s *Store) WriteIndex(ctx context.Context, key Key, session string) (uint64, error) {
	rev, err := s.publish(ctx, "index", &nats.Msg{Subject: s.subject + key.String(), Data: []byte(session)}, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("failed to write lease index: %w", err)
	}
	return rev, nil
}

// DeleteIndex removes an index key if its last revision is still expect
// (a newer session of the device may have written it since: then it stays).
func (s *Store) DeleteIndex(ctx context.Context, key Key, expect uint64) error {
	_, err := s.Purge(ctx, key, expect, nil)
	if err != nil && !errors.Is(err, ErrReplaced) {
		return fmt.Errorf("failed to remove lease index: %w", err)
	}
	return nil
}

// ListIndex returns the index keys of replica: the leases it held live.
func (s *Store) ListIndex(ctx context.Context, replica string) ([]Key, error) {
	var out []Key
	err := s.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		l, err := s.kv.ListKeysFiltered(ctx, string(KindIndex)+".*."+replica+".>")
		s.count("list", ignoreNotFound(err))
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for key := range l.Keys() {
			if k, ok := ParseKey(key); ok && k.Kind == KindIndex {
				out = append(out, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list the leases of replica %s: %w", replica, err)
	}
	return out, nil
}

// DropIndexed starts the grace of the lease that index key idx says its
// replica held live, because that replica is gone: the lease is written as
// dropped at now (DeviceRecord.Dropped) if it is still held by that
// replica's session at the revision read, and the index key is removed if
// it is still the one read. It reports whether it wrote the lease.
func (s *Store) DropIndexed(ctx context.Context, idx Key, now time.Time) (bool, error) {
	ie, err := s.get(ctx, idx)
	if err != nil || ie == nil {
		return false, err
	}
	dropped := false
	le, err := s.get(ctx, idx.Lease())
	if err != nil {
		return false, err
	}
	if le != nil {
		rec, err := DecodeDeviceRecord(le.Value())
		if err == nil && rec.Hub == idx.Replica && rec.Session == string(ie.Value()) && rec.Held() {
			rec, _ = rec.Dropped(now, s.cfg.Grace)
			_, err = s.WriteLease(ctx, idx.Lease(), rec, le.Revision())
			switch {
			case errors.Is(err, ErrReplaced):
				// Its device came back elsewhere, or the session ended.
			case err != nil:
				return false, err
			default:
				dropped = true
			}
		}
	}
	return dropped, s.DeleteIndex(ctx, idx, ie.Revision())
}

// get reads key, retried through an election; nil when it has no value.
func (s *Store) get(ctx context.Context, key Key) (jetstream.KeyValueEntry, error) {
	var e jetstream.KeyValueEntry
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		e, err = s.kv.Get(ctx, key.String())
		s.count("get", ignoreNotFound(err))
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("failed to read %s: %w", key, err)
	}
	return e, nil
}

// LeaseOwner reads a device's lease: it returns the revision to expect
// when the lease is session's own or gone, ErrReplaced when another session
// holds it, and ErrRevoked when an admin removed it.
func (s *Store) LeaseOwner(ctx context.Context, key Key, session string) (uint64, error) {
	e, err := s.get(ctx, key)
	switch {
	case err == nil && e == nil:
		// Expired or removed: the session may take it again, unless an
		// admin revoked the device, which only a new hello undoes.
		last, err := s.LastMessage(ctx, key)
		switch {
		case err != nil:
			return 0, fmt.Errorf("failed to read lease: %w", err)
		case last.Revoked():
			return 0, ErrRevoked
		}
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("failed to read lease: %w", err)
	}
	rec, err := DecodeDeviceRecord(e.Value())
	if err != nil || rec.Session != session {
		return 0, ErrReplaced
	}
	return e.Revision(), nil
}

// Purge removes a key with a purge marker whose body is marker (what every
// replica's watch reads as the reason the key went: ByeMarker,
// RevokedMarker, ...) and which NATS deletes after the marker TTL, and
// returns the marker's revision. With expect > 0 it succeeds only if the
// key's last revision is expect, else it returns ErrReplaced.
func (s *Store) Purge(ctx context.Context, key Key, expect uint64, marker []byte) (uint64, error) {
	return s.purge(ctx, key.String(), expect, marker)
}

// purge is Purge of a key given as the bucket stores it.
func (s *Store) purge(ctx context.Context, key string, expect uint64, marker []byte) (uint64, error) {
	msg := nats.NewMsg(s.subject + key)
	msg.Data = marker
	msg.Header.Set("KV-Operation", "PURGE")
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	return s.publish(ctx, "purge", msg, s.cfg.MarkerTTL, expect)
}

// publish writes msg to the bucket's stream with TTL ttl (0: none); with expect > 0
// only if the subject's last revision is expect, else ErrReplaced.
func (s *Store) publish(ctx context.Context, op string, msg *nats.Msg, ttl time.Duration, expect uint64) (uint64, error) {
	var opts []jetstream.PublishOpt
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	if expect > 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(expect))
	}
	return s.publishOpts(ctx, op, msg, opts...)
}

// publishOpts writes msg to the bucket's stream with opts, retried through
// an election; a lost expectation of the subject's last revision is
// ErrReplaced.
func (s *Store) publishOpts(ctx context.Context, op string, msg *nats.Msg, opts ...jetstream.PublishOpt) (uint64, error) {
	var ack *jetstream.PubAck
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		ack, err = s.js.PublishMsg(ctx, msg, opts...)
		s.count(op, err)
		return err
	})
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, ErrReplaced
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// StoredMsg is a message of the bucket's stream as the message-get API
// returns it.
type StoredMsg struct {
	Seq    uint64 `json:"seq"`  // its revision
	Header []byte `json:"hdrs"` // NATS/1.0 header block
	Data   []byte `json:"data"`
}

// Revoked reports whether m is the purge marker an admin's revocation
// leaves on a lease key; false for nil.
func (m *StoredMsg) Revoked() bool {
	return m != nil && bytes.Equal(m.Data, RevokedMarker) && bytes.Contains(m.Header, []byte("KV-Operation: PURGE"))
}

// LastMessage returns the last message the stream's leader holds for key
// now, or nil when there is none. It asks the leader (the message-get API,
// not a direct get that any replica may answer from an older state), once,
// within WriteAttemptTimeout.
func (s *Store) LastMessage(ctx context.Context, key Key) (*StoredMsg, error) {
	return s.lastMessage(ctx, key.String())
}

// lastMessage is LastMessage of a key given as the bucket stores it.
func (s *Store) lastMessage(ctx context.Context, key string) (*StoredMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, WriteAttemptTimeout)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": s.subject + key})
	msg, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+s.kv.Bucket(), req)
	if err != nil {
		return nil, fmt.Errorf("failed to ask for the last message of %s: %w", key, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *StoredMsg          `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("failed to decode the last message of %s: %w", key, err)
	}
	switch {
	case resp.Error == nil && resp.Message != nil:
		return resp.Message, nil
	case resp.Error == nil:
		return &StoredMsg{}, nil // a message with nothing in it
	case resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, nil
	}
	return nil, fmt.Errorf("failed to get the last message of %s: %w", key, resp.Error)
}
