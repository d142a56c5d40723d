package history

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// sitesStream is an event stream on a real nats-server.
type sitesStream struct {
	tb testing.TB
	js jetstream.JetStream
	n  int
}

func openSitesStream(tb testing.TB) *sitesStream {
	tb.Helper()
	js, err := jetstream.New(natstest.Connect(tb, natstest.Start(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := events.OpenStream(context.Background(), js, events.StreamConfig{}); err != nil {
		tb.Fatal(err)
	}
	return &sitesStream{tb: tb, js: js}
}

// widget publishes (asynchronously: flush waits) a widget.status of site.
func (s *sitesStream) widget(site string, at time.Time, status presence.Status, reason presence.Reason) {
	s.event(site, events.TypeWidgetStatus, at, events.WidgetStatusData{Status: status, Reason: reason})
}

// event publishes (asynchronously: flush waits) an event of site.
func (s *sitesStream) event(site, typ string, at time.Time, data any) {
	s.n++
	d, _ := json.Marshal(data)
	b, _ := json.Marshal(events.Event{ID: fmt.Sprint(s.n), Type: typ, Site: site, Timestamp: protocol.Time(at), Data: d})
	s.raw(events.SubjectPrefix+site+"."+typ, b)
}

// raw publishes (asynchronously: flush waits) data on subject.
func (s *sitesStream) raw(subject string, data []byte) {
	m := nats.NewMsg(subject)
	m.Data = data
	if s.n%2000 == 0 {
		s.flush()
	}
	if _, err := s.js.PublishMsgAsync(m); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *sitesStream) flush() {
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		s.tb.Fatal("publishes not acknowledged")
	}
}

// runIndex runs an index on s until the test ends.
func runIndex(tb testing.TB, s *sitesStream, cfg Config) *Index {
	tb.Helper()
	cfg.JetStream = s.js
	x, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	<-x.Loaded()
	return x
}

var sitesT0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// TestSiteReadOnItsOwn: a site's first query reads its own events and
// none of the other sites'; the site follows the stream afterwards.
func TestSiteReadOnItsOwn(t *testing.T) {
	s := openSitesStream(t)
	for i := range 100 {
		st := []presence.Status{presence.Online, presence.Offline}[i%2]
		s.widget("acme", sitesT0.Add(time.Duration(i)*time.Minute), st, presence.ReasonNoAgents)
	}
	for i := range 3000 { // other sites' events, before and after acme's
		s.widget(fmt.Sprintf("other%02d", i%30), sitesT0.Add(time.Duration(i)*time.Second), presence.Online, presence.ReasonAgentsOnline)
	}
	s.flush()
	now := sitesT0.Add(3 * time.Hour)
	x := runIndex(t, s, Config{Now: func() time.Time { return now }})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tl, err := x.Timeline(ctx, "acme", sitesT0, now, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Widgets) != 1 || len(tl.Widgets[0].Intervals) != 100 {
		t.Fatalf("got %+v, want the site's widget with 100 intervals", tl.Widgets)
	}
	if got := x.Sites(); fmt.Sprint(got) != "[acme]" {
		t.Fatalf("sites in memory: got %v, want [acme]", got)
	}
	e := x.sites["acme"]
	if n := e.read.Load(); n != 100 {
		t.Fatalf("the site's consumer delivered %d messages, want its 100", n)
	}
	// It follows: a new event of acme is in its next answer.
	s.widget("acme", sitesT0.Add(2*time.Hour), presence.Busy, presence.ReasonAllBusy)
	s.flush()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		tl, err = x.Timeline(ctx, "acme", sitesT0, now, Selection{})
		if err != nil {
			t.Fatal(err)
		}
		ivs := tl.Widgets[0].Intervals
		if last := ivs[len(ivs)-1]; last.Status == presence.Busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new event is not followed: last interval %+v", ivs[len(ivs)-1])
		}
		<-tick.C // polling the index, which a NATS goroutine feeds
	}
	if n := e.read.Load(); n != 101 {
		t.Fatalf("the site's consumer delivered %d messages, want 101", n)
	}
	// A query whose context ends before its site is read is not ready.
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := x.Timeline(done, "other01", sitesT0, now, Selection{}); err == nil {
		t.Fatal("a query with a done context answered")
	}
}

// TestSitesEvicted: beyond Config.Sites the least recently asked site
// leaves memory; asked again it is read again and answers the same.
func TestSitesEvicted(t *testing.T) {
	s := openSitesStream(t)
	for i := range 20 {
		for _, site := range []string{"a", "b", "c"} {
			st := []presence.Status{presence.Online, presence.Busy}[(i+len(site))%2]
			s.widget(site, sitesT0.Add(time.Duration(i)*time.Minute), st, presence.ReasonAgentsOnline)
		}
	}
	s.flush()
	now := sitesT0.Add(time.Hour)
	x := runIndex(t, s, Config{Now: func() time.Time { return now }, Sites: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ask := func(site string) Timeline {
		t.Helper()
		tl, err := x.Timeline(ctx, site, sitesT0, now, Selection{})
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	first := ask("a")
	ask("b")
	ask("a") // a is now the most recently asked
	ask("c")
	if got := x.Sites(); fmt.Sprint(got) != "[c a]" {
		t.Fatalf("sites in memory: got %v, want [c a] (b the least recently asked)", got)
	}
	ask("b")
	if got := x.Sites(); fmt.Sprint(got) != "[b c]" {
		t.Fatalf("sites in memory: got %v, want [b c]", got)
	}
	again := ask("a")
	if got := x.Sites(); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("sites in memory: got %v, want [a b]", got)
	}
	ja, _ := json.Marshal(first)
	jb, _ := json.Marshal(again)
	if string(ja) != string(jb) || len(first.Widgets[0].Intervals) != 20 {
		t.Fatalf("a read again: got %s\nwant %s", jb, ja)
	}
}
