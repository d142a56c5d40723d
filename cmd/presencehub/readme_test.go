//go:build unix

package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
)

// TestReadmeWebhookExample runs docs/tryit.md's way of trying webhooks on
// one machine: its Python receiver, a hub with --webhook-allow-private, its
// registration body; an agent's connecting reaches the receiver, and the
// deliveries log says delivered.
func TestReadmeWebhookExample(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the webhook receiver of docs/tryit.md needs it")
	}
	readme, err := os.ReadFile("../../docs/tryit.md")
	if err != nil {
		t.Fatal(err)
	}
	script := regexp.MustCompile(`(?s)python3 -c '(from http\.server.*?)'`).FindSubmatch(readme)
	body := regexp.MustCompile(`-d '(\{"url":"http://127\.0\.0\.1:9000/"[^']*)'`).FindSubmatch(readme)
	if script == nil || body == nil || !strings.Contains(string(readme), "--webhook-allow-private") {
		t.Fatal("docs/tryit.md no longer has the receiver, the registration or --webhook-allow-private this test runs")
	}
	// The README's port, 9000, may be taken here: another free one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	receiver := exec.Command(python, "-c", strings.Replace(string(script[1]), "9000", port, 1))
	out, err := receiver.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := receiver.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		receiver.Process.Kill()
		receiver.Wait()
	})
	printed := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			printed <- sc.Text()
		}
		close(printed)
	}()

	ns := natstest.Start(t)
	hub := startHub(t, "A", append(natsHubArgs(t, ns.ClientURL(), time.Hour), "--webhook-allow-private")...)
	reg := strings.Replace(string(body[1]), "9000", port, 1)
	code, ep := webhookAPI(t, hub, "POST", "/v1/admin/sites/acme/webhooks", reg)
	if code != 201 {
		t.Fatalf("the README's registration %s: got %d %v, want 201", reg, code, ep)
	}
	connectAgent(t, hub, "alice", mintProcToken(t, procSecret, "acme", "alice"))
	deadline := time.After(procWait)
	for done := false; !done; {
		select {
		case line, ok := <-printed:
			if !ok {
				t.Fatal("the receiver exited")
			}
			done = strings.Contains(line, `"type":"agent.availability"`) && strings.Contains(line, `"agent":"alice"`)
		case <-deadline:
			t.Fatal("the receiver printed no agent.availability event for alice in time")
		}
	}
	// The attempt is logged once the receiver has answered.
	wstest.Eventually(t, procWait, "the attempt logged as delivered with 204", func() bool {
		ds := deliveriesOf(t, hub, ep["id"].(string))
		return len(ds) > 0 && ds[0]["outcome"] == "delivered" && ds[0]["status_code"] == 204.0
	})
}
