//go:build unix

package main

// Process tests of the embedded store's durability (docs/operations.md#durability):
// the lock on --data-dir, a full disk, a damaged store, backup and restore.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
)

// embeddedHubArgs are the serve flags of a hub running the embedded
// nats-server on dataDir, listening on a free port.
func embeddedHubArgs(dataDir string, extra ...string) []string {
	return append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--jwt-secret", procSecret,
		"--grace", "1h", "--log-level", "info"}, extra...)
}

// TestSecondProcessOnADataDirFails: a second process on the --data-dir of a
// running hub stops at once, naming the directory and the first one's pid;
// after a SIGKILL of the first, a new process starts on the directory with
// nothing cleaned up by hand.
func TestSecondProcessOnADataDirFails(t *testing.T) {
	dir := t.TempDir()
	a := startHub(t, "A", embeddedHubArgs(dir)...)
	opsAdmin(t, a, "PUT", "/v1/admin/sites/acme/settings", `{"allowed_origins":["https://shop.example"]}`, http.StatusOK)

	res := runPresencehub(t, nil, append([]string{"serve"}, embeddedHubArgs(dir)...)...)
	pid := strconv.Itoa(a.Cmd.Process.Pid)
	if res.code != 1 || !strings.Contains(res.stderr, "--data-dir "+dir+" is in use by another presencehub process (pid "+pid+")") {
		t.Fatalf("second process on %s: got exit code %d and stderr\n%s\nwant 1 and a message naming the directory and pid %s", dir, res.code, res.stderr, pid)
	}
	if strings.Contains(res.stderr, "listening") {
		t.Errorf("second process: got stderr\n%s\nwant it stopped before it served", res.stderr)
	}

	a.kill()
	<-a.Exited
	b := startHub(t, "B", embeddedHubArgs(dir)...)
	if code, body := adminCall(t, b, "GET", "/v1/admin/sites/acme/settings", ""); code != http.StatusOK || !strings.Contains(body, "https://shop.example") {
		t.Errorf("settings after a SIGKILL: got %d %s, want the ones stored before it", code, body)
	}
	b.terminate()
}

// mountSmallFS mounts a tmpfs of size bytes on a new directory and returns
// it; the test is skipped where it cannot mount (it needs root, which CI
// has). The filesystem is unmounted when the test ends, after the hubs the
// test started afterwards are gone.
func mountSmallFS(t *testing.T, size int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping process test in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: a full disk is tried on a tmpfs the test mounts, which needs root (CI runs as root)")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("skipping: failed to mount a tmpfs on %s for a full disk: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("failed to unmount the tmpfs on %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file in dir until its filesystem has no page left, and
// returns the file's path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 16, 1 << 12, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					t.Fatalf("filling %s: got %v, want no space left", dir, err)
				}
				break
			}
		}
	}
	return path
}

// setStatusOutcome sends set_status with ref and returns the status frame
// answering it or the error frame's code.
func setStatusOutcome(t *testing.T, c *agentClient, status, ref string) (ok bool, code string) {
	t.Helper()
	c.Send(map[string]string{"type": "set_status", "status": status, "ref": ref})
	deadline := time.Now().Add(procWait)
	for {
		f, got := c.NextBefore(deadline)
		if !got {
			t.Fatalf("%s: no answer to set_status %s (ref %s) within %v", c.Name, status, ref, procWait)
		}
		if f.Str("ref") != ref {
			continue
		}
		switch f.Str("type") {
		case "status":
			return true, ""
		case "error":
			return false, f.Str("code")
		}
	}
}

// adminCall sends an admin request for site acme and returns the status
// code and the body.
func adminCall(t *testing.T, p *hubProc, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.Addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+opsAdminToken(t))
	resp, err := opsHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s on hub %s: %v", method, path, p.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// storeSnapshot is what the admin API says of site acme: the settings, the
// site's hours, the webhooks' URLs and alice's status.
type storeSnapshot struct {
	settings, hours string
	webhooks        []string
	alice           string
}

