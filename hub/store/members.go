package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The members bucket is the cluster's own small bucket: which replicas are
// live and which of them owns each partition of the sites (package
// hub/cluster decides; this file only reads and writes). Its keys:
//
//	r.<id>     a replica's liveness key, TTL refreshed while it runs
//	p.<n>      partition n's owner (the value is its id), TTL refreshed by it
//	t.<name>   a one-shot duty claim, TTL = how long the claim holds
//	m.<id>     a replica that may hold device leases, no TTL: written when
//	           it starts, removed once its leases were handed over after
//	           it went (Forget), so a replica gone while none watched is
//	           found by the next that starts
//	e.<n>      "<id> <rev>": partition n's owner id loaded its bucket up to
//	           revision rev, for the partition's standby (Announce), no TTL
//	layout     {"partitions":N}, created by the first replica, no TTL
//
// It holds O(replicas + partitions) keys, so one watch of the whole bucket
// is cheap.
const (
	LivenessPrefix  = "r."     // + a replica's id: its liveness key
	PartitionPrefix = "p."     // + a partition's number: its owner's key (PartitionKey)
	ClaimPrefix     = "t."     // + a duty's name: its one-shot claim
	MemberPrefix    = "m."     // + a replica's id: its record (Register)
	AnnouncePrefix  = "e."     // + a partition's number: its owner's load (Announce)
	LayoutKey       = "layout" // the partition layout (Layout)
)

// DefaultMembersBucket is the members bucket's default name.
const DefaultMembersBucket = "presence-cluster"

// MaxPartitions bounds a layout's partition count.
const MaxPartitions = 1024

// PartitionKey is the key of partition n's owner.
func PartitionKey(n int) string { return PartitionPrefix + strconv.Itoa(n) }

// MembersConfig says how the members bucket is created.
type MembersConfig struct {
	Name     string // default DefaultMembersBucket
	Replicas int    // default 1; 3 on a NATS cluster
	// LimitMarkerTTL is how long the marker of an expired or released key
	// stays, for watchers to see; also the TTL of release markers. Default
	// DefaultMarkerTTL.
	LimitMarkerTTL time.Duration
	// WriteRetry bounds how long a write is retried through an election,
	// as Config.WriteRetry does for the store; callers usually bound their
	// writes with a context deadline shorter than the keys' TTL anyway.
	WriteRetry time.Duration
}

// Members is the opened members bucket. It is safe for concurrent use.
type Members struct {
	s *Store // its writes, retries and reads, on the members bucket
}

// OpenMembers creates the members bucket, or updates an existing one to
// cfg: one value per key and per-message TTLs with limit markers, for the
// reasons OpenBucket gives.
func OpenMembers(ctx context.Context, js jetstream.JetStream, cfg MembersConfig) (*Members, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultMembersBucket
	}
	b, err := openTTLBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:         cfg.Name,
		Description:    "presencehub: replica liveness and partition ownership",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.Replicas,
		LimitMarkerTTL: cfg.LimitMarkerTTL,
	})
	if err != nil {
		return nil, err
	}
	// Release markers last as long as expiry markers (New's default
	// when that is the default too).
	return &Members{s: New(b, Config{MarkerTTL: cfg.LimitMarkerTTL, WriteRetry: cfg.WriteRetry})}, nil
}

// Bucket returns the bucket's name.
func (m *Members) Bucket() string { return m.s.Bucket() }

// Conn returns the NATS connection the bucket is used through: its
// reconnects are when a watch should start again.
func (m *Members) Conn() *nats.Conn { return m.s.Conn() }

// Heartbeat writes replica id's liveness key r.<id> with TTL ttl and
// returns its revision. With expect > 0 it succeeds only if the key's last
// revision is expect (a refresh); with expect == 0 only if the key holds no
// value: absent, or only the marker of its expiry or release left (a fresh
// start). Otherwise it returns an error wrapping ErrReplaced: the key
// expired, or another writer holds it.
//
// value must tell its writer from every other (the replica's id and start
// time): a write that finds value itself in its way, at a revision other
// than expect, takes it for an earlier attempt of its own whose answer was
// lost, and returns that revision.
func (m *Members) Heartbeat(ctx context.Context, id string, value []byte, ttl time.Duration, expect uint64) (uint64, error) {
	rev, err := m.putTTL(ctx, "heartbeat", LivenessPrefix+id, value, ttl, expect)
	if err != nil {
		return 0, fmt.Errorf("failed to write liveness key of %s: %w", id, err)
	}
	return rev, nil
}

