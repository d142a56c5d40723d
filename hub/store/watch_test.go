package store

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
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
	ns, b, s := openWatchStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := s.Put(ctx, AgentKey("acme", "alice"), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.WatchEveryMessage(ctx, 0)
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

	writeNumbered(ctx, t, ns, b.Name(), heldBackWrites)

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

// writeNumbered writes n values of 256 bytes to key a.acme.alice of
// bucket, asynchronously, each starting with its number (1..n), and waits
// for their acknowledgements.
func writeNumbered(ctx context.Context, t *testing.T, ns *natsserver.Server, bucket string, n int) {
	t.Helper()
	// Every write may be out at once (the default allows 4,000, and a
	// slow server under -race stalls them).
	writer, err := jetstream.New(natstest.Connect(t, ns), jetstream.WithPublishAsyncMaxPending(n+1))
	if err != nil {
		t.Fatal(err)
	}
	pad := make([]byte, 250)
	for i := range pad {
		pad[i] = '.'
	}
	for i := 1; i <= n; i++ {
		v := append([]byte(strconv.Itoa(i)+" "), pad...)
		if _, err := writer.PublishAsync("$KV."+bucket+".a.acme.alice", v); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-writer.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("writes not acknowledged in time")
	}
}

// TestWatchEveryMessageBound: a reader that runs behind by more than the
// watch's pending bytes loses the messages beyond them, and sees that as a
// gap in the revisions it reads (the hub's watch then re-reads the bucket).
func TestWatchEveryMessageBound(t *testing.T) {
	ns, b, s := openWatchStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const pending, writes = 64 << 10, 2_000 // 512 KiB written, 8 times the bound
	w, err := s.WatchEveryMessage(ctx, pending)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if e := <-w.Updates(); e != nil {
		t.Fatalf("got %+v, want the end of an empty snapshot", e)
	}
	writeNumbered(ctx, t, ns, b.Name(), writes)
	// The reader reads again; a sentinel written then comes after what the
	// queue kept, since the reader makes room for it.
	var last uint64
	gaps := 0
	next := func() {
		select {
		case e := <-w.Updates():
			if last != 0 && e.Rev != last+1 {
				gaps++
			}
			last = e.Rev
		case <-ctx.Done():
			t.Fatalf("read up to revision %d in time", last)
		}
	}
	next()
	sentinel, err := s.Put(ctx, AgentKey("acme", "sam"), []byte("sentinel"))
	if err != nil {
		t.Fatal(err)
	}
	for last < sentinel {
		next()
	}
	if gaps == 0 {
		t.Fatalf("read every one of %d revisions through a bound of %d bytes, want a gap", writes, pending)
	}
}

// heldBackWrites is how many writes TestWatchEveryMessageKeepsWhatItsReaderMissed
// makes while the reader reads nothing: 40,000 of 256 bytes, 10 MiB.
const heldBackWrites = 40_000

// openWatchStore starts a nats-server and returns it, the presence bucket
// on it and a store of the bucket.
func openWatchStore(t *testing.T) (*natsserver.Server, *Bucket, *Store) {
	t.Helper()
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenBucket(t.Context(), js, BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return ns, b, New(b, Config{Grace: time.Minute})
}