func snapshotStore(t *testing.T, p *hubProc) storeSnapshot {
	t.Helper()
	var s storeSnapshot
	code, body := adminCall(t, p, "GET", "/v1/admin/sites/acme/settings", "")
	if code != http.StatusOK {
		t.Fatalf("GET settings on hub %s: got %d %s", p.Name, code, body)
	}
	s.settings = strings.TrimSpace(body)
	code, body = adminCall(t, p, "GET", "/v1/admin/sites/acme/hours", "")
	if code != http.StatusOK && code != http.StatusNotFound {
		t.Fatalf("GET hours on hub %s: got %d %s", p.Name, code, body)
	}
	s.hours = strings.TrimSpace(body)
	code, list := webhookAPI(t, p, "GET", "/v1/admin/sites/acme/webhooks", "")
	if code != http.StatusOK {
		t.Fatalf("GET webhooks on hub %s: got %d %v", p.Name, code, list)
	}
	hooks, _ := list["webhooks"].([]any)
	for _, h := range hooks {
		m, _ := h.(map[string]any)
		u, _ := m["url"].(string)
		s.webhooks = append(s.webhooks, u)
	}
	slices.Sort(s.webhooks)
	code, body = adminCall(t, p, "GET", "/v1/admin/sites/acme/agents/alice", "")
	if code != http.StatusOK {
		t.Fatalf("GET agent alice on hub %s: got %d %s", p.Name, code, body)
	}
	var agent struct {
		Status string `json:"status"`
	}
	json.Unmarshal([]byte(body), &agent)
	s.alice = agent.Status
	return s
}

