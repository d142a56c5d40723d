package main

import (
	"flag"
	"strings"
	"testing"
	"time"
)

// parseServe parses serve's flags from args, with no environment.
func parseServe(t *testing.T, args ...string) *serveConfig {
	t.Helper()
	fs := flag.NewFlagSet("presencehub serve", flag.ContinueOnError)
	cfg := serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The NATS keepalive and write-retry flags refuse values that would turn
// them off by accident; 0 retries is how to turn retries off.
func TestNATSFlagsValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for valid
	}{
		{nil, ""},
		{[]string{"--nats-ping-interval", "0"}, "--nats-ping-interval"},
		{[]string{"--nats-max-pings-out", "0"}, "--nats-max-pings-out"},
		{[]string{"--nats-write-retry", "-1s"}, "--nats-write-retry"},
		{[]string{"--nats-write-retry", "0"}, ""},
	} {
		err := parseServe(t, tc.args...).validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: got %v, want valid", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	if got := writeRetryConfig(0); got >= 0 {
		t.Errorf("--nats-write-retry 0: got hub WriteRetry %v, want negative (no retries)", got)
	}
}

// The grace floor for a replicated bucket: election + refresh + margin, and
// nothing for a single replica.
func TestClusterGraceFloor(t *testing.T) {
	if got := parseServe(t).clusterGraceFloor(); got != 0 {
		t.Errorf("one replica: got floor %v, want none", got)
	}
	floor := parseServe(t, "--kv-replicas", "3").clusterGraceFloor()
	if floor != 16*time.Second {
		t.Errorf("three replicas, refresh grace/4: got floor %v, want 16s (grace*3/4 > 10s election + 2s margin)", floor)
	}
	if got := parseServe(t, "--kv-replicas", "3", "--lease-refresh", "5s").clusterGraceFloor(); got != 17*time.Second {
		t.Errorf("three replicas, refresh 5s: got floor %v, want 17s", got)
	}
	if def := parseServe(t).grace; def < floor {
		t.Errorf("the default --grace %v is below the cluster floor %v", def, floor)
	}
}
