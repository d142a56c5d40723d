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
// real presencehub processes and checks the figures' shape: in phase A,
// the replica that neither owns nor stands by for the partition holds no
// site, its owner (with the devices) and its standby hold them all; with
// clients routed by site over 3 replicas and 8 partitions, each replica
// holds exactly its routed sites plus the sites of the partitions it owns
// or stands by for.
func TestReplicasTiny(t *testing.T) {
	bin := proctest.Binary(t)
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "replicas.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"replicas", "--presencehub", bin, "--steps", "0,50", "--routed-devices", "50", "--routed-replicas", "3", "--partitions", "8",
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
	if names := map[string]bool{a.Owner: true, a.Standby: true, a.Idle: true}; len(names) != 3 || a.DevicesOn != roleOwner {
		t.Errorf("phase A: owner %q, standby %q, neither %q, devices on the %q; want three replicas, devices on the owner", a.Owner, a.Standby, a.Idle, a.DevicesOn)
	}
	for i, want := range []int{0, 50} {
		st := a.Steps[i]
		if st.Devices != want || st.Sites != want/2 {
			t.Errorf("step %d: %d devices on %d sites, want %d on %d", i, st.Devices, st.Sites, want, want/2)
		}
		if idle := st.Idle; idle.Sites != 0 || idle.Followed != 0 || idle.Owned != 0 || idle.Standby != 0 || idle.Sockets != 0 {
			t.Errorf("step %d: the replica that is neither owner nor standby holds %d sites, follows %d, owns %d, stands by for %d, %d sockets; want none",
				i, idle.Sites, idle.Followed, idle.Owned, idle.Standby, idle.Sockets)
		}
		if sb := st.Standby; sb.Sites != want/2 || sb.Followed != 0 || sb.Owned != 0 || sb.Standby != 1 || sb.Sockets != 0 {
			t.Errorf("step %d: the standby holds %d sites, follows %d, owns %d, stands by for %d, %d sockets; want %d, 0, 0, 1, 0",
				i, sb.Sites, sb.Followed, sb.Owned, sb.Standby, sb.Sockets, want/2)
		}
		if c := st.Owner; c.Sites != want/2 || c.Owned != 1 || c.Standby != 0 || c.Sockets != want {
			t.Errorf("step %d: the owner, with the devices, holds %d sites, owns %d, stands by for %d, %d sockets; want %d, 1, 0, %d",
				i, c.Sites, c.Owned, c.Standby, c.Sockets, want/2, want)
		}
		for _, r := range []replicaWindow{st.Idle, st.Standby} {
			if r.RSSBytes <= 0 || r.HeapInuseBytes <= 0 {
				t.Errorf("step %d: no memory figures for %s: %+v", i, r.Name, r)
			}
		}
	}
	if _, ok := a.Growth[roleIdle]; !ok || len(a.Growth) != 2 {
		t.Errorf("phase A: want the growth of the idle replica and of the standby, got %+v", a.Growth)
	}

	if len(s.Routed) != 1 || s.Routed[0].Replicas != 3 || s.Routed[0].Partitions != 8 || len(s.Routed[0].PerReplica) != 3 {
		t.Fatalf("phase B: want one deployment of 3 replicas and 8 partitions, got %+v", s.Routed)
	}
	r := s.Routed[0]
	// Each partition has an owner and a standby, each holding every site
	// of it; besides those, a replica holds only its routed sites.
	owned, standby, sockets := 0, 0, 0
	for _, p := range r.PerReplica {
		owned += p.Owned
		standby += p.Standby
		sockets += p.Sockets
		if p.Sites != p.RoutedSites+p.ExpectedWithoutClient || p.WithoutClient != p.ExpectedWithoutClient || p.Followed != p.RoutedSites {
			t.Errorf("%s holds %d sites, %d without a client, follows %d; want its %d routed sites and %d more of its %d partitions' %d sites",
				p.Name, p.Sites, p.WithoutClient, p.Followed, p.RoutedSites, p.ExpectedWithoutClient, p.Owned+p.Standby, p.PartitionSites)
		}
	}
	if owned != 8 || standby != 8 || sockets != 50 {
		t.Errorf("phase B: %d partitions owned, %d stood by for, %d sockets; want 8, 8 and 50", owned, standby, sockets)
	}
	if len(s.Targets) < 3 {
		t.Errorf("want the targets checked, got %+v", s.Targets)
	}
	for _, d := range s.Design {
		if !d.Met {
			t.Errorf("design check missed: %s: %s", d.Target, d.Figure)
		}
	}
}