// TestFullDiskRefusesWritesAndRecovers runs a hub on a store whose disk
// fills up during status changes: the change that does not fit gets an
// unavailable error frame, admin writes 503, /readyz says why, the widget
// keeps the last status, and the process goes on. Once space is back the
// hub restarts JetStream on the store and everything works again; after a
// restart, every acknowledged change is there.
func TestFullDiskRefusesWritesAndRecovers(t *testing.T) {
	procBinary(t)
	dir := mountSmallFS(t, 16<<20)
	args := embeddedHubArgs(dir, "--webhook-allow-private", "--nats-write-retry", "2s")
	h := startHub(t, "hub", args...)
	hookURL, _ := startHookReceiver(t, false)

	widget := dialWS(t, "widget", h.wsURL("/v1/widget?site=acme"))
	widget.Expect("widget_status", "status", "offline")
	alice := connectAgent(t, h, "alice", mintProcToken(t, procSecret, "acme", "alice"))
	widget.Expect("widget_status", "status", "online")
	opsAdmin(t, h, "PUT", "/v1/admin/sites/acme/settings", `{"allowed_origins":["https://shop.example"]}`, http.StatusOK)
	opsAdmin(t, h, "PUT", "/v1/admin/sites/acme/hours", `{"timezone":"Europe/Prague","weekly":{"monday":[{"from":"00:00","to":"24:00"}],"tuesday":[{"from":"00:00","to":"24:00"}],"wednesday":[{"from":"00:00","to":"24:00"}],"thursday":[{"from":"00:00","to":"24:00"}],"friday":[{"from":"00:00","to":"24:00"}],"saturday":[{"from":"00:00","to":"24:00"}],"sunday":[{"from":"00:00","to":"24:00"}]}}`, http.StatusOK)
	registerWebhook(t, h, hookURL+"/before", `"agent.status"`)
	before := snapshotStore(t, h)

	filler := fillDisk(t, dir)
	// Status changes until one does not fit: each one answered with its
	// status frame is acknowledged, and the widget follows those alone.
	statuses := []string{"busy", "online"}
	acked := "online"
	var refused string
	for i := 0; refused == "" && i < 2000; i++ {
		st := statuses[i%2]
		ok, code := setStatusOutcome(t, alice, st, "r"+strconv.Itoa(i))
		if !ok {
			if code != "unavailable" {
				t.Fatalf("set_status %s on a full disk: got error code %q, want unavailable", st, code)
			}
			refused = st
			break
		}
		acked = st
		widget.Expect("widget_status", "status", st)
	}
	if refused == "" {
		t.Fatal("every status change was stored on a full disk; want one refused")
	}
	t.Logf("refused set_status %s after the disk filled; the last acknowledged is %s", refused, acked)

	waitHTTPBody(t, h, "/readyz", http.StatusServiceUnavailable, "no space left on device")
	opsWaitMetrics(t, h, "the store not writable", opsEq(0, "presencehub_store_writable"))
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/v1/admin/sites/acme/settings", `{"allowed_origins":["https://other.example"]}`},
		{"DELETE", "/v1/admin/sites/acme/hours", ""},
		{"POST", "/v1/admin/sites/acme/webhooks", `{"url":"` + hookURL + `/during","events":["agent.status"]}`},
	} {
		code, body := adminCall(t, h, w.method, w.path, w.body)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
			t.Errorf("%s %s on a full disk: got %d %s, want 503 unavailable", w.method, w.path, code, body)
		}
	}
	opsNoFrameYet(t, widget, "while the disk is full")
	select {
	case <-h.Exited:
		t.Fatalf("the hub exited on a full disk (%v)", h.WaitErr)
	default:
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	opsWaitHTTPStatus(t, h, "/readyz", http.StatusOK)
	opsWaitMetrics(t, h, "the store writable again", opsEq(1, "presencehub_store_writable"))
	// The refused change never landed: the next frame is the next change.
	next := statuses[0]
	if acked == next {
		next = statuses[1]
	}
	if ok, code := setStatusOutcome(t, alice, next, "after"); !ok {
		t.Fatalf("set_status %s once space is back: got error %s, want it stored", next, code)
	}
	widget.Expect("widget_status", "status", next)
	opsAdmin(t, h, "PUT", "/v1/admin/sites/acme/settings", `{"allowed_origins":["https://after.example"]}`, http.StatusOK)
	registerWebhook(t, h, hookURL+"/after", `"agent.status"`)

	want := before
	want.settings = `{"allowed_origins":["https://after.example"]}`
	want.webhooks = []string{hookURL + "/after", hookURL + "/before"}
	want.alice = next
	if got := snapshotStore(t, h); !reflect.DeepEqual(got, want) {
		t.Errorf("once space is back: got %+v, want %+v", got, want)
	}
	h.terminate()
	again := startHub(t, "again", args...)
	if got := snapshotStore(t, again); !reflect.DeepEqual(got, want) {
		t.Errorf("after a restart: got %+v, want %+v", got, want)
	}
	again.terminate()
}

// waitHTTPBody polls GET path on p until it answers code with a body that
// contains want.
func waitHTTPBody(t *testing.T, p *hubProc, path string, code int, want string) {
	t.Helper()
	deadline := time.Now().Add(procWait)
	tick := time.NewTicker(opsPollEvery)
	defer tick.Stop()
	for {
		got, body := opsGet(t, p, path)
		if got == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on hub %s: got %d %q for %v, want %d and %q", path, p.Name, got, body, procWait, code, want)
		}
		<-tick.C
	}
}

// streamDir is the directory of stream name in the embedded store of the
// hub on dataDir.
func streamDir(dataDir, name string) string {
	return filepath.Join(dataDir, "nats", "jetstream", "$G", "streams", name)
}

// lastBlock returns the path of the last message block of stream name.
func lastBlock(t *testing.T, dataDir, name string) string {
	t.Helper()
	dir := filepath.Join(streamDir(dataDir, name), "msgs")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	last, lastN := "", -1
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".blk"))
		if err == nil && strings.HasSuffix(e.Name(), ".blk") && n > lastN {
			last, lastN = filepath.Join(dir, e.Name()), n
		}
	}
	if last == "" {
		t.Fatalf("no message block in %s", dir)
	}
	return last
}

