//go:build unix

package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestWritesJetStreamCannotTakeAreUnavailable: while JetStream cannot
// store (here: turned off, as nats-server does on a cluster node whose disk
// is full), a write gives up after WriteRetry with an error wrapping
// ErrUnavailable, and so does a record write, which is not retried; a
// write JetStream refuses for what it is (a lost compare-and-set) does not.
func TestWritesJetStreamCannotTakeAreUnavailable(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := OpenBucket(ctx, js, BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := OpenRecords(ctx, js, RecordsConfig{Name: "records"})
	if err != nil {
		t.Fatal(err)
	}
	s := New(b, Config{Grace: time.Minute, WriteRetry: 300 * time.Millisecond})
	if _, err := s.Put(ctx, SettingsKey("acme"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := recs.Create(ctx, "acme.a", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := recs.Create(ctx, "acme.a", []byte(`{}`)); !errors.Is(err, ErrExists) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Create of an existing record: got %v, want ErrExists alone", err)
	}

	if err := ns.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, SettingsKey("acme"), []byte(`{}`)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put without JetStream: got %v, want ErrUnavailable", err)
	}
	if err := recs.Create(ctx, "acme.b", []byte(`{}`)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("record Create without JetStream: got %v, want ErrUnavailable", err)
	}
}
