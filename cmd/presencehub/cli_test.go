//go:build unix

package main

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestHelpListsCommands: --help, -h and help list the commands, one line
// each, on stdout, and exit 0; a command's --help lists its flags.
func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		res := runPresencehub(t, nil, args...)
		if res.code != 0 || res.stderr != "" {
			t.Errorf("presencehub %s: got exit code %d and stderr %q, want 0 and none", args[0], res.code, res.stderr)
		}
		for _, cmd := range []string{"serve", "token"} {
			if n := strings.Count(res.stdout, "\n  "+cmd+" "); n != 1 {
				t.Errorf("presencehub %s: got %d lines for %s in\n%s\nwant one", args[0], n, cmd, res.stdout)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		cmd  string
	}{
		{[]string{"serve", "--help"}, "serve"},
		{[]string{"help", "serve"}, "serve"},
		{[]string{"token", "-h"}, "token"},
	} {
		res := runPresencehub(t, nil, tc.args...)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "Usage: presencehub "+tc.cmd+" [flags]\n") {
			t.Errorf("presencehub %s: got exit code %d and stdout %q, want 0 and the usage of %s", strings.Join(tc.args, " "), res.code, res.stdout, tc.cmd)
		}
		if !strings.Contains(res.stdout, "-jwt-secret string") || !strings.Contains(res.stdout, "PRESENCE_JWT_SECRET") {
			t.Errorf("presencehub %s: got stdout %q, want the flags with their environment variables", strings.Join(tc.args, " "), res.stdout)
		}
	}
}

// TestBadCommandLineIsOneLine: a bad flag, argument or command prints one
// line and where the usage is, not the whole usage, and exits 2.
func TestBadCommandLineIsOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, "flag provided but not defined: -x\nRun 'presencehub serve --help' for usage.\n"},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus\nRun 'presencehub serve --help' for usage.\n"},
		{[]string{"serve", "--grace", "soon"}, "invalid value \"soon\" for flag -grace: parse error\nRun 'presencehub serve --help' for usage.\n"},
		{[]string{"serve", "now"}, "unexpected argument \"now\" (flags start with -)\nRun 'presencehub serve --help' for usage.\n"},
		{[]string{"token", "--bogus"}, "flag provided but not defined: -bogus\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"token", "--agent", "alice"}, "--site is required\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"token", "--site", "demo"}, "--agent is required\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"token", "--site", "a*b", "--agent", "alice"},
			"--site: invalid site id \"a*b\": want 1 to 64 characters of A-Za-z0-9_-\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"token", "--site", "demo", "--agent", "alice", "--groups", "sales,x y"},
			"--groups: invalid group id \"x y\": want 1 to 64 characters of A-Za-z0-9_-\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"token", "--site", "demo", "--agent", "alice", "--role", "root"}, "--role \"root\": want agent or admin\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"token", "--site", "demo", "--agent", "alice", "--ttl", "-1h"}, "--ttl -1h0m0s: want a positive duration, e.g. 24h\nRun 'presencehub token --help' for usage.\n"},
		{[]string{"start"}, "unknown command \"start\"\nRun 'presencehub help' for usage.\n"},
		{[]string{"help", "start"}, "unknown command \"start\"\nRun 'presencehub help' for usage.\n"},
	} {
		res := runPresencehub(t, nil, tc.args...)
		if res.code != 2 || res.stderr != tc.want || res.stdout != "" {
			t.Errorf("presencehub %s: got exit code %d, stderr %q, stdout %q; want 2, %q and none",
				strings.Join(tc.args, " "), res.code, res.stderr, res.stdout, tc.want)
		}
	}
}