// writeSiteState stores settings, working hours, a webhook and a status of
// alice's through hub p, and returns what the admin API then says.
func writeSiteState(t *testing.T, p *hubProc, hookURL string) storeSnapshot {
	t.Helper()
	opsAdmin(t, p, "PUT", "/v1/admin/sites/acme/settings", `{"allowed_origins":["https://shop.example"]}`, http.StatusOK)
	// Open around the clock, so that the widget's reason (all_busy, which
	// TestBackupRestoresEverything reads back) does not depend on when the
	// test runs.
	opsAdmin(t, p, "PUT", "/v1/admin/sites/acme/hours", `{"timezone":"Europe/Prague","weekly":{"monday":[{"from":"00:00","to":"24:00"}],"tuesday":[{"from":"00:00","to":"24:00"}],"wednesday":[{"from":"00:00","to":"24:00"}],"thursday":[{"from":"00:00","to":"24:00"}],"friday":[{"from":"00:00","to":"24:00"}],"saturday":[{"from":"00:00","to":"24:00"}],"sunday":[{"from":"00:00","to":"24:00"}]}}`, http.StatusOK)
	registerWebhook(t, p, hookURL, `"agent.status"`)
	alice := connectAgent(t, p, "alice", mintProcToken(t, procSecret, "acme", "alice"))
	alice.Send(map[string]string{"type": "set_status", "status": "busy", "ref": "r1"})
	alice.WaitFor("status", "status", "busy", "ref", "r1")
	return snapshotStore(t, p)
}

// serveFails runs serve on dataDir, which must stop with exit code 1 and
// a message with every one of wants; it returns the message.
func serveFails(t *testing.T, dataDir string, wants ...string) string {
	t.Helper()
	res := runPresencehub(t, nil, append([]string{"serve"}, embeddedHubArgs(dataDir)...)...)
	for _, want := range wants {
		if res.code != 1 || !strings.Contains(res.stderr, want) {
			t.Fatalf("serve on %s: got exit code %d and stderr\n%s\nwant 1 and %q", dataDir, res.code, res.stderr, want)
		}
	}
	t.Logf("serve on %s refused:\n%s", dataDir, res.stderr)
	return res.stderr
}

// TestDamagedStoreIsRefused: a store whose last block of the presence
// bucket was cut short (or, later, its last record corrupted) while the hub
// was stopped is refused at start-up,
// saying what happened and what to do, and stays refused until the operator
// deletes the marker; then the hub serves what nats-server recovered, the
// settings, hours and webhooks among it. A stream nats-server cannot load
// at all is refused too, rather than replaced by an empty one.
func TestDamagedStoreIsRefused(t *testing.T) {
	hookURL, _ := startHookReceiver(t, false)
	dir := t.TempDir()
	h := startHub(t, "hub", embeddedHubArgs(dir, "--webhook-allow-private")...)
	want := writeSiteState(t, h, hookURL)
	h.terminate()

	blk := lastBlock(t, dir, "KV_presence")
	info, err := os.Stat(blk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blk, info.Size()-20); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, damagedFileName)
	serveFails(t, dir, "changed while presencehub was stopped", "KV_presence", "docs/operations.md#backup-and-restore", "delete "+marker)
	serveFails(t, dir, "found damaged at an earlier start", marker)

	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	h = startHub(t, "accepted", embeddedHubArgs(dir, "--webhook-allow-private")...)
	got := snapshotStore(t, h)
	got.alice, want.alice = "", "" // the last records of the bucket may be what was cut
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after accepting the repair: got %+v, want %+v", got, want)
	}
	h.terminate()

	// A corrupted last record (its checksum overwritten) is refused too.
	blk = lastBlock(t, dir, "KV_presence")
	f, err := os.OpenFile(blk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err = f.Stat()
	if err == nil {
		_, err = f.WriteAt([]byte("garbage!"), info.Size()-8)
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	serveFails(t, dir, "changed while presencehub was stopped", "KV_presence")
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}

	meta := filepath.Join(streamDir(dir, "KV_presence"), "meta.inf")
	if err := os.WriteFile(meta, []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	serveFails(t, dir, "stream KV_presence is in the store", "could not load it", "checksums do not match", "move "+streamDir(dir, "KV_presence"))
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a stream that does not load left %s; want the refusal to last only as long as the stream does not load", marker)
	}
}

