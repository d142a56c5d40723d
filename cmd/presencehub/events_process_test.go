//go:build unix

package main

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
)

// TestKilledHubAgentOfflineInEventStreamOnce kills with SIGKILL the hub
// process holding an agent's only device: the surviving hub publishes the
// agent going offline with cause grace_expired, and the stream holds it
// once.
func TestKilledHubAgentOfflineInEventStreamOnce(t *testing.T) {
	const grace = 2 * time.Second
	ns := natstest.Start(t)
	a := startHub(t, "A", natsHubArgs(t, ns.ClientURL(), grace)...)
	b := startHub(t, "B", natsHubArgs(t, ns.ClientURL(), grace)...)

	nc := natstest.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	stream, err := js.Stream(ctx, events.DefaultStream)
	if err != nil {
		t.Fatalf("serve did not create the event stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxAge != events.DefaultRetention || c.Duplicates != events.DuplicateWindow || c.Replicas != 1 {
		t.Fatalf("got stream max age %v, duplicate window %v, replicas %d; want %v, %v, 1", c.MaxAge, c.Duplicates, c.Replicas, events.DefaultRetention, events.DuplicateWindow)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"presence.events.acme.>"}})
	if err != nil {
		t.Fatal(err)
	}
	// next returns the next event's type and data.
	next := func() (string, map[string]any) {
		t.Helper()
		msg, err := cons.Next(jetstream.FetchMaxWait(procWait))
		if err != nil {
			t.Fatalf("no event arrived: %v", err)
		}
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Type, ev.Data
	}
	// until reads events up to one of typ about agent with status,
	// counting alice's by type and cause into aliceSeen.
	aliceSeen := make(map[string]int)
	until := func(typ, agent, status string) {
		t.Helper()
		for {
			gotType, d := next()
			if d["agent"] == "alice" {
				aliceSeen[gotType+" "+str(d["cause"])]++
			}
			if gotType == typ && d["agent"] == agent && d["status"] == status {
				return
			}
		}
	}

	alice := connectAgent(t, a, "alice@A", mintProcToken(t, procSecret, "acme", "alice"))
	until(events.TypeAgentAvailability, "alice", "online")
	waitLeaseRefreshes(t, nc, []string{"d.acme.alice." + alice.device})

	killedAt := a.kill()
	clear(aliceSeen)
	until(events.TypeAgentAvailability, "alice", "offline")
	t.Logf("alice offline in the stream %v after hub A was killed (grace %v)", time.Since(killedAt).Round(time.Millisecond), grace)
	// B publishes in its watch's order on one connection, so a second copy
	// of alice's events from B would be stored before bob's; A is dead.
	connectAgent(t, b, "bob@B", mintProcToken(t, procSecret, "acme", "bob"))
	until(events.TypeAgentAvailability, "bob", "online")
	// A's liveness runs out: B starts the grace of alice's device
	// (device.dropped), which then runs out; each event once.
	want := map[string]int{"device.dropped ": 1, "device.ended grace_expired": 1, "agent.availability grace_expired": 1}
	if !maps.Equal(aliceSeen, want) {
		t.Fatalf("got alice's events %v after the kill, want %v", aliceSeen, want)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
