package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/wsconn"
	"github.com/presencehub/presencehub/transport"
)

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		in      string
		want    string // the parsed list, as prefixList prints it
		wantErr string
	}{
		{in: "10.0.0.0/8, 192.168.0.0/16", want: "10.0.0.0/8,192.168.0.0/16"},
		{in: "10.1.2.3,2001:db8::1", want: "10.1.2.3/32,2001:db8::1/128"},
		{in: "fd00::/8", want: "fd00::/8"},
		{in: "none", want: ""},
		{in: "", want: ""},
		{in: " , ", want: ""},
		{in: "10.0.0.0/33", wantErr: `invalid --trusted-proxies entry "10.0.0.0/33"`},
		{in: "10.0.0.0/8,lb.internal", wantErr: `invalid --trusted-proxies entry "lb.internal"`},
		{in: "none,10.0.0.0/8", wantErr: `invalid --trusted-proxies entry "none"`},
	}
	for _, tt := range tests {
		got, err := parseTrustedProxies(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTrustedProxies(%q): got error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("parseTrustedProxies(%q): got error %v, want %q", tt.in, err, tt.want)
		case got == nil:
			// nil would mean "the defaults" to transport.Config.
			t.Errorf("parseTrustedProxies(%q): got nil, want a non-nil list", tt.in)
		case prefixList(got) != tt.want:
			t.Errorf("parseTrustedProxies(%q): got %q, want %q", tt.in, prefixList(got), tt.want)
		}
	}
}

// The flag's default, printed in --help, parses back to transport's default.
func TestTrustedProxiesDefaultRoundTrips(t *testing.T) {
	want := transport.DefaultTrustedProxies()
	got, err := parseTrustedProxies(prefixList(want))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v from the flag's default, want %v", got, want)
	}
}

// Every socket limit has a flag whose default is transport's.
func TestSocketLimitFlagsDefaultToTransport(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs)
	for name, want := range map[string]fmt.Stringer{
		"hello-timeout":          transport.DefaultHelloTimeout,
		"write-timeout":          transport.DefaultWriteTimeout,
		"ping-interval":          transport.DefaultPingInterval,
		"pong-timeout":           transport.DefaultPongTimeout,
		"close-timeout":          transport.DefaultCloseTimeout,
		"max-message-bytes":      stringer(fmt.Sprint(transport.DefaultMaxMessageBytes)),
		"send-queue":             stringer(fmt.Sprint(transport.DefaultSendQueue)),
		"status-rate":            stringer(fmt.Sprint(transport.DefaultStatusRate)),
		"status-burst":           stringer(fmt.Sprint(transport.DefaultStatusBurst)),
		"device-op-queue":        stringer(fmt.Sprint(transport.DefaultDeviceOpQueue)),
		"max-widgets-per-client": stringer(fmt.Sprint(transport.DefaultMaxWidgetsPerClient)),
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("got no --%s flag", name)
			continue
		}
		if f.DefValue != want.String() {
			t.Errorf("got --%s default %s, want transport's %s", name, f.DefValue, want)
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// --rule-workers defaults to the hub's and refuses 0 and negative values,
// which would leave the rules' decisions undone (0 would also read as the
// hub's default).
func TestRuleWorkersFlag(t *testing.T) {
	if got := parseServe(t).ruleWorkers; got != hub.DefaultRuleWorkers {
		t.Errorf("got default %d, want the hub's %d", got, hub.DefaultRuleWorkers)
	}
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"1", true},
		{"16", true},
		{"0", false},
		{"-1", false},
	} {
		err := parseServe(t, "--rule-workers", tc.value).validate()
		switch {
		case tc.ok && err != nil:
			t.Errorf("--rule-workers %s: got %v, want valid", tc.value, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "invalid --rule-workers "+tc.value)):
			t.Errorf("--rule-workers %s: got %v, want an error naming the flag and the value", tc.value, err)
		}
	}
}