// timelineOf polls hub p's timeline of site acme over [from, to] until
// cond holds of it, and returns it.
func timelineOf(t *testing.T, p *hubProc, from, to time.Time, cond func(string) bool) string {
	t.Helper()
	path := "/v1/admin/sites/acme/timeline?" + url.Values{
		"from": {from.UTC().Format(protocol.TimeFormat)}, "to": {to.UTC().Format(protocol.TimeFormat)}}.Encode()
	var got string
	wstest.Eventually(t, procWait, "hub "+p.Name+"'s timeline", func() bool {
		code, body := adminCall(t, p, "GET", path, "")
		got = body
		return code == http.StatusOK && cond(body)
	})
	return got
}

// TestBackupRestoresEverything: the backup of docs/operations.md, a copy
// of the stopped hub's --data-dir, restored as the --data-dir of a new hub,
// brings back every setting, schedule, webhook and status, and the
// history.
func TestBackupRestoresEverything(t *testing.T) {
	hookURL, _ := startHookReceiver(t, false)
	from := time.Now().Add(-time.Minute)
	dir := filepath.Join(t.TempDir(), "data")
	h := startHub(t, "hub", embeddedHubArgs(dir, "--webhook-allow-private")...)
	opsAdmin(t, h, "PUT", "/v1/admin/sites/acme/groups/sales/hours", `{"timezone":"Europe/Prague","weekly":{"friday":[{"from":"08:00","to":"12:00"}]}}`, http.StatusOK)
	want := writeSiteState(t, h, hookURL)
	to := time.Now()
	// The history has alice's busy and the widget's once both events are
	// read back from the stream.
	timeline := timelineOf(t, h, from, to, func(body string) bool {
		return strings.Contains(body, `"status":"busy","effective":"busy"`) && strings.Contains(body, `"reason":"all_busy"`)
	})
	_, groupHours := adminCall(t, h, "GET", "/v1/admin/sites/acme/groups/sales/hours", "")
	// flock(1), which docs/operations.md puts before the copy, takes the
	// same lock as the hub: it refuses while the hub runs.
	lock := filepath.Join(dir, lockFileName)
	if flock, err := exec.LookPath("flock"); err == nil {
		if err := exec.Command(flock, "--nonblock", lock, "true").Run(); err == nil {
			t.Errorf("flock --nonblock %s while the hub runs: got the lock, want it refused", lock)
		}
	}
	h.terminate()

	backup := filepath.Join(t.TempDir(), "backup")
	copyCmd := exec.Command("cp", "-a", dir, backup)
	if flock, err := exec.LookPath("flock"); err == nil {
		copyCmd = exec.Command(flock, "--nonblock", lock, "cp", "-a", dir, backup)
	}
	if out, err := copyCmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(copyCmd.Args, " "), err, out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if out, err := exec.Command("cp", "-a", backup, restored).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", backup, restored, err, out)
	}
	r := startHub(t, "restored", embeddedHubArgs(restored, "--webhook-allow-private")...)
	if got := snapshotStore(t, r); !reflect.DeepEqual(got, want) {
		t.Errorf("restored: got %+v, want %+v", got, want)
	}
	if code, got := adminCall(t, r, "GET", "/v1/admin/sites/acme/groups/sales/hours", ""); code != http.StatusOK || got != groupHours {
		t.Errorf("restored group hours: got %d %s, want 200 %s", code, got, groupHours)
	}
	timelineOf(t, r, from, to, func(body string) bool { return body == timeline })
	r.terminate()
}