// ClaimKey is Heartbeat for any key of the bucket: a partition's owner
// (PartitionKey; the value is the owner's id) or a one-shot claim
// (ClaimPrefix + name; the value must be the claim's own, not just the
// claimer's id, or two claims of the same replica would both win).
func (m *Members) ClaimKey(ctx context.Context, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error) {
	rev, err := m.putTTL(ctx, "claim", key, value, ttl, expect)
	if err != nil {
		return 0, fmt.Errorf("failed to claim %s: %w", key, err)
	}
	return rev, nil
}

// Announce writes partition's e.<n> key: replica id, its owner, has loaded
// the partition's bucket up to revision rev.
func (m *Members) Announce(ctx context.Context, partition int, id string, rev uint64) error {
	key := AnnouncePrefix + strconv.Itoa(partition)
	msg := &nats.Msg{Subject: m.s.subject + key, Data: []byte(id + " " + strconv.FormatUint(rev, 10))}
	if _, err := m.s.publishOpts(ctx, "announce", msg); err != nil {
		return fmt.Errorf("failed to announce the load of partition %d: %w", partition, err)
	}
	return nil
}

// ParseAnnounce reads an e.<n> key's value: the owner's id and revision.
func ParseAnnounce(value []byte) (id string, rev uint64, ok bool) {
	i := bytes.LastIndexByte(value, ' ')
	if i <= 0 {
		return "", 0, false
	}
	rev, err := strconv.ParseUint(string(value[i+1:]), 10, 64)
	return string(value[:i]), rev, err == nil
}

// Register writes replica id's record m.<id> with no TTL.
func (m *Members) Register(ctx context.Context, id string, value []byte) error {
	key := MemberPrefix + id
	if !ValidMembersKey(key) {
		return fmt.Errorf("failed to register %q: invalid id", id)
	}
	if _, err := m.s.publishOpts(ctx, "register", &nats.Msg{Subject: m.s.subject + key, Data: value}); err != nil {
		return fmt.Errorf("failed to register replica %s: %w", id, err)
	}
	return nil
}

// Forget removes replica id's record.
func (m *Members) Forget(ctx context.Context, id string) error {
	if err := m.ReleaseKey(ctx, MemberPrefix+id, 0); err != nil {
		return fmt.Errorf("failed to forget replica %s: %w", id, err)
	}
	return nil
}

// ReleaseKey removes key with a purge marker if its last revision is still
// expect (any revision with 0), else returns an error wrapping ErrReplaced;
// a key removed already since expect (expired, or an earlier attempt whose
// answer was lost) counts as released. Watchers see the removal at once.
func (m *Members) ReleaseKey(ctx context.Context, key string, expect uint64) error {
	if !ValidMembersKey(key) {
		return fmt.Errorf("failed to release %q: invalid key", key)
	}
	_, err := m.s.purge(ctx, key, expect, nil)
	if errors.Is(err, ErrReplaced) {
		if last, lerr := m.s.lastMessage(ctx, key); lerr == nil && (last == nil || last.Seq > expect && last.Removal()) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("failed to release %s: %w", key, err)
	}
	return nil
}

// WatchMembers watches the whole bucket: every key's last entry (a removed
// key's marker included while it lasts), a nil entry, then every put,
// release and expiry as it is stored.
func (m *Members) WatchMembers(ctx context.Context) (*Watcher, error) { return watchAll(ctx, m.s.kv) }

// layoutRecord is the value of LayoutKey.
type layoutRecord struct {
	Partitions int `json:"partitions"`
}

// Layout returns the deployment's partition count: the one stored at
// LayoutKey, or partitions, which it stores when no layout is there yet
// (the first replica's count wins for good). partitions and the stored
// count must be 1..MaxPartitions.
// StoredLayout returns the stored partition count, or ok false when the
// deployment has none yet.
func (m *Members) StoredLayout(ctx context.Context) (n int, ok bool, err error) {
	var last *StoredMsg
	err = m.s.retry(ctx, func(ctx context.Context) (err error) {
		last, err = m.s.lastMessage(ctx, LayoutKey)
		return err
	})
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("failed to read layout: %w", err)
	case last == nil || last.Removal():
		return 0, false, nil
	}
	var rec layoutRecord
	if err := json.Unmarshal(last.Data, &rec); err != nil || rec.Partitions < 1 || rec.Partitions > MaxPartitions {
		return 0, false, fmt.Errorf("failed to read layout: stored %q is not 1..%d partitions", last.Data, MaxPartitions)
	}
	return rec.Partitions, true, nil
}

