package main

import (
	"context"
	"net"
	"testing"

	"github.com/presencehub/presencehub/transport"
)

// TestFloor runs the generator's fanout and groups scenarios against the
// floor: every frame arrives, so its CPU and latency figures measure the
// same deliveries as a hub's.
func TestFloor(t *testing.T) {
	auth, err := transport.NewAuth([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveFloor(ctx, ln, auth) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("floor: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String()
	s := runLoad(t, "--url", url, "--sites", "2", "--widgets", "40", "--devices", "2", "--changes", "4", "--interval", "20ms")
	// 2 agents x 4 changes; every change reaches both of the agent's
	// devices and the 20 widgets of its site.
	checkChanges(t, s, 2*4*2+40*4)
	// A second run finds the statuses the first left, as against a hub.
	s = runLoad(t, "--url", url, "--sites", "2", "--widgets", "10", "--changes", "3", "--interval", "20ms")
	checkChanges(t, s, 2*3*2+10*3)
	// Fanout with groups: the agent in no group counts for every widget.
	s = runLoad(t, "--url", url, "--sites", "1", "--groups", "2", "--widgets", "30", "--changes", "2", "--interval", "20ms", "--site-prefix", "fg")
	checkChanges(t, s, 2*2+30*2)
	// Groups: each change reaches its agent's 3 devices and its group's 10
	// widgets, not the other groups'.
	s = runLoad(t, "--url", url, "--scenario", "groups", "--groups", "3", "--widgets", "30", "--devices", "3", "--changes", "3", "--interval", "30ms", "--site-prefix", "g")
	checkChanges(t, s, 3*3*3+30*3)
}
