package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

// waitTimeout bounds waits in these tests; it is a deadline for failing,
// never a measurement.
const waitTimeout = 30 * time.Second

const testSecret = "test-secret-for-presence-load"

// startHub runs a hub replica on ns, serves it over HTTP until the test
// ends, and returns its base URL.
func startHub(t *testing.T, ns *natsserver.Server) string {
	t.Helper()
	return startHubWith(t, ns, transport.Config{})
}

// startHubWith is startHub with the server configured by cfg.
func startHubWith(t *testing.T, ns *natsserver.Server, cfg transport.Config) string {
	t.Helper()
	return wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:    []byte(testSecret),
		Bucket:    store.BucketConfig{LimitMarkerTTL: time.Second},
		Hub:       hub.Config{Grace: time.Hour, MarkerTTL: time.Second},
		Transport: cfg,
		Wait:      waitTimeout,
	}).URL
}

// runLoad runs the generator with args plus --json and returns its summary.
func runLoad(t *testing.T, args ...string) *summary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	args = append(args, "--json", "--jwt-secret", testSecret, "--timeout", waitTimeout.String())
	err := run(ctx, args, &stdout, &stderr)
	t.Logf("presence-load %s\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), stderr.String(), stdout.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("failed to decode the JSON summary: %v", err)
	}
	return &s
}

func checkChanges(t *testing.T, s *summary, wantExpected int64) {
	t.Helper()
	cs := s.Changes
	if cs == nil {
		t.Fatal("summary has no change phase")
	}
	if cs.Expected != wantExpected {
		t.Errorf("expected = %d, want %d", cs.Expected, wantExpected)
	}
	if cs.Deliveries != cs.Expected {
		t.Errorf("deliveries = %d, want %d", cs.Deliveries, cs.Expected)
	}
	if cs.Lost != 0 || cs.Duplicates != 0 || cs.Unexpected != 0 || cs.Rejected != 0 || cs.SendError != "" {
		t.Errorf("lost %d, duplicates %d, unexpected %d, rejected %d, send error %q: want none", cs.Lost, cs.Duplicates, cs.Unexpected, cs.Rejected, cs.SendError)
	}
	if len(s.ClosedByHub) > 0 {
		t.Errorf("sockets closed during the test: %v", s.ClosedByHub)
	}
}

func TestFanout(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startHub(t, ns), startHub(t, ns)
	s := runLoad(t, "--url", a+","+b, "--sites", "2", "--groups", "2", "--widgets", "50", "--devices", "2",
		"--changes", "4", "--interval", "50ms", "--src", "127.0.0.1,127.0.0.2", "--pids", fmt.Sprint(os.Getpid()))
	// 2 agents (one per site) x 4 changes; every change reaches both of the
	// agent's devices and the 25 widgets of its site.
	checkChanges(t, s, 2*4*2+50*4)
	if s.Changes.DeviceLatency.Count != 2*4 { // the other device only
		t.Errorf("device latency samples = %d, want 8", s.Changes.DeviceLatency.Count)
	}
	if s.Changes.WidgetLatency.Count != 200 {
		t.Errorf("widget latency samples = %d, want 200", s.Changes.WidgetLatency.Count)
	}
	if len(s.Hubs) != 1 || s.Hubs[0].PID != os.Getpid() || s.Hubs[0].RSSBeforeBytes <= 0 || s.Hubs[0].Sockets != 54 {
		t.Errorf("hubs = %+v, want this process with 54 sockets", s.Hubs)
	}
	// Later runs against the same hubs find the agents' stored statuses
	// from the run before (online after 4 changes, busy after 3) and
	// still get every frame.
	s = runLoad(t, "--url", b, "--sites", "2", "--widgets", "10", "--changes", "3", "--interval", "20ms")
	checkChanges(t, s, 2*3*2+10*3)
	s = runLoad(t, "--url", a, "--sites", "2", "--widgets", "10", "--changes", "2", "--interval", "20ms")
	checkChanges(t, s, 2*2*2+10*2)
}

func TestGroupsScenario(t *testing.T) {
	ns := natstest.Start(t)
	u := startHub(t, ns)
	s := runLoad(t, "--url", u, "--scenario", "groups", "--groups", "3", "--widgets", "30", "--devices", "3", "--changes", "3", "--interval", "30ms")
	// 3 agents (one per group) x 3 changes: 3 devices each, 10 widgets each.
	checkChanges(t, s, 3*3*3+30*3)
	if s.Agents != 3 {
		t.Errorf("agents = %d, want 3", s.Agents)
	}
}

func TestRate(t *testing.T) {
	ns := natstest.Start(t)
	u := startHub(t, ns)
	s := runLoad(t, "--url", u, "--sites", "2", "--widgets", "20", "--rate", "40", "--duration", "300ms")
	// 12 changes round robin over 2 agents: 6 each, 2 devices, 10 widgets.
	checkChanges(t, s, 2*6*2+20*6)
	if s.Changes.Sent != 12 {
		t.Errorf("sent = %d, want 12", s.Changes.Sent)
	}
}

func TestStorm(t *testing.T) {
	ns := natstest.Start(t)
	u := startHub(t, ns)
	s := runLoad(t, "--url", u, "--sites", "2", "--widgets", "40", "--storm")
	st := s.Storm
	if st == nil {
		t.Fatal("summary has no storm")
	}
	if st.Widgets != 40 || st.Snapshots != 40 || st.Failed != 0 || st.Missing != 0 || st.WrongStatus != 0 {
		t.Errorf("storm = %+v, want 40 snapshots with the right status", st)
	}
	if st.Snapshot.Count != 40 {
		t.Errorf("snapshot samples = %d, want 40", st.Snapshot.Count)
	}
	if len(s.ClosedByHub) > 0 {
		t.Errorf("sockets closed during the test: %v", s.ClosedByHub)
	}
	// Without agents the widgets start, and come back, offline.
	s = runLoad(t, "--url", u, "--sites", "1", "--agents", "0", "--widgets", "5", "--storm")
	if st := s.Storm; st == nil || st.Snapshots != 5 || st.WrongStatus != 0 {
		t.Errorf("storm without agents = %+v, want 5 offline snapshots", st)
	}
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--sites", "2", "--agents", "3", "--jwt-secret", "s"},
		{"--scenario", "groups"},
		{"--widgets", "10"}, // agents need a secret
		{"--url", "ftp://x"},
		{"--storm"},
		{"--src", "not-an-ip", "--agents", "0"},
	} {
		t.Setenv("PRESENCE_JWT_SECRET", "")
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
}

// A hub that caps widget sockets per client address refuses the
// generator's sockets with HTTP 429; the error says how to start the hub.
func TestWidgetCapHint(t *testing.T) {
	ns := natstest.Start(t)
	u := startHubWith(t, ns, transport.Config{MaxWidgetsPerClient: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	err := run(ctx, []string{"--url", u, "--agents", "0", "--widgets", "3", "--timeout", waitTimeout.String()}, io.Discard, io.Discard)
	if want := "start the hub with --max-widgets-per-client -1"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got error %v for 3 widgets on a hub capped at 2 per client address, want one containing %q", err, want)
	}
}
