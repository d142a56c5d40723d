package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport"
	"github.com/presencehub/presencehub/web"
)

// startHistoryHub starts a replica with the event stream and the history
// index on, as presencehub serve runs by default.
func startHistoryHub(t *testing.T, ns *natsserver.Server) *testHub {
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	th := &testHub{t: t, ns: ns}
	th.r = wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:    testSecret,
		Hub:       hub.Config{Grace: time.Minute, Logger: discard},
		Transport: transport.Config{Logger: discard},
		History:   &history.Config{Logger: discard},
		Setup: func(srv *transport.Server, auth *transport.Auth) {
			srv.Handle("/", web.Handler(web.Options{Dev: true}))
		},
		Wait: browserTimeout,
	})
	th.addr, th.url = th.r.Addr, th.r.URL
	return th
}

// seedEvent is an event of the synthetic history published before the hub
// starts: f is where it falls in [from, to).
type seedEvent struct {
	f    float64
	typ  string
	data map[string]any
}

// seedHistory publishes events on the event stream as hubs would have
// published them earlier, placed over [from, to).
func seedHistory(t *testing.T, ns *natsserver.Server, site string, from, to time.Time, seeds []seedEvent) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	if _, err := events.OpenStream(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	for i, e := range seeds {
		at := from.Add(time.Duration(e.f * float64(to.Sub(from)))).Truncate(time.Millisecond)
		data, _ := json.Marshal(e.data)
		ev := events.Event{ID: fmt.Sprintf("seed.%d", i), Type: e.typ, Site: site, Timestamp: protocol.Time(at), Data: data}
		body, _ := json.Marshal(ev)
		msg := nats.NewMsg(ev.Subject())
		msg.Data = body
		msg.Header.Set(nats.MsgIdHdr, ev.ID)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

func widgetEv(f float64, status, reason string) seedEvent {
	return seedEvent{f, events.TypeWidgetStatus, map[string]any{"group": "", "status": status, "reason": reason}}
}

func availabilityEv(f float64, agent, status, previous string) seedEvent {
	return seedEvent{f, events.TypeAgentAvailability, map[string]any{"agent": agent, "status": status, "previous": previous}}
}

func chosenEv(f float64, agent, status, previous string) seedEvent {
	return seedEvent{f, events.TypeAgentStatus, map[string]any{"agent": agent, "status": status, "previous": previous}}
}

// adminGet sends an admin API GET for site and decodes its JSON answer.
func adminGet(t *testing.T, th *testHub, site, path string, out any) int {
	t.Helper()
	auth, _ := transport.NewAuth(testSecret)
	admin, _ := auth.Mint(transport.TokenRequest{Site: site, Agent: "ops", Role: transport.RoleAdmin, TTL: time.Hour})
	req, _ := http.NewRequest("GET", th.url+"/v1/admin/sites/"+site+path, nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// lastEffective returns each agent's last effective status and every
// effective status it had, from a timeline answer.
func lastEffective(tl map[string]any) (last map[string]string, had map[string]string) {
	last, had = map[string]string{}, map[string]string{}
	agents, _ := tl["agents"].([]any)
	for _, a := range agents {
		m, _ := a.(map[string]any)
		id, _ := m["id"].(string)
		ivs, _ := m["intervals"].([]any)
		for _, iv := range ivs {
			e, _ := iv.(map[string]any)["effective"].(string)
			last[id] = e
			had[id] += e + " "
		}
	}
	return last, had
}

// csvHeader is the first line of the availability report as CSV.
const csvHeader = "date,kind,id,online_seconds,busy_seconds,offline_seconds,inside_hours_seconds,online_inside_hours_seconds,coverage,longest_gap_seconds"

// TestHistoryPageShowsTimelineAndCoverage: a day of history (seeded on the
// event stream, then agents changing status through a real hub) shows on
// /history as a row of bars per agent coloured by effective status, with
// the site's closed hours shaded, the coverage by day, and a CSV download.
func TestHistoryPageShowsTimelineAndCoverage(t *testing.T) {
	ctx := browser(t)
	// The page works in the browser's zone; the synthetic day is today
	// there.
	run(t, ctx, "open a blank page", chromedp.Navigate("about:blank"))
	zone := eval(t, ctx, "read the browser's zone", chromedp.Evaluate[string](`Intl.DateTimeFormat().resolvedOptions().timeZone`))
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatalf("the browser's zone %q: %v", zone, err)
	}
	now := time.Now().In(loc)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	if now.Sub(midnight) < 2*time.Minute || now.Add(5*time.Minute).Day() != now.Day() {
		t.Skip("too close to midnight in " + zone + ": the test needs today's history to stay today")
	}
	today := now.Format(time.DateOnly)

	ns := natstest.Start(t)
	// Closed until 30% of the day so far, and for a break at 48-52%; alice
	// and bob come and go. The history starts at midnight, so that today's
	// report can be asked for.
	seedHistory(t, ns, "acme", midnight, now.Add(-time.Minute), []seedEvent{
		widgetEv(0, "offline", "outside_hours"),
		widgetEv(0.30, "offline", "no_agents"),
		availabilityEv(0.35, "alice", "online", "offline"),
		widgetEv(0.35, "online", "agents_online"),
		availabilityEv(0.42, "bob", "online", "offline"),
		widgetEv(0.48, "offline", "outside_hours"),
		widgetEv(0.52, "online", "agents_online"),
		chosenEv(0.55, "alice", "busy", "online"),
		availabilityEv(0.55, "alice", "busy", "online"),
		availabilityEv(0.62, "bob", "offline", "online"),
		widgetEv(0.62, "busy", "all_busy"),
		chosenEv(0.70, "alice", "online", "busy"),
		availabilityEv(0.70, "alice", "online", "busy"),
		widgetEv(0.70, "online", "agents_online"),
		availabilityEv(0.85, "alice", "offline", "online"),
		widgetEv(0.85, "offline", "no_agents"),
	})
	th := startHistoryHub(t, ns)

	// Live: alice online, bob busy, carol in and out.
	connectAgent(t, th, "acme", "alice")
	bob := connectAgent(t, th, "acme", "bob")
	bob.setStatus("busy")
	carol := connectAgent(t, th, "acme", "carol")
	carol.Send(map[string]string{"type": "bye"})
	// The index follows the stream: wait until it has carol's bye.
	q := url.Values{"from": {midnight.UTC().Format(time.RFC3339)}, "to": {midnight.AddDate(0, 0, 1).UTC().Format(time.RFC3339)}}
	wstest.Eventually(t, browserTimeout, "the timeline has carol's bye", func() bool {
		var tl map[string]any
		if adminGet(t, th, "acme", "/timeline?"+q.Encode(), &tl) != http.StatusOK {
			return false
		}
		last, had := lastEffective(tl)
		return last["alice"] == "online" && last["bob"] == "busy" && last["carol"] == "offline" && strings.Contains(had["carol"], "online")
	})

	auth, _ := transport.NewAuth(testSecret)
	admin, _ := auth.Mint(transport.TokenRequest{Site: "acme", Agent: "ops", Role: transport.RoleAdmin, TTL: time.Hour})
	// The admin page links the history with its token.
	run(t, ctx, "open the admin page", chromedp.Navigate(th.url+"/admin?token="+url.QueryEscape(admin)))
	waitJS(t, ctx, "the history link", `document.getElementById('history-link').getAttribute('href') === '/history?token=`+url.QueryEscape(admin)+`'`)
	href := eval(t, ctx, "read the history link", chromedp.Evaluate[string](`document.getElementById('history-link').href`))
	run(t, ctx, "follow the history link", chromedp.Navigate(href))

	// A row per agent, its last bar its status now, the widget's row, and
	// the closed hours shaded on every row.
	lastBar := func(agent, status string) string {
		return `(function () { var b = document.querySelectorAll('#timeline .trow.agent[data-agent="` + agent + `"] .bar');
  return b.length > 0 && b[b.length - 1].dataset.status === '` + status + `'; })()`
	}
	waitJS(t, ctx, "the agents' rows with their statuses now",
		lastBar("alice", "online")+" && "+lastBar("bob", "busy")+" && "+lastBar("carol", "offline")+
			` && document.querySelector('#timeline .trow.agent[data-agent="carol"] .bar[data-status="online"]') !== null`)
	got := eval(t, ctx, "read the rows", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll('#timeline .trow.agent'), function (r) { return r.dataset.agent; }).join(',')`))
	if got != "alice,bob,carol" {
		t.Errorf("got agent rows %q, want alice,bob,carol", got)
	}
	// alice's day: offline, online, busy (seeded), online, offline, then
	// online again (live).
	seq := eval(t, ctx, "read alice's bars", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll('#timeline .trow.agent[data-agent="alice"] .bar'), function (b) { return b.dataset.status; }).join(',')`))
	if seq != "offline,online,busy,online,offline,online" {
		t.Errorf("got alice's bars %q, want offline,online,busy,online,offline,online", seq)
	}
	// Every bar says what it is: agent, status, from-to.
	bad := eval(t, ctx, "check the bars' text", chromedp.Evaluate[string](`(function () {
  var out = [];
  document.querySelectorAll('#timeline .trow.agent .bar').forEach(function (b) {
    var agent = b.closest('.trow').dataset.agent, l = b.getAttribute('aria-label') || '';
    if (l.indexOf(agent + ': ' + b.dataset.status) !== 0 || !/\d\d.\d\d.*[–-]/.test(l) || b.title !== l) out.push(l || '(none)');
  });
  return out.join(' | ');
})()`))
	if bad != "" {
		t.Errorf("bars without agent, status and from-to in aria-label and title: %s", bad)
	}
	shades := eval(t, ctx, "count alice's shades", chromedp.Evaluate[int](
		`document.querySelectorAll('#timeline .trow.agent[data-agent="alice"] .shade').length`))
	if shades != 2 {
		t.Errorf("got %d outside-hours shades on alice's row, want 2 (closed until 30%%, and the break)", shades)
	}
	waitJS(t, ctx, "the site widget's row", `document.querySelector('#timeline .trow.widget[data-widget=""] .bar[data-reason="outside_hours"]') !== null`)

	// Coverage: today has working hours, and a coverage between 0 and 1.
	waitJS(t, ctx, "today's coverage", `(function () {
  var c = document.querySelector('#coverage tr[data-date="`+today+`"] td.cov');
  var v = c && parseFloat(c.dataset.coverage);
  return v > 0 && v < 1 && /%/.test(document.getElementById('cov-7').textContent) && /%/.test(document.getElementById('cov-30').textContent);
})()`)
	screenshot(t, ctx, "history")

	// The CSV button downloads the report: its Blob starts with the
	// header line.
	eval(t, ctx, "watch for the CSV's Blob", chromedp.Evaluate[bool](`(function () {
  window.__csv = null;
  var create = URL.createObjectURL;
  URL.createObjectURL = function (b) { b.text().then(function (s) { window.__csv = s; }); return create.call(URL, b); };
  return true;
})()`))
	run(t, ctx, "click Download CSV", chromedp.Click(chromedp.CSS("#csv")))
	waitJS(t, ctx, "the CSV downloaded", `typeof window.__csv === 'string' && document.getElementById('csv-status').textContent.indexOf('Downloaded availability-acme-') === 0`)
	csv := eval(t, ctx, "read the CSV", chromedp.Evaluate[string](`window.__csv`))
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if strings.TrimSpace(lines[0]) != csvHeader {
		t.Fatalf("got CSV header %q, want %q", lines[0], csvHeader)
	}
	if !strings.Contains(csv, today+",agent,alice,") || !strings.Contains(csv, today+",site,,") {
		t.Errorf("got CSV without today's rows for alice and the site:\n%s", csv)
	}

	// The week holding today has the same agents.
	eval(t, ctx, "choose the week", chromedp.Evaluate[bool](
		`(function () { var p = document.getElementById('period'); p.value = 'week'; p.dispatchEvent(new Event('change')); return true; })()`))
	waitJS(t, ctx, "the week's rows", `document.getElementById('range').textContent.indexOf(' to ') > 0 && `+
		lastBar("alice", "online")+" && "+lastBar("carol", "offline")+
		` && document.querySelectorAll('#timeline .axis .tick').length === 7`)

	// The controls work from the keyboard: Enter on "previous period" goes
	// back a week, to before the history, and Enter on Today comes back.
	run(t, ctx, "press Enter on the previous-period button", chromedp.Focus(chromedp.CSS("#prev")), chromedp.KeyEvent("\r"))
	waitJS(t, ctx, "the week before, with no history", `document.getElementById('date').value === '`+now.AddDate(0, 0, -7).Format(time.DateOnly)+`'`+
		` && document.getElementById('tl-message').textContent.indexOf('No history for this period') === 0 && document.querySelectorAll('#timeline .trow.agent').length === 0`)
	run(t, ctx, "press Enter on Today", chromedp.Focus(chromedp.CSS("#today")), chromedp.KeyEvent("\r"))
	waitJS(t, ctx, "this week again", `document.getElementById('date').value === '`+today+`' && `+lastBar("alice", "online"))

	// The last hour, live: the same rows, ticks every 10 minutes, and no
	// date to choose.
	eval(t, ctx, "choose the last hour", chromedp.Evaluate[bool](
		`(function () { var p = document.getElementById('period'); p.value = 'hour'; p.dispatchEvent(new Event('change')); return true; })()`))
	waitJS(t, ctx, "the last hour's rows", `document.getElementById('range').textContent.indexOf('Last hour') === 0 && `+
		lastBar("alice", "online")+" && "+lastBar("bob", "busy")+" && "+lastBar("carol", "offline")+
		` && document.querySelectorAll('#timeline .axis .tick').length >= 5 && document.getElementById('date').disabled`)
}
