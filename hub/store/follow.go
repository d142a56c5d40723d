package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Following one site: the bucket republishes every message it stores, as
// it stores it, to core NATS subjects (RepublishPrefix + bucket + key), so
// a replica that serves a site subscribes to that site's keys alone, which
// costs no JetStream consumer, and reads the site's keys once
// (LoadSite) to start from. A republished message carries its revision and
// the key's previous revision, which is what lets the follower tell a
// message it already has.

// RepublishPrefix starts the subjects the bucket republishes to.
const RepublishPrefix = "presencehub.kv."

// republish is the bucket's republish setting.
func republish(bucket string) *jetstream.RePublish {
	return &jetstream.RePublish{Source: "$KV." + bucket + ".>", Destination: RepublishPrefix + bucket + ".>"}
}

// SubscribeSite subscribes ch to the republished messages of site's keys
// (two subscriptions: keys of two tokens, and longer ones) and returns
// them, for Unsubscribe. Core NATS subscriptions: the server holds no state
// for them but interest.
func (s *Store) SubscribeSite(site string, ch chan *nats.Msg) ([]*nats.Subscription, error) {
	prefix := RepublishPrefix + s.kv.Bucket() + ".*." + site
	nc := s.js.Conn()
	a, err := nc.ChanSubscribe(prefix, ch)
	if err != nil {
		return nil, fmt.Errorf("failed to subscribe to site %s: %w", site, err)
	}
	b, err := nc.ChanSubscribe(prefix+".>", ch)
	if err != nil {
		_ = a.Unsubscribe()
		return nil, fmt.Errorf("failed to subscribe to site %s: %w", site, err)
	}
	return []*nats.Subscription{a, b}, nil
}

// LeaderElectedSubject is the subject of the advisory JetStream sends when
// the bucket's stream elects a leader: a message stored by the old leader
// may not have been republished.
func (s *Store) LeaderElectedSubject() string {
	return "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.KV_" + s.kv.Bucket()
}

// Republished decodes a message the bucket republished; ok is false for
// one that is not.
func (s *Store) Republished(m *nats.Msg) (e *Entry, ok bool) {
	subj := m.Header.Get(jetstream.SubjectHeader)
	key, ok := strings.CutPrefix(subj, s.subject)
	if !ok {
		return nil, false
	}
	rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, false
	}
	e = &Entry{Key: key, Rev: rev, Value: m.Data}
	e.Created, _ = time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	op := m.Header.Get("KV-Operation")
	e.Deleted = op == "DEL" || op == "PURGE" || m.Header.Get("Nats-Marker-Reason") != ""
	return e, true
}

// LoadSite reads the last entry of every key of site, removals included,
// in no order: what a follower of the site starts from.
func (s *Store) LoadSite(ctx context.Context, site string) ([]*Entry, error) {
	var out []*Entry
	err := s.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		w, err := s.kv.WatchFiltered(ctx, []string{"*." + site, "*." + site + ".>"})
		s.count("load", err)
		if err != nil {
			return err
		}
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case e, ok := <-w.Updates():
				if !ok {
					return fmt.Errorf("watch of site %s ended", site)
				}
				if e == nil {
					return nil
				}
				out = append(out, &Entry{Key: e.Key(), Rev: e.Revision(), Value: e.Value(),
					Deleted: e.Operation() != jetstream.KeyValuePut, Created: e.Created()})
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("failed to load site %s: %w", site, err)
	}
	return out, nil
}

// WatchEveryMessage is WatchAll for a reader that must see every message
// the bucket stores, not only each key's last: its live entries come from
// the bucket's republished messages, which NATS sends as it stores each
// one, so a reader that runs behind still reads every revision, in order,
// kept for it in the subscription's pending queue (up to pendingBytes, or
// DefaultWatchPendingBytes for 0), rather than skipping those the bucket replaced
// meanwhile. It subscribes first, then reads the snapshot (every key's
// last entry, then a nil entry), then hands over the republished messages,
// starting with those stored while the snapshot was read (which may repeat
// what it holds). A message the queue could not take, or the stream's
// leader did not republish (a new leader), shows as a gap in the
// revisions: the reader must read a snapshot again.
func (s *Store) WatchEveryMessage(ctx context.Context, pendingBytes int) (*Watcher, error) {
	if pendingBytes <= 0 {
		pendingBytes = DefaultWatchPendingBytes
	}
	nc := s.js.Conn()
	wt := &Watcher{ch: make(chan *Entry, 64), done: make(chan struct{}), exited: make(chan struct{})}
	live := make(chan struct{}) // closed once the snapshot is handed over
	sub, err := nc.Subscribe(RepublishPrefix+s.kv.Bucket()+".>", func(m *nats.Msg) {
		e, ok := s.Republished(m)
		if !ok {
			return
		}
		select {
		case <-live:
		case <-wt.done:
			return
		}
		select {
		case wt.ch <- e:
		case <-wt.done:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("failed to subscribe to the bucket's messages: %w", err)
	}
	// A failure below ends the watch before it started: its callback, which
	// may be waiting for the snapshot already, returns.
	fail := func(err error) (*Watcher, error) {
		close(wt.done)
		_ = sub.Unsubscribe()
		return nil, err
	}
	if err := sub.SetPendingLimits(-1, pendingBytes); err != nil {
		return fail(fmt.Errorf("failed to subscribe to the bucket's messages: %w", err))
	}
	// The server has the interest before the snapshot is read: nothing
	// stored after the snapshot is missed.
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	err = nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("failed to subscribe to the bucket's messages: %w", err))
	}
	snap, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fail(fmt.Errorf("failed to watch bucket: %w", err))
	}
	wt.w, wt.sub = snap, sub
	go func() {
		defer close(wt.exited)
		defer close(live)
		wt.pump(ctx, true)
	}()
	return wt, nil
}

// flushTimeout bounds the wait for the server to confirm a subscription.
const flushTimeout = 10 * time.Second

// DefaultWatchPendingBytes is WatchEveryMessage's default bound of what its
// reader may run behind by before messages are dropped (and it reads a
// snapshot again).
const DefaultWatchPendingBytes = 256 << 20
