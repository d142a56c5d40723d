package wsconn

import (
	"math/rand/v2"
	"testing"
)

// The deadline queue is a heap: whatever order deadlines are set, moved
// and removed in, its root is the earliest, every Conn knows its place,
// and removed ones are out.
func TestDeadlineQueueOrder(t *testing.T) {
	var q deadlineQueue
	defer q.stop()
	rng := rand.New(rand.NewPCG(1, 2))
	conns := make([]*Conn, 200)
	want := map[*Conn]int64{}
	for i := range conns {
		conns[i] = &Conn{dlIdx: -1}
	}
	// Far in the future: the timer never fires during the test.
	const base = int64(1) << 62
	for step := range 5000 {
		c := conns[rng.IntN(len(conns))]
		at := int64(0)
		if rng.IntN(4) > 0 {
			at = base + rng.Int64N(1000)
		}
		q.set(c, at)
		if at == 0 {
			delete(want, c)
		} else {
			want[c] = at
		}
		q.mu.Lock()
		if len(q.h) != len(want) {
			t.Fatalf("step %d: got %d deadlines, want %d", step, len(q.h), len(want))
		}
		for i, hc := range q.h {
			if hc.dlIdx != i || hc.dlAt != want[hc] {
				t.Fatalf("step %d: got conn at %d with index %d and deadline %d, want %d", step, i, hc.dlIdx, hc.dlAt, want[hc])
			}
			if i > 0 && q.h[(i-1)/2].dlAt > hc.dlAt {
				t.Fatalf("step %d: heap order broken at %d", step, i)
			}
		}
		q.mu.Unlock()
	}
	for c := range want {
		q.set(c, 0)
	}
	for _, c := range conns {
		if c.dlIdx != -1 {
			t.Fatalf("got a removed conn with index %d, want -1", c.dlIdx)
		}
	}
}
