//go:build unix

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
)

// Chaos (a): a hub holding 1,000 agent devices is killed with SIGKILL. Every
// agent with no device elsewhere goes offline within grace + refresh (a
// failure deadline here, with a margin for CI), and the agents that also
// have a device on the surviving hub never drop.
func TestKilledHubWithThousandDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("connects 1,100 devices to real processes")
	}
	const (
		grace           = 2 * time.Second
		offlineDeadline = 30 * time.Second
		onA             = 1000
		alsoOnB         = 100 // of the agents on A, these have a device on B too
	)
	ns := natstest.Start(t)
	hubArgs := func() []string {
		return []string{"--addr", "127.0.0.1:0", "--nats-url", ns.ClientURL(), "--grace", grace.String(),
			"--data-dir", t.TempDir(), "--jwt-secret", procSecret, "--log-level", "info"}
	}
	a := startHub(t, "A", hubArgs()...)
	// The roster watcher on B gets 900 agent frames at once when A dies;
	// with the default queue of 64 a busy machine may close it as too slow
	// (by design), which is not what this test is about.
	b := startHub(t, "B", append(hubArgs(), "--send-queue", "4096")...)

	var onlyOnA, both, leasesOnA []string
	for i := range onA {
		id := fmt.Sprintf("agent%04d", i)
		tok := mintProcToken(t, procSecret, "acme", id)
		c := connectAgent(t, a, id+"@A", tok)
		leasesOnA = append(leasesOnA, "d.acme."+id+"."+c.device)
		if i < alsoOnB {
			connectAgent(t, b, id+"@B", tok)
			both = append(both, id)
		} else {
			onlyOnA = append(onlyOnA, id)
		}
	}
	sup := connectAgent(t, b, "sup@B", mintProcToken(t, procSecret, "acme", "sup"))
	roster := subscribeRoster(t, sup)
	roster.waitStatus("online", append(append([]string{"sup"}, onlyOnA...), both...)...)
	waitLeaseRefreshes(t, natstest.Connect(t, ns), leasesOnA)

	killedAt := a.kill()
	pending := make(map[string]bool, len(onlyOnA))
	for _, id := range onlyOnA {
		pending[id] = true
	}
	deadline := killedAt.Add(offlineDeadline)
	var last time.Duration
	for len(pending) > 0 {
		f, ok := roster.nextAgent(deadline)
		if !ok {
			t.Fatalf("got %d of %d agents offline within %v of the kill, want all", len(onlyOnA)-len(pending), len(onlyOnA), offlineDeadline)
		}
		if id := f.Str("id"); pending[id] && f.Str("status") == "offline" {
			delete(pending, id)
			last = time.Since(killedAt)
			continue
		}
		t.Fatalf("got %s after the kill, want only offline frames for agents with no other device", f)
	}
	t.Logf("all %d agents offline %v after the kill (grace %v, refresh %v)", len(onlyOnA), last.Round(time.Millisecond), grace, grace/4)

	// Every lease hub A held has run out by now; the agents with a device on
	// B are still online: the next roster frame is the change sup makes.
	sup.Send(map[string]string{"type": "set_status", "status": "busy"})
	for {
		f, ok := sup.NextBefore(time.Now().Add(procWait))
		if !ok {
			t.Fatal("got no roster frame for sup's change, want one")
		}
		if f.Str("type") == "status" { // sup's own device hears its change too
			continue
		}
		if f.Str("type") != "agent" || f.Str("id") != "sup" || f.Str("status") != "busy" {
			t.Fatalf("got %s, want sup busy and no agent with a device on B dropped", f)
		}
		break
	}
	for _, id := range both {
		if got := roster.status[id]; got != "online" {
			t.Fatalf("got %s %s, want online: it still has a device on B", id, got)
		}
	}
}

// TestStartupTimeoutGivesUpWithoutQuorum: a replicated bucket cannot be
// created on a NATS cluster that lost two of its three nodes; serve keeps
// trying for --startup-timeout, then stops with an error naming the bucket,
// well before its default would let it.
func TestStartupTimeoutGivesUpWithoutQuorum(t *testing.T) {
	c := natstest.StartCluster(t)
	c.Nodes[1].Kill()
	c.Nodes[2].Kill()
	res := runPresencehub(t, nil, "serve", "--addr", "127.0.0.1:0", "--nats-url", c.Nodes[0].URL(), "--kv-replicas", "3",
		"--grace", "30s", "--data-dir", t.TempDir(), "--jwt-secret", procSecret, "--startup-timeout", "2s")
	if res.code != 1 {
		t.Fatalf("got exit code %d, want 1; stderr:\n%s", res.code, res.stderr)
	}
	if want := `failed to open bucket "presence"`; !strings.Contains(res.stderr, want) {
		t.Errorf("got stderr %q, want it to contain %q", res.stderr, want)
	}
}
