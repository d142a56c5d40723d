package webhook

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
)

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"93.184.215.14", true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"8.8.8.8", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // AWS, GCP, Azure metadata
		{"fd00:ec2::254", false},   // AWS metadata over IPv6
		{"100.100.100.200", false}, // Alibaba metadata
		{"fe80::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::a00:1", false},  // NAT64 of 10.0.0.1
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"198.18.0.1", false},
	} {
		why := publicAddr(netip.MustParseAddr(tc.addr))
		if (why == "") != tc.public {
			t.Errorf("publicAddr(%s) = %q, want public %v", tc.addr, why, tc.public)
		}
	}
}

func TestCheckHostResolves(t *testing.T) {
	ctx := context.Background()
	// localhost resolves through /etc/hosts, with no network.
	if err := checkHost(ctx, net.DefaultResolver, "localhost"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("localhost: got %v, want refused as loopback", err)
	}
	if err := checkHost(ctx, net.DefaultResolver, "8.8.8.8"); err != nil {
		t.Fatalf("8.8.8.8: %v", err)
	}
}

// TestDeliveryRefusesPrivateAddress stores an endpoint that points at
// loopback as a registration made before its name changed address would
// be (DNS rebinding): delivery refuses to connect, and the receiver never
// sees a connection.
func TestDeliveryRefusesPrivateAddress(t *testing.T) {
	ns := natstest.Start(t)
	nc := natstest.Connect(t, ns)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	m, err := Open(ctx, Config{JetStream: js, RetrySchedule: []time.Duration{time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	rc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rc.Config.ConnState = func(net.Conn, http.ConnState) { conns.Add(1) }
	rc.StartTLS()
	defer rc.Close()
	ep := Endpoint{ID: "0b9e2f4c-2d7f-4d65-9d5c-3c1f7e1a2b3c", Site: "acme", URL: rc.URL, Events: []string{"*"}, Secret: newSecret(), CreatedAt: time.Now()}
	if _, err := m.events.CreateConsumer(ctx, m.consumerConfig(ep)); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ep)
	if err := m.kv.Create(ctx, endpointKey(ep.Site, ep.ID), b); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(runCtx) }()
	defer func() { stop(); <-done }()

	data, _ := json.Marshal(map[string]string{"agent": "alice"})
	body, _ := json.Marshal(events.Event{ID: "1.agent.status.alice", Type: "agent.status", Site: "acme", Data: data})
	if _, err := js.Publish(ctx, "presence.events.acme.agent.status", body); err != nil {
		t.Fatal(err)
	}
	// Wait for the attempt to be recorded in the deliveries stream.
	log, err := js.OrderedConsumer(ctx, DefaultDeliveryStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{deliveriesSubject("acme", ep.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := log.Next(jetstream.FetchContext(ctx))
	if err != nil {
		t.Fatalf("no attempt recorded in time: %v", err)
	}
	var d Delivery
	if err := json.Unmarshal(msg.Data(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeRetrying || !strings.Contains(d.Error, "refused to connect to 127.0.0.1") || d.StatusCode != 0 {
		t.Fatalf("got %+v, want the attempt refused before connecting", d)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the receiver saw %d connection state changes, want none", n)
	}
}

func TestNormalizeEvents(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
		err  string
	}{
		{nil, "*", ""},
		{[]string{"*", "agent.status"}, "*", ""},
		{[]string{"agent.status", "agent.status"}, "agent.status", ""},
		{[]string{"device.ended", "device.*", "widget.status"}, "device.*,widget.status", ""},
		{[]string{"agent.status", "agent.typo"}, "", "events[1]"},
		{[]string{"nope.*"}, "", "events[0]"},
		{[]string{""}, "", "events[0]"},
	} {
		got, err := normalizeEvents(tc.in)
		if tc.err != "" {
			if fe, ok := err.(*FieldError); !ok || fe.Field != tc.err {
				t.Errorf("normalizeEvents(%q) = %v, %v; want an error about %s", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("normalizeEvents(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
