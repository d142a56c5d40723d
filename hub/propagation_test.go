package hub_test

import (
	"context"
	"testing"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
)

// propagationCount is how many observations presencehub_propagation_seconds
// holds on h.
func propagationCount(t *testing.T, h *testHub) uint64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "presencehub_propagation_seconds" {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("presencehub_propagation_seconds is not registered")
	return 0
}

// TestPropagationNotObservedAfterRestart: a replica that starts reads the
// stored statuses from a snapshot of the bucket; they were set before it
// watched, so they are not propagation, and presencehub_propagation_seconds
// has no observation after a restart with no change since (the alert
// docs/operations.md suggests would fire after every restart otherwise). A
// change it sees live is observed, once.
func TestPropagationNotObservedAfterRestart(t *testing.T) {
	ns := natstest.Start(t)
	first := startHub(t, ns, waitTimeout*4)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, agent := range []string{"alice", "bob", "carol", "dave"} {
		q := newQueue(16)
		s := connect(t, first, "acme", agent, nil, q)
		if err := s.SetStatus(ctx, presence.Busy, "r-"+agent); err != nil {
			t.Fatal(err)
		}
		untilStatus(t, q, "busy")
	}
	if n := propagationCount(t, first); n != 4 {
		t.Fatalf("the first replica observed %d propagations for 4 live changes, want 4", n)
	}

	// Killed and started again: the leases outlive it (grace of a minute),
	// so the four agents are still busy in the snapshot it loads.
	first.crash()
	again := startHub(t, ns, waitTimeout*4)
	q := newQueue(16)
	subscribeWidget(t, again, "acme", "", q)
	q.expect(t, "widget_status", "status", "busy")
	if n := propagationCount(t, again); n != 0 {
		t.Fatalf("after a restart with no change, got %d propagation observations, want 0", n)
	}

	// A change it watches live counts, once.
	aq := newQueue(16)
	s := connect(t, again, "acme", "alice", nil, aq)
	if err := s.SetStatus(ctx, presence.Online, "r2"); err != nil {
		t.Fatal(err)
	}
	untilStatus(t, aq, "online")
	if n := propagationCount(t, again); n != 1 {
		t.Fatalf("after one live change, got %d propagation observations, want 1", n)
	}
}

// untilStatus reads q's frames (the welcome, devices) until a status frame
// with status.
func untilStatus(t *testing.T, q *queue, status string) {
	t.Helper()
	for {
		if m := q.next(t); m["type"] == "status" && m["status"] == status {
			return
		}
	}
}
