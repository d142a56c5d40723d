package transport

import (
	"reflect"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/wsconn"
)

// The socket limits of Config reach the sockets: agent and admin sockets
// check Origin against AllowedOrigins, widget sockets leave it to the site.
func TestSocketOptionsFollowConfig(t *testing.T) {
	cfg := Config{
		AllowedOrigins: []string{"app.example"}, MaxMessageBytes: 1000, SendQueue: 7, WriteTimeout: 3 * time.Second,
		PingInterval: 4 * time.Second, PongTimeout: 5 * time.Second, CloseTimeout: 6 * time.Second,
		Poller: wsconn.PollerGoroutine,
	}
	s := NewServer(nil, nil, cfg)
	// Both answer a request that is not a handshake in the API's JSON
	// errors (a func compares equal to nil alone).
	if s.helloOpts.Refuse == nil || s.widgetOpts.Refuse == nil {
		t.Fatal("got socket options without Refuse, want the JSON errors' refuseHandshake")
	}
	s.helloOpts.Refuse, s.widgetOpts.Refuse = nil, nil
	want := wsconn.Options{
		OriginPatterns: []string{"app.example"}, ReadLimit: 1000, SendQueue: 7, WriteTimeout: 3 * time.Second,
		PingInterval: 4 * time.Second, PongTimeout: 5 * time.Second, CloseTimeout: 6 * time.Second,
		Poller: wsconn.PollerGoroutine,
	}
	if got := *s.helloOpts; !reflect.DeepEqual(got, want) {
		t.Errorf("got agent socket options %+v, want %+v", got, want)
	}
	want.OriginPatterns, want.SkipOriginCheck = nil, true
	if got := *s.widgetOpts; !reflect.DeepEqual(got, want) {
		t.Errorf("got widget socket options %+v, want %+v", got, want)
	}

	// Defaults, and a negative PingInterval disables pings.
	s = NewServer(nil, nil, Config{PingInterval: -1})
	if o := s.helloOpts; o.PingInterval != 0 || o.CloseTimeout != DefaultCloseTimeout || o.PongTimeout != DefaultPongTimeout {
		t.Errorf("got options %+v, want no pings and the default timeouts", o)
	}
}
