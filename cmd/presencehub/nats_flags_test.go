package main

import (
	"flag"
	"io"
	"log/slog"
	"net"
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

// The liveness floor for a replicated bucket: (election + margin) * 3/2,
// and nothing for a single replica; the default is above it.
func TestClusterLivenessFloor(t *testing.T) {
	if got := parseServe(t).clusterLivenessFloor(); got != 0 {
		t.Errorf("one replica: got floor %v, want none", got)
	}
	floor := parseServe(t, "--kv-replicas", "3").clusterLivenessFloor()
	if floor != 18*time.Second {
		t.Errorf("three replicas: got floor %v, want 18s (ttl*2/3 > 10s election + 2s margin)", floor)
	}
	if def := parseServe(t).livenessTTL; def < floor {
		t.Errorf("the default --liveness-ttl %v is below the cluster floor %v", def, floor)
	}
}

// A NATS connection error names the URLs it tried, without the
// credentials they may carry.
func TestNATSConnectErrorNamesURL(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close() // nothing listens there now
	cfg := parseServe(t, "--nats-url", "nats://ops:s3cret@"+addr+", tok3n@"+addr)
	nc, _, stop, err := connectNATS(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		nc.Close()
		stop()
		t.Fatalf("got a connection to %s, where nothing listens", addr)
	}
	want := "failed to connect to NATS at nats://redacted@" + addr + ", nats://redacted@" + addr + ": "
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tok3n") {
		t.Fatalf("got %q, want it to start %q and hold no credentials", err, want)
	}
	for in, want := range map[string]string{
		"nats://a.example:4222,nats://b.example:4222": "nats://a.example:4222, nats://b.example:4222",
		"a.example:4222":      "a.example:4222",
		"tls://u:p@a.example": "tls://redacted@a.example",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// --nats-sync: always by default, an interval otherwise, nothing else; it
// sets the embedded nats-server's sync, and is refused with --nats-url,
// whose servers sync as their configuration says.
func TestNATSSyncFlag(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		always   bool
		interval time.Duration
		err      string
	}{
		{nil, true, 0, ""},
		{[]string{"--nats-sync", "always"}, true, 0, ""},
		{[]string{"--nats-sync", "1s"}, false, time.Second, ""},
		{[]string{"--nats-sync", "2m"}, false, 2 * time.Minute, ""},
		{[]string{"--nats-sync", "0s"}, false, 0, "invalid --nats-sync"},
		{[]string{"--nats-sync", "-1s"}, false, 0, "invalid --nats-sync"},
		{[]string{"--nats-sync", "never"}, false, 0, "invalid --nats-sync"},
		{[]string{"--nats-url", "nats://127.0.0.1:4222", "--nats-sync", "1s"}, false, 0, "--nats-sync applies to the embedded nats-server only"},
		{[]string{"--nats-url", "nats://127.0.0.1:4222"}, false, 0, ""},
	} {
		cfg, _, _, err := loadServeConfig(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got %v, want an error with %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: got %v, want valid", tc.args, err)
			continue
		}
		if cfg.natsURL != "" {
			continue
		}
		opts, err := embeddedOptions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if opts.SyncAlways != tc.always || opts.SyncInterval != tc.interval {
			t.Errorf("%v: got SyncAlways %v, SyncInterval %v, want %v, %v", tc.args, opts.SyncAlways, opts.SyncInterval, tc.always, tc.interval)
		}
		if opts.JetStreamMaxStore != embeddedMaxStore {
			t.Errorf("%v: got JetStream's storage limit %d, want %d", tc.args, opts.JetStreamMaxStore, embeddedMaxStore)
		}
	}
	t.Setenv("PRESENCE_NATS_SYNC", "1s")
	if _, _, _, err := loadServeConfig([]string{"--nats-url", "nats://127.0.0.1:4222"}); err == nil || !strings.Contains(err.Error(), "--nats-sync") {
		t.Errorf("PRESENCE_NATS_SYNC with --nats-url: got %v, want an error naming --nats-sync", err)
	}
}
