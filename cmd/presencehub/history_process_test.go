//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// TestHistorySurvivesEveryReplica: two hubs serve the history; both are
// killed; a new one answers the same timeline, read from the event stream.
// The hubs create the summaries stream. A hub with --events-stream none
// answers 404.
func TestHistorySurvivesEveryReplica(t *testing.T) {
	ns := natstest.Start(t)
	args := func(id string) []string {
		return append(natsHubArgs(t, ns.ClientURL(), time.Hour), "--replica-id", id)
	}
	a := startHub(t, "A", args("A")...)
	b := startHub(t, "B", args("B")...)
	connectAgent(t, a, "alice@A", mintProcToken(t, procSecret, "acme", "alice"))

	// alice's availability event gives the instant the history starts.
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	var online time.Time
	wstest.Eventually(t, procWait, "alice's availability event", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		stream, err := js.Stream(ctx, events.DefaultStream)
		if err != nil {
			return false
		}
		m, err := stream.GetLastMsgForSubject(ctx, "presence.events.acme.agent.availability")
		if err != nil {
			return false
		}
		var ev events.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			return false
		}
		online = time.Time(ev.Timestamp)
		return true
	})
	from := online.UTC().Format(protocol.TimeFormat)
	path := "/v1/admin/sites/acme/timeline?" + url.Values{"from": {from}, "to": {online.Add(time.Millisecond).UTC().Format(protocol.TimeFormat)}}.Encode()
	want := fmt.Sprintf("[map[id:alice intervals:[map[effective:online from:%s status:online to:%s]]]]", from, online.Add(time.Millisecond).UTC().Format(protocol.TimeFormat))
	timeline := func(p *hubProc) string {
		t.Helper()
		var got string
		wstest.Eventually(t, procWait, "hub "+p.Name+" has alice's history", func() bool {
			code, body := webhookAPI(t, p, "GET", path, "")
			got = fmt.Sprint(body["agents"])
			return code == http.StatusOK && got == want
		})
		return got
	}
	timeline(a)
	timeline(b)
	// The hubs created the history's summaries stream (--history-summaries),
	// kept two days longer than the events.
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	sums, err := js.Stream(ctx, history.DefaultSummaries)
	if err != nil {
		t.Fatalf("the summaries stream: %v", err)
	}
	if got, want := sums.CachedInfo().Config.MaxAge, events.DefaultRetention+48*time.Hour; got != want {
		t.Fatalf("summaries kept %v, want %v", got, want)
	}
	a.kill()
	b.kill()
	timeline(startHub(t, "C", args("C")...))

	off := startHub(t, "D", append(args("D"), "--events-stream", "none")...)
	code, body := webhookAPI(t, off, "GET", path, "")
	if code != http.StatusNotFound || !strings.Contains(fmt.Sprint(body), "event stream") {
		t.Fatalf("with --events-stream none: got %d %v, want 404 saying history needs the event stream", code, body)
	}
}

// TestOwnerSummarizesUnaskedSite: the replica that owns a site's partition
// writes the site's daily summaries of the days that are over, though
// nobody asked for the site's history (--history-summarize-rate): the
// stream holds events of the site on the three days before today, and an
// agent of the site connects (the site is in its owner's view).
func TestOwnerSummarizesUnaskedSite(t *testing.T) {
	ns := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procWait)
	defer cancel()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for d := 3; d >= 1; d-- {
		data, _ := json.Marshal(events.AgentAvailabilityData{Agent: "bob", Status: presence.Online, Previous: presence.Offline, Cause: events.CauseStatusSet})
		ev, _ := json.Marshal(events.Event{ID: fmt.Sprint("past-", d), Type: events.TypeAgentAvailability, Site: "quiet",
			Timestamp: protocol.Time(today.AddDate(0, 0, -d).Add(12 * time.Hour)), Data: data})
		if _, err := js.Publish(ctx, events.SubjectPrefix+"quiet."+events.TypeAgentAvailability, ev); err != nil {
			t.Fatal(err)
		}
	}
	a := startHub(t, "A", append(natsHubArgs(t, ns.ClientURL(), time.Hour), "--history-summarize-rate", "50")...)
	connectAgent(t, a, "alice@A", mintProcToken(t, procSecret, "quiet", "alice"))
	// Yesterday's summary; in the first minutes after midnight (before
	// history.SettleAfter), the day before's.
	done := []string{today.AddDate(0, 0, -1).Format(time.DateOnly), today.AddDate(0, 0, -2).Format(time.DateOnly)}
	var last string
	wstest.Eventually(t, procWait, "the summary of the site's last day that is over", func() bool {
		sums, err := js.Stream(ctx, history.DefaultSummaries)
		if err != nil {
			return false
		}
		m, err := sums.GetLastMsgForSubject(ctx, "presence.history.v1.quiet.>")
		if err != nil {
			return false
		}
		last = m.Subject
		return strings.Contains(last, ".quiet."+done[0]+".") || strings.Contains(last, ".quiet."+done[1]+".")
	})
	t.Logf("the owner wrote %s, no query asked", last)
}
