package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/natstest"
)

// openMembers opens a members bucket on a server of its own, for the
// test's length (ctx, which it returns).
func openMembers(t *testing.T) (context.Context, *Members) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenMembers(ctx, js, MembersConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, m
}

// openWatched is openMembers with a watch of the bucket.
func openWatched(t *testing.T) (context.Context, *Members, *Watcher) {
	t.Helper()
	ctx, m := openMembers(t)
	w, err := m.WatchMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return ctx, m, w
}

// nextEntry returns the watch's next entry for key, skipping others.
func nextEntry(t *testing.T, ctx context.Context, w *Watcher, key string) *Entry {
	t.Helper()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no entry for %s: %v", key, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch ended waiting for %s", key)
			}
			if e != nil && e.Key == key {
				return e
			}
		}
	}
}

// TestHeartbeatCreatesRefreshesAndStartsOverAfterExpiry: a liveness key is
// created only where none holds a value, refreshed only with its last
// revision, and created again over the marker its expiry left.
func TestHeartbeatCreatesRefreshesAndStartsOverAfterExpiry(t *testing.T) {
	ctx, m, w := openWatched(t)

	rev, err := m.Heartbeat(ctx, "r1", []byte("one"), time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Heartbeat(ctx, "r1", []byte("two"), time.Second, 0); !errors.Is(err, ErrReplaced) {
		t.Errorf("create over a live key: got %v, want ErrReplaced", err)
	}
	if _, err := m.Heartbeat(ctx, "r1", []byte("two"), time.Second, rev+100); !errors.Is(err, ErrReplaced) {
		t.Errorf("refresh with a wrong revision: got %v, want ErrReplaced", err)
	}
	// A write that finds its own value in place, at a revision it did not
	// expect, is an earlier attempt of its own whose answer was lost.
	if got, err := m.Heartbeat(ctx, "r1", []byte("one"), time.Second, rev+100); err != nil || got != rev {
		t.Errorf("write finding its own value: got %d, %v; want %d", got, err, rev)
	}
	if got, err := m.Heartbeat(ctx, "r1", []byte("one"), time.Second, 0); err != nil || got != rev {
		t.Errorf("create finding its own value: got %d, %v; want %d", got, err, rev)
	}
	if rev, err = m.Heartbeat(ctx, "r1", []byte("one"), time.Second, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Heartbeat(ctx, "r1", []byte("one"), 500*time.Millisecond, rev); err == nil {
		t.Error("a TTL under 1s was written")
	}

	// No refresh: the key expires and leaves a marker, which a refresh
	// cannot write over and a create can.
	for e := nextEntry(t, ctx, w, LivenessPrefix+"r1"); !e.Deleted; e = nextEntry(t, ctx, w, LivenessPrefix+"r1") {
	}
	last, err := m.s.lastMessage(ctx, LivenessPrefix+"r1")
	if err != nil || !last.Removal() {
		t.Fatalf("last message after expiry: %+v, %v; want a marker", last, err)
	}
	if _, err := m.Heartbeat(ctx, "r1", []byte("one"), time.Second, rev); !errors.Is(err, ErrReplaced) {
		t.Errorf("refresh of an expired key: got %v, want ErrReplaced", err)
	}
	again, err := m.Heartbeat(ctx, "r1", []byte("one"), 10*time.Second, 0)
	if err != nil {
		t.Fatalf("create over the expiry marker: %v", err)
	}
	if again <= last.Seq {
		t.Errorf("created at revision %d, not after the marker's %d", again, last.Seq)
	}
}

// TestReleaseKeyIsACompareAndSet: a release with another revision leaves
// the key; with its own it removes it at once, for watchers to see, and
// the key can be claimed again.
func TestReleaseKeyIsACompareAndSet(t *testing.T) {
	ctx, m, w := openWatched(t)
	key := PartitionKey(3)
	rev, err := m.ClaimKey(ctx, key, []byte("a"), time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ClaimKey(ctx, key, []byte("b"), time.Minute, 0); !errors.Is(err, ErrReplaced) {
		t.Errorf("second claim: got %v, want ErrReplaced", err)
	}
	if err := m.ReleaseKey(ctx, key, rev+100); !errors.Is(err, ErrReplaced) {
		t.Errorf("release with a wrong revision: got %v, want ErrReplaced", err)
	}
	if err := m.ReleaseKey(ctx, key, rev); err != nil {
		t.Fatal(err)
	}
	for e := nextEntry(t, ctx, w, key); !e.Deleted; e = nextEntry(t, ctx, w, key) {
	}
	if _, err := m.ClaimKey(ctx, key, []byte("b"), time.Minute, 0); err != nil {
		t.Errorf("claim after release: %v", err)
	}
	if _, err := m.ClaimKey(ctx, "p..1", []byte("b"), time.Minute, 0); err == nil {
		t.Error("a claim of an invalid key was written")
	}
}

// TestLayoutFirstCountWins: the first replica stores its count; a later
// one with another count gets the stored one.
func TestLayoutFirstCountWins(t *testing.T) {
	ctx, m := openMembers(t)
	for _, bad := range []int{0, -1, MaxPartitions + 1} {
		if _, err := m.Layout(ctx, bad); err == nil {
			t.Errorf("Layout(%d) succeeded", bad)
		}
	}
	for _, tc := range []struct{ ask, want int }{{16, 16}, {32, 16}, {16, 16}} {
		got, err := m.Layout(ctx, tc.ask)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Layout(%d) = %d, want %d", tc.ask, got, tc.want)
		}
	}
}