// --history-sites, --history-summaries and --history-summarize-rate
// default to the history's, and refuse what would leave no site in memory,
// name no stream of their own (a summaries stream named like the event
// stream would take its subjects) or be no rate. The owned sites'
// summaries are written by default, not with --history-summarize-rate 0,
// nor without summaries or events.
func TestHistoryFlags(t *testing.T) {
	if c := parseServe(t); c.historySites != history.DefaultSites || c.historySums != history.DefaultSummaries || c.summarizeRate != history.DefaultSummarizeRate {
		t.Errorf("got defaults %d, %q, %v, want the history's %d, %q, %v", c.historySites, c.historySums, c.summarizeRate,
			history.DefaultSites, history.DefaultSummaries, history.DefaultSummarizeRate)
	}
	for args, want := range map[string]bool{
		"": true, "--history-summarize-rate 0.5": true, "--history-summarize-rate 0": false,
		"--history-summaries none": false, "--events-stream none": false,
	} {
		if got := parseServe(t, strings.Fields(args)...).summarizesOwned(); got != want {
			t.Errorf("%q: summarises the owned sites: %v, want %v", args, got, want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string // "" when valid
	}{
		{[]string{"--history-sites", "1"}, ""},
		{[]string{"--history-sites", "0"}, "invalid --history-sites 0"},
		{[]string{"--history-summaries", "none"}, ""},
		{[]string{"--history-summaries", "none", "--events-stream", "none"}, ""},
		{[]string{"--history-summaries", "ACME_HISTORY"}, ""},
		{[]string{"--history-summaries", "pres.ence"}, `invalid --history-summaries "pres.ence"`},
		{[]string{"--history-summaries", "EVENTS", "--events-stream", "EVENTS"}, `invalid --history-summaries "EVENTS": the event stream's name`},
		{[]string{"--history-summarize-rate", "0"}, ""},
		{[]string{"--history-summarize-rate", "-1"}, "invalid --history-summarize-rate -1"},
		{[]string{"--history-summarize-rate", "NaN"}, "invalid --history-summarize-rate NaN"},
	} {
		err := parseServe(t, tc.args...).validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: got %v, want valid", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// --poller picks how sockets are read: empty (the platform's default, epoll
// on Linux) unless set; goroutine everywhere, epoll on Linux alone, nothing
// else.
func TestPollerFlag(t *testing.T) {
	if got := parseServe(t).poller; got != "" {
		t.Errorf("got default %q, want empty: wsconn.DefaultPoller (%q)", got, wsconn.DefaultPoller)
	}
	if got := parseServe(t, "--poller", "goroutine").poller; got != wsconn.PollerGoroutine {
		t.Errorf("--poller goroutine: got %q", got)
	}
	if runtime.GOOS == "linux" {
		if got := parseServe(t, "--poller", "epoll").poller; got != wsconn.PollerEpoll {
			t.Errorf("--poller epoll: got %q", got)
		}
	}
	fs := flag.NewFlagSet("presencehub serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(fs)
	if err := fs.Parse([]string{"--poller", "kqueue"}); err == nil || !strings.Contains(err.Error(), `"kqueue"`) {
		t.Errorf("--poller kqueue: got %v, want an error naming the value", err)
	}
}

// --dev keeps its state in ./data-dev, apart from the ./data of a hub run
// without it (the README's quick start runs one after the other), unless
// --data-dir or PRESENCE_DATA_DIR says where.
func TestDevDataDir(t *testing.T) {
	t.Setenv("PRESENCE_DATA_DIR", "") // restored when the test ends
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "./data"},
		{[]string{"--dev"}, "", "./data-dev"},
		{[]string{"--dev", "--data-dir", "/tmp/mine"}, "", "/tmp/mine"},
		{[]string{"--dev"}, "/srv/presence", "/srv/presence"},
		{nil, "/srv/presence", "/srv/presence"},
	} {
		if tc.env != "" {
			t.Setenv("PRESENCE_DATA_DIR", tc.env)
		} else {
			os.Unsetenv("PRESENCE_DATA_DIR")
		}
		cfg, _, _, err := loadServeConfig(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.dataDir != tc.want {
			t.Errorf("%v with PRESENCE_DATA_DIR=%q: got --data-dir %q, want %q", tc.args, tc.env, cfg.dataDir, tc.want)
		}
	}
}

// The event duty's limits default to the hub's and refuse 0 and negative
// values (the hub reads 0 as its default, not what an operator writing 0
// means); each flag reaches the hub's configuration.
func TestEventLimitFlags(t *testing.T) {
	c := parseServe(t)
	if c.eventsQueue != events.DefaultQueue || c.standbyKept != hub.DefaultStandbyKept || c.watchPending != store.DefaultWatchPendingBytes {
		t.Errorf("got defaults %d, %d, %d, want the hub's %d, %d, %d", c.eventsQueue, c.standbyKept, c.watchPending,
			events.DefaultQueue, hub.DefaultStandbyKept, store.DefaultWatchPendingBytes)
	}
	for _, name := range []string{"--events-queue", "--events-standby-max", "--watch-pending-bytes"} {
		if err := parseServe(t, name, "10").validate(); err != nil {
			t.Errorf("%s 10: got %v, want valid", name, err)
		}
		for _, bad := range []string{"0", "-1"} {
			if err := parseServe(t, name, bad).validate(); err == nil || !strings.Contains(err.Error(), "invalid "+name) {
				t.Errorf("%s %s: got %v, want an error naming the flag", name, bad, err)
			}
		}
	}
	c = parseServe(t, "--events-queue", "7", "--events-standby-max", "8", "--watch-pending-bytes", "9")
	if c.eventsQueue != 7 || c.standbyKept != 8 || c.watchPending != 9 {
		t.Errorf("got %d, %d, %d, want 7, 8, 9", c.eventsQueue, c.standbyKept, c.watchPending)
	}
}
