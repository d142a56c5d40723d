package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// TestRevokedLeaseIsNotWrittenAgain revokes a device through another
// replica: the replica holding its session kicks it, and neither that nor
// the session's own close takes the lease again (which would keep the
// device online through another grace).
func TestRevokedLeaseIsNotWrittenAgain(t *testing.T) {
	ns := natstest.Start(t)
	const grace = 2 * time.Second
	a := startHub(t, ns, grace)
	dev := newQueue(16)
	s := connect(t, a, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	b := startHub(t, ns, grace) // loads the lease from the bucket
	found, err := b.RevokeDevice(ctx, "acme", "alice", s.Device())
	if err != nil || !found {
		t.Fatalf("got %v, %v from RevokeDevice, want the device found and revoked", found, err)
	}
	select {
	case reason := <-dev.kicked:
		if !errors.Is(reason, hub.ErrRevoked) {
			t.Fatalf("got kicked with %v, want ErrRevoked", reason)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the revoked session was not kicked")
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := "d.acme.alice." + s.Device()
	if e, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("got %v, %v for the revoked lease, want it gone", e, err)
	}
	// The session's own close after the kick (the socket closing) leaves
	// no lease in grace behind either.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("got %v, %v for the revoked lease after the session closed, want it gone", e, err)
	}
	// The device may sign in again, as a new session.
	again := newQueue(16)
	s2, err := a.Connect(ctx, hub.Identity{Site: "acme", Agent: "alice"}, hub.DeviceHello{ID: s.Device(), Kind: presence.Desktop}, again)
	if err != nil {
		t.Fatalf("the revoked device could not sign in again: %v", err)
	}
	again.expect(t, "welcome", "device", s.Device())
	if err := s2.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRecordWithoutByReadsAsDeviceChange: agent records stored before
// records said who set them (by_device only) read as a device's change.
func TestRecordWithoutByReadsAsDeviceChange(t *testing.T) {
	ns := natstest.Start(t)
	h := startHub(t, ns, time.Hour)
	dev := newQueue(16)
	connect(t, h, "acme", "alice", nil, dev)
	dev.expect(t, "welcome")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, store.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	const other = "0b6f4bb2-5a43-4d55-9d7e-4b7f0f1c2d3e"
	if _, err := kv.Put(ctx, "a.acme.alice", []byte(`{"status":"busy","by_device":"`+other+`","at":"2026-12-01T09:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	f := dev.expect(t, "status", "status", "busy", "by", "device", "by_device", other)
	if _, ok := f["by_agent"]; ok {
		t.Fatalf("got %v, want no by_agent", f)
	}
	st, ok, err := h.Agent("acme", "alice")
	if err != nil || !ok {
		t.Fatalf("got %v, %v reading alice", ok, err)
	}
	if st.ChangedBy == nil || *st.ChangedBy != (hub.ChangedBy{Kind: "device", ID: other}) {
		t.Fatalf("got changed_by %+v, want the device %s", st.ChangedBy, other)
	}
}
