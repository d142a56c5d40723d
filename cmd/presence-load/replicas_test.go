package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/proctest"
)

// TestReplicasTiny runs `presence-load replicas` at a tiny size against
// real presencehub processes and checks the figures' shape: the replica
// with no clients holds no site, the one with the devices holds them all,
// and with clients routed by site each replica without the duties holds
// exactly its own sites.
func TestReplicasTiny(t *testing.T) {
	bin := proctest.Binary(t)
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "replicas.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"replicas", "--presencehub", bin, "--steps", "0,50", "--routed-devices", "50", "--routed-replicas", "2",
		"--window", "2s", "--settle", "0s", "--timeout", waitTimeout.String(), "--dir", dir, "--json", jsonPath}
	err := run(ctx, args, &stdout, &stderr)
	t.Logf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b)
		}
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(stdout.String(), "Issue 21's targets:") {
		t.Error("the text report names no targets")
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var s replicasSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("the JSON report does not decode: %v", err)
	}

	a := s.NoClients
	if a == nil || len(a.Steps) != 2 {
		t.Fatalf("phase A: want 2 steps, got %+v", a)
	}
	for i, want := range []int{0, 50} {
		st := a.Steps[i]
		if st.Devices != want || st.Sites != want/2 {
			t.Errorf("step %d: %d devices on %d sites, want %d on %d", i, st.Devices, st.Sites, want, want/2)
		}
		if idle := st.Idle; idle.Sites != 0 || idle.Followed != 0 || idle.Duties || idle.Sockets != 0 {
			t.Errorf("step %d: the replica with no clients holds %d sites, follows %d, duties %v, %d sockets; want none", i, idle.Sites, idle.Followed, idle.Duties, idle.Sockets)
		}
		if c := st.Clients; c.Sites != want/2 || !c.Duties || c.Sockets != want {
			t.Errorf("step %d: the replica with the devices holds %d sites, duties %v, %d sockets; want %d, true, %d", i, c.Sites, c.Duties, c.Sockets, want/2, want)
		}
		if st.Idle.RSSBytes <= 0 || st.Idle.HeapInuseBytes <= 0 {
			t.Errorf("step %d: no memory figures for the replica with no clients: %+v", i, st.Idle)
		}
	}

	if len(s.Routed) != 1 || s.Routed[0].Replicas != 2 || len(s.Routed[0].PerReplica) != 2 {
		t.Fatalf("phase B: want one deployment of 2 replicas, got %+v", s.Routed)
	}
	r := s.Routed[0]
	// The duty owner, like the others, holds only its routed sites: its
	// duties hold a site only while a duty needs it (no device dropped here).
	owners, sockets := 0, 0
	for _, p := range r.PerReplica {
		sockets += p.Sockets
		if p.Duties {
			owners++
		}
		if p.Sites != p.RoutedSites || p.WithoutClient != 0 {
			t.Errorf("%s holds %d sites, %d without a client; want its %d routed sites only", p.Name, p.Sites, p.WithoutClient, p.RoutedSites)
		}
	}
	if owners != 1 || sockets != 50 {
		t.Errorf("phase B: %d duty owners and %d sockets, want 1 and 50", owners, sockets)
	}
	if len(s.Targets) < 3 {
		t.Errorf("want the targets checked, got %+v", s.Targets)
	}
}
