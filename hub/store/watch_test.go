package store

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestWatchEveryMessageKeepsWhatItsReaderMissed: a reader of
// WatchEveryMessage that reads nothing while one key is written
// heldBackWrites times (several MiB: more than a key watch's consumer
// sends ahead of a reader that does not read, after which the bucket,
// keeping one revision per key, has replaced what it did not send) still
// reads every revision, in order, once it reads again.
func TestWatchEveryMessageKeepsWhatItsReaderMissed(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := OpenBucket(ctx, js, BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(b, Config{Grace: time.Minute})
	first, err := s.Put(ctx, AgentKey("acme", "alice"), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.WatchEveryMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if e := <-w.Updates(); e == nil || e.Rev != first {
		t.Fatalf("got %+v, want the snapshot's entry at revision %d", e, first)
	}
	if e := <-w.Updates(); e != nil {
		t.Fatalf("got %+v, want the end of the snapshot", e)
	}

	// Written while the reader reads nothing, asynchronously: a value of
	// 256 bytes, the revision's number first.
	writer, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	pad := make([]byte, 250)
	for i := range pad {
		pad[i] = '.'
	}
	for i := 1; i <= heldBackWrites; i++ {
		v := append([]byte(strconv.Itoa(i)+" "), pad...)
		if _, err := writer.PublishAsync("$KV."+b.Name()+".a.acme.alice", v); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-writer.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("writes not acknowledged in time")
	}

	for i := 1; i <= heldBackWrites; i++ {
		var e *Entry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			t.Fatalf("read %d of %d revisions in time", i-1, heldBackWrites)
		}
		want := first + uint64(i)
		if e == nil {
			t.Fatalf("got the end of a snapshot, want revision %d", want)
		}
		if n, _, _ := strings.Cut(string(e.Value), " "); e.Rev != want || n != strconv.Itoa(i) {
			t.Fatalf("got revision %d, the write numbered %s, want revision %d, the write numbered %d", e.Rev, n, want, i)
		}
	}
}

// heldBackWrites is how many writes TestWatchEveryMessageKeepsWhatItsReaderMissed
// makes while the reader reads nothing: 40,000 of 256 bytes, 10 MiB.
const heldBackWrites = 40_000
