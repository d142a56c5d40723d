package hub

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// These tests drive the hours timers with synctest's fake clock. NATS lives
// outside the bubble (its goroutines would block time), so the bucket entries
// are written to a real nats-server first and then applied to the view from
// inside the bubble, where the timers are armed.

type bubbleQueue struct{ frames chan []byte }

func (q *bubbleQueue) Send(f *Frame) bool {
	select {
	case q.frames <- f.Payload():
		return true
	default:
		return false
	}
}

func (q *bubbleQueue) Kick(error) {}

// take returns the frame waiting now, failing if there is none.
func (q *bubbleQueue) take(t *testing.T) protocol.WidgetStatus {
	t.Helper()
	select {
	case f := <-q.frames:
		var ws struct {
			protocol.WidgetStatus
			NextChange *time.Time `json:"next_change"`
		}
		if err := json.Unmarshal(f, &ws); err != nil {
			t.Fatal(err)
		}
		if ws.NextChange != nil {
			nc := protocol.Time(*ws.NextChange)
			ws.WidgetStatus.NextChange = &nc
		}
		return ws.WidgetStatus
	default:
		t.Fatalf("no frame at %v, want one", time.Now().UTC())
	}
	panic("unreachable")
}

func (q *bubbleQueue) none(t *testing.T) {
	t.Helper()
	select {
	case f := <-q.frames:
		t.Fatalf("got frame %s at %v, want none yet", f, time.Now().UTC())
	default:
	}
}

// bucketEntries writes values to a real bucket and returns them as the
// watcher would deliver them.
type bucketEntries struct {
	t      testing.TB
	js     jetstream.JetStream
	bucket *store.Bucket
	kv     jetstream.KeyValue // the same bucket, written directly by the test
}

// newHub returns a hub on the bucket whose view is fed by hand, not by Run.
func (b *bucketEntries) newHub() *Hub {
	b.t.Helper()
	h, err := New(Config{JetStream: b.js, Bucket: b.bucket})
	if err != nil {
		b.t.Fatal(err)
	}
	h.ready.Store(true)
	return h
}

func newBucketEntries(t testing.TB) *bucketEntries {
	t.Helper()
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := store.OpenBucket(context.Background(), js, store.BucketConfig{})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), bucket.Name())
	if err != nil {
		t.Fatal(err)
	}
	return &bucketEntries{t: t, js: js, bucket: bucket, kv: kv}
}

// entry stores v at key and returns the entry as the watch hands it over.
func (b *bucketEntries) entry(key string, v any) *store.Entry {
	b.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := b.kv.Put(ctx, key, data); err != nil {
		b.t.Fatal(err)
	}
	e, err := b.kv.Get(ctx, key)
	if err != nil {
		b.t.Fatal(err)
	}
	return &store.Entry{Key: e.Key(), Rev: e.Revision(), Value: e.Value(), Deleted: e.Operation() != jetstream.KeyValuePut, Created: e.Created()}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestHoursTransitionsAtExactBoundaries(t *testing.T) {
	b := newBucketEntries(t)
	daily := map[string][]presence.Interval{}
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		daily[d] = []presence.Interval{{From: "09:00", To: "17:00"}}
	}
	schedule := b.entry(store.HoursKey("acme", "").String(), presence.Schedule{Timezone: "Europe/Prague", Weekly: daily})
	agent := b.entry(store.AgentKey("acme", "alice").String(), store.AgentRecord{Status: presence.Online})
	lease := b.entry(store.LeaseKey("acme", "alice", "d1").String(), store.DeviceRecord{Kind: presence.Desktop, Session: "s1", State: presence.Live})
	prague := mustLoad(t, "Europe/Prague")

	tests := []struct {
		name string
		// start is when the schedule is applied: a Saturday evening, closed.
		start time.Time
		// opens and closes are Sunday's boundaries as instants.
		opens, closes time.Time
	}{
		{"ordinary winter day", time.Date(2026, 1, 10, 18, 0, 0, 0, prague),
			time.Date(2026, 1, 11, 8, 0, 0, 0, time.UTC), time.Date(2026, 1, 11, 16, 0, 0, 0, time.UTC)},
		{"spring forward overnight", time.Date(2026, 3, 28, 18, 0, 0, 0, prague),
			time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 15, 0, 0, 0, time.UTC)},
		{"fall back overnight", time.Date(2026, 10, 24, 18, 0, 0, 0, prague),
			time.Date(2026, 10, 25, 8, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 16, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := b.newHub()
				time.Sleep(time.Until(tt.start))
				testWatcher(h).apply(context.Background(), schedule)
				testWatcher(h).apply(context.Background(), agent)
				testWatcher(h).apply(context.Background(), lease)
				q := &bubbleQueue{frames: make(chan []byte, 8)}
				unsub, err := h.SubscribeWidget("acme", "", q)
				if err != nil {
					t.Fatal(err)
				}
				defer unsub()
				defer h.rules.stopTimers()

				synctest.Wait() // the site's delivery goroutine sends the first frame
				assertWidget(t, q.take(t), presence.Offline, presence.ReasonOutsideHours, tt.opens)
				sleepUntil(tt.opens.Add(-time.Nanosecond))
				q.none(t)
				sleepUntil(tt.opens)
				assertWidget(t, q.take(t), presence.Online, presence.ReasonAgentsOnline, tt.closes)
				sleepUntil(tt.closes.Add(-time.Nanosecond))
				q.none(t)
				sleepUntil(tt.closes)
				assertWidget(t, q.take(t), presence.Offline, presence.ReasonOutsideHours, tt.opens.AddDate(0, 0, 1))
			})
		})
	}
}

// sleepUntil advances the bubble's clock to at and lets the timers that fire
// by then run.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
	synctest.Wait()
}

func assertWidget(t *testing.T, got protocol.WidgetStatus, status presence.Status, reason presence.Reason, next time.Time) {
	t.Helper()
	if got.Status != status || got.Reason != reason {
		t.Fatalf("got %s/%s at %v, want %s/%s", got.Status, got.Reason, time.Now().UTC(), status, reason)
	}
	if got.NextChange == nil || !time.Time(*got.NextChange).Equal(next) {
		t.Fatalf("got next_change %v at %v, want %v", got.NextChange, time.Now().UTC(), next.UTC())
	}
}