func (m *Members) Layout(ctx context.Context, partitions int) (int, error) {
	if partitions < 1 || partitions > MaxPartitions {
		return 0, fmt.Errorf("failed to read layout: %d partitions, want 1..%d", partitions, MaxPartitions)
	}
	b, _ := json.Marshal(layoutRecord{Partitions: partitions})
	var stored []byte
	err := m.s.retry(ctx, func(ctx context.Context) error {
		// Twice, in case the layout is removed between the create and
		// the read (by hand: nothing of the hub removes it).
		for range 2 {
			_, err := m.s.kv.Create(ctx, LayoutKey, b)
			m.s.count("create", ignoreExists(err))
			if !errors.Is(err, jetstream.ErrKeyExists) {
				stored = b
				return err
			}
			// Asked of the leader: a replica behind it may not have it yet.
			last, err := m.s.lastMessage(ctx, LayoutKey)
			if err != nil || (last != nil && !last.Removal()) {
				stored = last.Data
				return err
			}
		}
		return errors.New("layout removed while read")
	})
	if err != nil {
		return 0, fmt.Errorf("failed to read layout: %w", err)
	}
	var rec layoutRecord
	if err := json.Unmarshal(stored, &rec); err != nil || rec.Partitions < 1 || rec.Partitions > MaxPartitions {
		return 0, fmt.Errorf("failed to read layout: stored %q is not 1..%d partitions", stored, MaxPartitions)
	}
	return rec.Partitions, nil
}

// putTTL writes value at key with TTL ttl: with expect > 0 a
// compare-and-set on the key's last revision, with expect == 0 a create
// that a marker of the key's removal does not stop. A write that finds
// value itself in its way at another revision than expect counts as done.
func (m *Members) putTTL(ctx context.Context, op, key string, value []byte, ttl time.Duration, expect uint64) (uint64, error) {
	switch {
	case !ValidMembersKey(key):
		return 0, fmt.Errorf("invalid key %q", key)
	case ttl < time.Second:
		return 0, fmt.Errorf("TTL %v is below NATS's resolution of 1s", ttl)
	}
	create := expect == 0
	msg := &nats.Msg{Subject: m.s.subject + key, Data: value}
	// A create meets a marker once, or twice when the marker expires
	// between its read and the write over it.
	for range 3 {
		rev, err := m.s.publishOpts(ctx, op, msg,
			jetstream.WithMsgTTL(ttl), jetstream.WithExpectLastSequencePerSubject(expect))
		if !errors.Is(err, ErrReplaced) {
			return rev, err
		}
		last, err := m.s.lastMessage(ctx, key)
		switch {
		case err != nil:
			return 0, err
		case last != nil && last.Seq != expect && !last.Removal() && bytes.Equal(last.Data, value):
			return last.Seq, nil // an earlier attempt of this write
		case !create:
			return 0, ErrReplaced
		case last == nil:
			expect = 0
		case last.Removal():
			expect = last.Seq
		default:
			return 0, ErrReplaced
		}
	}
	return 0, ErrReplaced
}

// Removal reports whether m is the marker of a key's removal: a delete or
// purge, or the marker NATS leaves when a TTL expires; false for nil.
func (m *StoredMsg) Removal() bool {
	return m != nil && (bytes.Contains(m.Header, []byte("KV-Operation:")) ||
		bytes.Contains(m.Header, []byte(jetstream.MarkerReasonHeader+":")))
}

// ValidMembersKey reports whether key is a valid key of the members
// bucket: 1-256 of the characters NATS allows in a key (A-Za-z0-9 and
// -_=/.), no empty token. Callers check replica ids and claim names with
// it (LivenessPrefix + id, ClaimPrefix + name).
func ValidMembersKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' || len(key) > 256 {
		return false
	}
	for i := range len(key) {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '=', c == '/':
		case c == '.' && key[i-1] != '.':
		default:
			return false
		}
	}
	return true
}

func ignoreExists(err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return err
}
