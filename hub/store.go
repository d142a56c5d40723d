package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/presence"
)

// The store: every write to the bucket goes through here. Writes that
// depend on what they replace are compare-and-set on the key's last
// revision; a writer that must see its own write waits until the view has
// applied its revision (applied.wait).

// updateAgent applies fn to the agent record at key with optimistic
// concurrency: it starts from the view, and on a conflict re-reads the bucket
// and tries again. fn reports whether it changed anything.
func (h *Hub) updateAgent(ctx context.Context, key string, fn func(rec *agentRecord, exists bool) bool) error {
	_, err := h.updateAgentRev(ctx, key, fn)
	return err
}

// updateAgentRev is updateAgent that also returns the bucket revision of the
// record it stored, or of the record it left alone (0 if there is none), so
// that the caller can wait for the view to apply it.
func (h *Hub) updateAgentRev(ctx context.Context, key string, fn func(rec *agentRecord, exists bool) bool) (uint64, error) {
	k, _ := parseKey(key)
	var (
		rec    agentRecord
		rev    uint64
		exists bool
	)
	if s := h.lockExistingSite(k.site); s != nil {
		if a, ok := s.agents[k.agent]; ok {
			rec, rev, exists = a.rec, a.rev, true
			rec.Groups = slices.Clone(rec.Groups)
		}
		h.unlockSite(s)
	}

	var written []byte // the last record this call tried to store
	for attempt := 0; attempt < 10; attempt++ {
		if !fn(&rec, exists) {
			return rev, nil
		}
		b, _ := json.Marshal(rec)
		written = b
		var stored uint64
		err := h.retry(ctx, func(ctx context.Context) error {
			var err error
			if exists {
				stored, err = h.kv.Update(ctx, key, b, rev)
				h.metrics.kvOp("update", err)
			} else {
				stored, err = h.kv.Create(ctx, key, b)
				h.metrics.kvOp("create", err)
			}
			return err
		})
		if err == nil {
			return stored, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, fmt.Errorf("failed to write agent record: %w", err)
		}
		var e jetstream.KeyValueEntry
		err = h.retry(ctx, func(ctx context.Context) error {
			var err error
			e, err = h.kv.Get(ctx, key)
			h.metrics.kvOp("get", ignoreNotFound(err))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			return err
		})
		switch {
		case err != nil:
			return 0, fmt.Errorf("failed to read agent record: %w", err)
		case e == nil:
			rec, rev, exists = agentRecord{}, 0, false
		case bytes.Equal(e.Value(), written):
			// An attempt whose acknowledgement was lost landed after all
			// (the record carries its time, so no other write equals it).
			return e.Revision(), nil
		default:
			if rec, err = decodeAgentRecord(e.Value()); err != nil {
				return 0, err
			}
			rev, exists = e.Revision(), true
		}
	}
	return 0, errors.New("hub: agent record kept changing; gave up")
}

// writeLease writes a device lease with TTL = grace. With expect > 0 the
// write succeeds only if the key's last revision is expect.
func (h *Hub) writeLease(ctx context.Context, key string, rec deviceRecord, expect uint64) (uint64, error) {
	b, _ := json.Marshal(rec)
	ttl := h.cfg.Grace
	if rec.ttl > 0 {
		ttl = rec.ttl
	}
	rev, err := h.publish(ctx, &nats.Msg{Subject: h.kvSubject + key, Data: b}, ttl, expect)
	if err != nil && !errors.Is(err, ErrReplaced) {
		return 0, fmt.Errorf("failed to write lease: %w", err)
	}
	return rev, err
}