// TestEmbeddedNATSListenErrorSurfaces: when the embedded nats-server cannot
// listen (a port taken after serve checked it), connectNATS returns its
// error, naming the port, instead of waiting for a server that never gets
// ready.
func TestEmbeddedNATSListenErrorSurfaces(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := &serveConfig{dataDir: t.TempDir(), natsListen: busy.Addr().String(), natsSync: defaultNATSSync}
	nc, _, shutdown, err := connectNATS(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		nc.Close()
		shutdown()
		t.Fatalf("got a connection to an embedded NATS on busy port %s, want an error", cfg.natsListen)
	}
	if !strings.Contains(err.Error(), cfg.natsListen) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("got error %q, want it to name %s and say it is in use", err, cfg.natsListen)
	}
}

// TestReplicaIDAndHomePage: the admin stats name each replica by its
// --replica-id, by default HOSTNAME:PORT of its HTTP listener, so two
// replicas on one host are told apart; / tells what runs, and links the
// pages only in dev mode.
func TestReplicaIDAndHomePage(t *testing.T) {
	ns := natstest.Start(t)
	args := func(extra ...string) []string {
		return append([]string{"--addr", "127.0.0.1:0", "--nats-url", ns.ClientURL(), "--grace", "2s",
			"--data-dir", t.TempDir(), "--jwt-secret", procSecret}, extra...)
	}
	a := startHub(t, "A", args()...)
	b := startHub(t, "B", args("--replica-id", "replica-b", "--dev")...)

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{net.JoinHostPort(host, port): true, "replica-b": true}

	admin := dialWS(t, "admin@A", a.wsURL("/v1/admin"))
	admin.Send(map[string]string{"type": "hello", "token": opsAdminToken(t)})
	// Replicas publish their numbers every second; wait for a frame that
	// lists both.
	deadline := time.Now().Add(procWait)
	var got map[string]bool
	for !equalSets(got, want) {
		f, ok := admin.NextBefore(deadline)
		if !ok {
			t.Fatalf("got replicas %v on the admin socket within %v, want %v", got, procWait, want)
		}
		if f.Str("type") != "stats" {
			continue
		}
		got = map[string]bool{}
		list, _ := f.Fields["replicas"].([]any)
		for _, r := range list {
			m, _ := r.(map[string]any)
			id, _ := m["hub"].(string)
			got[id] = true
		}
	}

	code, body := opsGet(t, a, "/")
	if code != 200 || !strings.Contains(body, "presencehub token") || strings.Contains(body, "?dev") {
		t.Errorf("GET / without --dev: got %d %q, want 200 and a page that points at presencehub token, not at dev pages", code, body)
	}
	code, body = opsGet(t, b, "/")
	if code != 200 || !strings.Contains(body, `href="/console?dev"`) || !strings.Contains(body, `href="/admin"`) {
		t.Errorf("GET / with --dev: got %d %q, want 200 and links to the console and the admin page", code, body)
	}
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// The version names the link-time version, else the commit and its time,
// else says that nothing was stamped and how to stamp it.
func TestVersionOf(t *testing.T) {
	vcs := func(kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		for i := 0; i+1 < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	for _, tc := range []struct {
		linked string
		info   *debug.BuildInfo
		want   string
	}{
		{"v1.2.3", vcs("vcs.revision", "abc"), "v1.2.3"},
		{"", vcs("vcs.revision", "c93cd5b4", "vcs.time", "2026-12-07T11:56:48Z"), "(devel) c93cd5b4 2026-12-07T11:56:48Z"},
		{"", vcs("vcs.revision", "c93cd5b4", "vcs.time", "2026-12-07T11:56:48Z", "vcs.modified", "true"), "(devel) c93cd5b4 2026-12-07T11:56:48Z (modified)"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
	} {
		if got := versionOf(tc.linked, tc.info, true); got != tc.want {
			t.Errorf("versionOf(%q, %v): got %q, want %q", tc.linked, tc.info.Settings, got, tc.want)
		}
	}
	if got := versionOf("", vcs(), true); got != "(devel)" {
		t.Errorf("without a stamp: got %q, want (devel)", got)
	}
}
