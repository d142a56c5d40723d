package transport_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

// badFrames are frames a widget must not send, each with the close code the
// hub answers it with.
var badFrames = []struct {
	name  string
	frame []byte
	code  int
}{
	{"reserved opcode", wstest.ClientFrame(true, 0, 0x3, nil), 1002},
	{"RSV1 set", wstest.ClientFrame(true, 4, wstest.OpText, []byte(`{}`)), 1002},
	{"unmasked", wstest.UnmaskedFrame(wstest.OpText, []byte(`{}`)), 1002},
	{"ping of 126 bytes", wstest.ClientFrame(true, 0, wstest.OpPing, bytes.Repeat([]byte("p"), 126)), 1002},
	{"fragmented ping", wstest.ClientFrame(false, 0, wstest.OpPing, nil), 1002},
	{"continuation first", wstest.ClientFrame(true, 0, wstest.OpContinuation, []byte("x")), 1002},
	{"close of 1 byte", wstest.ClientFrame(true, 0, wstest.OpClose, []byte{3}), 1002},
	{"close code 1005", wstest.ClientFrame(true, 0, wstest.OpClose, binary.BigEndian.AppendUint16(nil, 1005)), 1002},
	{"invalid UTF-8", wstest.ClientFrame(true, 0, wstest.OpText, []byte("{\"a\":\"\xff\"}")), 1007},
	{"close reason not UTF-8", wstest.ClientFrame(true, 0, wstest.OpClose, append(binary.BigEndian.AppendUint16(nil, 1000), "\xff"...)), 1007},
	{"over the size limit", wstest.ClientFrame(true, 0, wstest.OpText, bytes.Repeat([]byte("x"), transport.DefaultMaxMessageBytes+1)), 1009},
	{"a message", wstest.ClientFrame(true, 0, wstest.OpText, []byte(`{"type":"hello"}`)), 1008},
}

// Many widgets each send one bad frame while the site's status changes as
// fast as an agent can change it: each must get a well-formed close frame,
// and not one byte after it, whatever the fan-out was writing at the time
// (RFC 6455 section 5.5.1). This failed when the WebSocket library wrote
// its own close frame on a protocol error while the hub's fan-out went on
// writing to the same connection.
func TestNoFrameAfterCloseUnderFanOut(t *testing.T) {
	// Six waves of 300: on the code that had the bug, one to a few sockets
	// in a thousand saw a frame after the close.
	const waves, widgets = 6, 300
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{transport: transport.Config{
		StatusRate: 1e6, StatusBurst: 1e6, MaxWidgetsPerClient: -1,
	}})
	dev := connectAgent(t, r, mintToken(t, "churn", "alice"), "", "desktop")

	var mu sync.Mutex
	failures := make(map[string]int) // what went wrong, by kind of bad frame
	afterClose := 0                  // sockets that got bytes after the close frame
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		failures[badFrames[i%len(badFrames)].name]++
		if strings.Contains(err.Error(), "after the close frame") {
			afterClose++
		}
		t.Errorf("widget %d (%s): %v", i, badFrames[i%len(badFrames)].name, err)
	}
	changes := 0
	for range waves {
		changes += churnWave(t, r, dev, widgets, fail)
	}
	t.Logf("%d status changes while %d widgets sent bad frames; %d got bytes after the close frame; failures by bad frame: %v",
		changes, waves*widgets, afterClose, failures)
}

// churnWave opens widgets widget sockets, each of which sends one bad frame
// after a few changes and then reads until the server's close, while dev
// changes the site's status as fast as it can; it returns the number of
// changes made.
func churnWave(t *testing.T, r *replica, dev *agent, widgets int, fail func(i int, err error)) int {
	ready := make(chan struct{}, widgets)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range widgets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := churnWidget(t, r, i, ready, start); err != nil {
				fail(i, err)
			}
		}()
	}
	for range widgets {
		<-ready
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	close(start)
	// Changes go out in batches, so that one fan-out follows another
	// without a pause and the bad frames land during them.
	const batch = 8
	for changes := 0; ; changes += batch {
		select {
		case <-done:
			return changes
		default:
		}
		for i := range batch {
			dev.Send(map[string]string{"type": "set_status", "status": []string{"busy", "online"}[i%2], "ref": fmt.Sprint(changes + i)})
		}
		// A replica whose watch runs behind may skip to the latest of
		// them: the last one's status frame always comes.
		dev.WaitFor("status", "ref", fmt.Sprint(changes+batch-1))
	}
}

// churnWidget is widget i of a churn wave: it says it is ready once it has
// its first frame, and after start and a few changes sends its bad frame and
// reads strictly until the server's close and the end of the connection.
func churnWidget(t *testing.T, r *replica, i int, ready chan<- struct{}, start <-chan struct{}) error {
	bad := badFrames[i%len(badFrames)]
	c, _, err := wstest.DialRaw(t, widgetURL(r, "churn", ""), wstest.RawOptions{Wait: waitTimeout})
	if err != nil {
		ready <- struct{}{}
		return err
	}
	first, err := c.ReadFrame()
	ready <- struct{}{}
	if err != nil || !strings.Contains(string(first.Payload), `"widget_status"`) {
		return fmt.Errorf("got first frame %v (%v), want a widget_status", first, err)
	}
	<-start
	// The bad frame goes out right after one of the changes, while the
	// next fan-outs are on their way; which change varies from widget to
	// widget, to spread them over the churn.
	for range 1 + i%16 {
		if f, err := c.ReadFrame(); err != nil || f.Op != wstest.OpText {
			return fmt.Errorf("got %v (%v) while waiting for a change, want a widget_status", f, err)
		}
	}
	if err := c.Write(bad.frame); err != nil {
		return err
	}
	_, cl, err := c.ReadUntilClose(true)
	c.Conn.Close()
	if err != nil {
		return err
	}
	if cl.CloseCode() != bad.code {
		return fmt.Errorf("got %v, want close %d", cl, bad.code)
	}
	return nil
}