// leaseOwner reads a device's lease: it returns the revision to expect when
// the lease is session's own or gone, and ErrReplaced when another session
// holds it.
func (h *Hub) leaseOwner(ctx context.Context, key, session string) (uint64, error) {
	var e jetstream.KeyValueEntry
	err := h.retry(ctx, func(ctx context.Context) error {
		var err error
		e, err = h.kv.Get(ctx, key)
		h.metrics.kvOp("get", ignoreNotFound(err))
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// Expired or removed: the session may take it again, unless an
		// admin revoked the device, which only a new hello undoes.
		last, err := h.lastMessage(ctx, key)
		switch {
		case err != nil:
			return 0, fmt.Errorf("failed to read lease: %w", err)
		case last.revoked():
			return 0, ErrRevoked
		}
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("failed to read lease: %w", err)
	}
	rec, err := decodeDeviceRecord(e.Value())
	if err != nil || rec.Session != session {
		return 0, ErrReplaced
	}
	return e.Revision(), nil
}

// purgeKey removes a key with a purge marker that NATS deletes after the
// marker TTL, and returns the marker's revision. With expect > 0 it succeeds
// only if the key's last revision is expect.
func (h *Hub) purgeKey(ctx context.Context, key string, expect uint64) (uint64, error) {
	var marker []byte
	if strings.HasPrefix(key, devicePrefix+".") {
		marker = byeMarker // tells a bye from an expired lease (events.go)
	}
	return h.purgeKeyWith(ctx, key, expect, marker)
}

// purgeKeyWith is purgeKey with the marker's body: what every replica's
// watch reads as the reason the key went (byeMarker, revokedMarker).
func (h *Hub) purgeKeyWith(ctx context.Context, key string, expect uint64, marker []byte) (uint64, error) {
	msg := nats.NewMsg(h.kvSubject + key)
	msg.Data = marker
	msg.Header.Set("KV-Operation", "PURGE")
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	return h.publish(ctx, msg, h.cfg.MarkerTTL, expect)
}

// publish writes msg to the bucket's stream with TTL ttl (the grace or a
// background lease's for leases, the marker TTL for purges); with expect >
// 0 only if the subject's last revision is expect, else ErrReplaced.
func (h *Hub) publish(ctx context.Context, msg *nats.Msg, ttl time.Duration, expect uint64) (uint64, error) {
	op := "lease"
	if msg.Header.Get("KV-Operation") != "" {
		op = "purge"
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgTTL(ttl)}
	if expect > 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(expect))
	}
	var ack *jetstream.PubAck
	err := h.retry(ctx, func(ctx context.Context) error {
		var err error
		ack, err = h.js.PublishMsg(ctx, msg, opts...)
		h.metrics.kvOp(op, err)
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

// PutSchedule stores the working hours of (site, group) for every replica
// and returns once this replica applies them. The schedule must be valid.
func (h *Hub) PutSchedule(ctx context.Context, site, group string, sched *presence.Schedule) error {
	if err := sched.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(sched)
	if err != nil {
		return fmt.Errorf("failed to encode schedule: %w", err)
	}
	return h.put(ctx, hoursKey(site, group), b)
}

// DeleteSchedule removes the working hours of (site, group); it reports
// whether there were any.
func (h *Hub) DeleteSchedule(ctx context.Context, site, group string) (bool, error) {
	if _, ok := h.Schedule(site, group); !ok {
		return false, nil
	}
	return true, h.purge(ctx, hoursKey(site, group))
}

// PutSettings stores the site's settings for every replica and returns once
// this replica applies them.
func (h *Hub) PutSettings(ctx context.Context, site string, settings presence.Settings) error {
	if err := settings.Validate(); err != nil {
		return err
	}
	if settings.AllowedOrigins == nil {
		settings.AllowedOrigins = []string{}
	}
	b, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("failed to encode settings: %w", err)
	}
	return h.put(ctx, settingsKey(site), b)
}

func (h *Hub) put(ctx context.Context, key string, value []byte) error {
	if !h.Ready() {
		return ErrNotReady
	}
	var rev uint64
	err := h.retry(ctx, func(ctx context.Context) error {
		var err error
		rev, err = h.kv.Put(ctx, key, value)
		h.metrics.kvOp("put", err)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", key, err)
	}
	return h.waitApplied(ctx, rev)
}

func (h *Hub) purge(ctx context.Context, key string) error {
	if !h.Ready() {
		return ErrNotReady
	}
	rev, err := h.purgeKey(ctx, key, 0)
	if err != nil {
		return fmt.Errorf("failed to remove %s: %w", key, err)
	}
	return h.waitApplied(ctx, rev)
}

// waitApplied waits until the view has applied bucket revision rev, so that
// a caller reads its own writes.
func (h *Hub) waitApplied(ctx context.Context, rev uint64) error { return h.applied.wait(ctx, rev) }

func ignoreNotFound(err error) error {
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}
