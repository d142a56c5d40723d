package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Entry is one update of the bucket: a put of Value, or the key's removal
// (Deleted), Value then being the purge marker's body (ByeMarker, ...; none
// for a key its TTL removed).
type Entry struct {
	Key     string
	Rev     uint64
	Value   []byte
	Deleted bool
	// Created is when NATS stored it.
	Created time.Time
}

// Watcher is a watch of the whole bucket: every key's last entry, then a
// nil entry (the snapshot is complete), then every entry as it is stored.
// It runs one goroutine that hands entries over until Stop is called or
// the watch ends.
type Watcher struct {
	w jetstream.KeyWatcher
	// sub is the subscription to the republished messages of
	// WatchEveryMessage, which ends the watch of w after its snapshot.
	sub    *nats.Subscription
	ch     chan *Entry
	done   chan struct{} // closed by Stop
	exited chan struct{} // closed when run returns
	stop   sync.Once
	stopW  sync.Once
}

// WatchAll starts a watch of the whole bucket. Its entries come until ctx
// ends or Stop is called.
func (s *Store) WatchAll(ctx context.Context) (*Watcher, error) { return watchAll(ctx, s.kv) }

func watchAll(ctx context.Context, kv jetstream.KeyValue) (*Watcher, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to watch bucket: %w", err)
	}
	wt := &Watcher{w: w, ch: make(chan *Entry, 64), done: make(chan struct{}), exited: make(chan struct{})}
	go wt.run(ctx)
	return wt, nil
}

func (wt *Watcher) run(ctx context.Context) {
	defer close(wt.exited)
	defer close(wt.ch)
	wt.pump(ctx, false)
}

// pump hands over the entries of the key watch until ctx ends, Stop is
// called or the watch ends; with snapshotOnly, until the nil entry that
// ends its snapshot, which it hands over too, and then it stops the key
// watch.
func (wt *Watcher) pump(ctx context.Context, snapshotOnly bool) {
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return
		case <-wt.done:
			return
		case kve, ok := <-wt.w.Updates():
			if !ok {
				return
			}
			e = kve
		}
		var out *Entry
		if e != nil {
			out = &Entry{Key: e.Key(), Rev: e.Revision(), Value: e.Value(),
				Deleted: e.Operation() != jetstream.KeyValuePut, Created: e.Created()}
		}
		select {
		case <-ctx.Done():
			return
		case <-wt.done:
			return
		case wt.ch <- out:
		}
		if out == nil && snapshotOnly {
			// Its live entries are not read: it must not hold up its
			// consumer. Stopping may wait out a JetStream timeout.
			go wt.stopKeyWatch()
			return
		}
	}
}

// stopKeyWatch stops the key watch and deletes its consumer, once.
func (wt *Watcher) stopKeyWatch() {
	wt.stopW.Do(func() { _ = wt.w.Stop() })
}

// Updates returns the watch's entries; it is closed when the watch ends.
func (wt *Watcher) Updates() <-chan *Entry { return wt.ch }

// Stop ends the watch and deletes its consumer, which waits out a
// JetStream timeout when the server that held it has gone away: callers
// that must not wait call it on a goroutine of their own.
func (wt *Watcher) Stop() {
	wt.stop.Do(func() {
		close(wt.done)
		if wt.sub != nil {
			_ = wt.sub.Unsubscribe()
		}
		<-wt.exited
		wt.stopKeyWatch()
	})
}
