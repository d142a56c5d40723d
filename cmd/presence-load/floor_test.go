package main

import (
	"context"
	"net"
	"testing"

	"github.com/presencehub/presencehub/transport"
)

// TestFloor runs the generator's fanout scenario against the floor: every
// frame arrives, so its CPU figures measure the same deliveries as a hub's.
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
}
