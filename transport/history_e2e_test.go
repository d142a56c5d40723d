package transport_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/history"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// eventLog collects the events of the stream, read from its start.
type eventLog struct {
	mu     sync.Mutex
	events []events.Event
	data   []map[string]any
}

func readEvents(t *testing.T, ns *natsserver.Server) *eventLog {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := events.OpenStream(ctx, js, events.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var ev events.Event
		var data map[string]any
		if err := json.Unmarshal(msg.Data(), &ev); err == nil && json.Unmarshal(ev.Data, &data) == nil {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.data = append(l.data, data)
			l.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Stop(); <-cc.Closed() })
	return l
}

// wait returns the timestamp of the event of type typ whose data has
// the fields of want, waiting for it.
func (l *eventLog) wait(t *testing.T, typ string, want ...string) time.Time {
	t.Helper()
	var at time.Time
	wstest.Eventually(t, waitTimeout, fmt.Sprintf("a %s event with %v", typ, want), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
	events:
		for i, ev := range l.events {
			if ev.Type != typ {
				continue
			}
			for j := 0; j < len(want); j += 2 {
				if fmt.Sprint(l.data[i][want[j]]) != want[j+1] {
					continue events
				}
			}
			at = time.Time(ev.Timestamp)
			return true
		}
		return false
	})
	return at
}

// seed publishes a site widget event at midnight UTC, as a hub would have
// published it: the widget offline, nobody there. The history the stream
// holds then starts at midnight, and today's report can be asked for.
func seed(t *testing.T, ns *natsserver.Server, site string, at time.Time) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	openCtx, cancelOpen := context.WithTimeout(context.Background(), waitTimeout)
	defer cancelOpen()
	if _, err := events.OpenStream(openCtx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(events.WidgetStatusData{Group: "", Status: presence.Offline, Reason: presence.ReasonNoAgents})
	ev := events.Event{ID: "seed.widget.status.", Type: events.TypeWidgetStatus, Site: site, Timestamp: protocol.Time(at), Data: data}
	body, _ := json.Marshal(ev)
	msg := nats.NewMsg(ev.Subject())
	msg.Data = body
	msg.Header.Set(nats.MsgIdHdr, ev.ID)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

func startHistoryReplica(t *testing.T, ns *natsserver.Server) (*replica, *wstest.Replica) {
	t.Helper()
	r := wstest.StartReplica(t, ns, wstest.ReplicaOptions{
		Secret:  testSecret,
		Bucket:  store.BucketConfig{LimitMarkerTTL: time.Second},
		Hub:     hub.Config{Grace: time.Second, MarkerTTL: time.Second},
		History: &history.Config{},
		Wait:    waitTimeout,
	})
	return &replica{hub: r.Hub, srv: r.Server, http: r.HTTP, wsURL: r.WSURL}, r
}

func ms(t time.Time) string { return t.UTC().Format(protocol.TimeFormat) }

// interval is an interval of an answer, as strings.
type interval [4]string

func intervals(t *testing.T, body map[string]any, list, key, id, field string) []interval {
	t.Helper()
	for _, x := range body[list].([]any) {
		m := x.(map[string]any)
		if m[key] != id {
			continue
		}
		var out []interval
		for _, y := range m["intervals"].([]any) {
			iv := y.(map[string]any)
			out = append(out, interval{iv["from"].(string), iv["to"].(string), iv["status"].(string), iv[field].(string)})
		}
		return out
	}
	t.Fatalf("no %s %q in %v", list, id, body[list])
	return nil
}

func ids(body map[string]any, list, key string) []string {
	var out []string
	for _, x := range body[list].([]any) {
		out = append(out, x.(map[string]any)[key].(string))
	}
	return out
}

// checkIntervals compares intervals; the wanted ones that are empty (two
// changes in one millisecond) are left out, as the answer leaves them out.
func checkIntervals(t *testing.T, what string, got, want []interval) {
	t.Helper()
	want = slices.DeleteFunc(slices.Clone(want), func(iv interval) bool { return iv[0] == iv[1] })
	for i := 1; i < len(want); i++ { // and neighbours left equal are one
		if want[i-1][2] == want[i][2] && want[i-1][3] == want[i][3] {
			want[i-1][1] = want[i][1]
			want = slices.Delete(want, i, i+1)
			i--
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

// TestHistoryThroughTheHub: agents connect, change status, drop and say
// bye through a real hub; the timeline has the exact boundaries of the
// events in the stream, the report their differences in seconds, and a
// new replica (every replica restarted) answers the same.
func TestHistoryThroughTheHub(t *testing.T) {
	ns := natstest.Start(t)
	log := readEvents(t, ns)
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	seed(t, ns, "acme", midnight)
	r, w := startHistoryReplica(t, ns)
	admin := mintAdminToken(t, "acme")

	// The night group has hours of its own, closed all week.
	if code, body := adminCall(t, r, "PUT", "/v1/admin/sites/acme/groups/night/hours", admin, `{"timezone":"UTC"}`); code != http.StatusOK {
		t.Fatalf("PUT hours: %d %v", code, body)
	}
	tH := log.wait(t, events.TypeWidgetStatus, "group", "night", "reason", "outside_hours")

	alice := connectAgent(t, r, mintToken(t, "acme", "alice", "sales"), "", "desktop")
	t1 := log.wait(t, events.TypeAgentAvailability, "agent", "alice", "status", "online")
	dave := connectAgent(t, r, mintToken(t, "acme", "dave"), "", "desktop") // in no group
	t2 := log.wait(t, events.TypeAgentAvailability, "agent", "dave", "status", "online")
	dave.Send(map[string]string{"type": "set_status", "status": "busy"})
	t3 := log.wait(t, events.TypeAgentAvailability, "agent", "dave", "status", "busy")
	alice.Send(map[string]string{"type": "set_status", "status": "busy"})
	t4 := log.wait(t, events.TypeAgentAvailability, "agent", "alice", "status", "busy")
	// dave, in no group, makes the sales widget online.
	dave.Send(map[string]string{"type": "set_status", "status": "online"})
	t5 := log.wait(t, events.TypeAgentAvailability, "agent", "dave", "status", "online", "previous", "busy")
	alice.Conn.CloseNow() // dropped without bye; the grace (1s) runs out
	t6 := log.wait(t, events.TypeAgentAvailability, "agent", "alice", "status", "offline")
	dave.Send(map[string]string{"type": "bye"})
	t7 := log.wait(t, events.TypeAgentAvailability, "agent", "dave", "status", "offline")
	log.wait(t, events.TypeWidgetStatus, "group", "sales", "status", "offline")
	log.wait(t, events.TypeWidgetStatus, "group", "", "status", "offline", "reason", "no_agents")
	// The report below is of the day the test began on (UTC); a run that
	// crossed midnight (a minute a day) has its changes in two days.
	if !t7.Before(midnight.Add(24 * time.Hour)) {
		t.Skip("the test ran across midnight UTC")
	}

	timeline := func(r *replica, query string) map[string]any {
		t.Helper()
		path := "/v1/admin/sites/acme/timeline?" + query
		code, body := adminCall(t, r, "GET", path, admin, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, code, body)
		}
		return body
	}
	// The index follows the stream: wait until it has dave's bye and the
	// widgets' events of it.
	wstest.Eventually(t, waitTimeout, "the index has dave's bye", func() bool {
		body := timeline(r, "agent=dave&from="+url.QueryEscape(ms(tH))+"&to="+url.QueryEscape(ms(t7.Add(time.Hour))))
		for _, list := range []string{"agents", "widgets"} {
			for _, x := range body[list].([]any) {
				m := x.(map[string]any)
				if ivs := m["intervals"].([]any); m["group"] != "night" && ivs[len(ivs)-1].(map[string]any)["from"] != ms(t7) {
					return false
				}
			}
		}
		return true
	})
	q := url.Values{"from": {ms(tH)}, "to": {ms(t7.Add(time.Hour))}}
	body := timeline(r, q.Encode())
	end := body["to"].(string) // now: the range is clipped to it
	if end < ms(t7) || end > ms(time.Now()) {
		t.Fatalf("to %s: want now", end)
	}
	checkIntervals(t, "alice", intervals(t, body, "agents", "id", "alice", "effective"), []interval{
		{ms(tH), ms(t1), "online", "offline"}, // her status before her first agent.status: its previous
		{ms(t1), ms(t4), "online", "online"},
		{ms(t4), ms(t6), "busy", "busy"},
		{ms(t6), end, "busy", "offline"},
	})
	checkIntervals(t, "dave", intervals(t, body, "agents", "id", "dave", "effective"), []interval{
		{ms(tH), ms(t2), "online", "offline"},
		{ms(t2), ms(t3), "online", "online"},
		{ms(t3), ms(t5), "busy", "busy"},
		{ms(t5), ms(t7), "online", "online"},
		{ms(t7), end, "online", "offline"},
	})
	siteAndSales := []interval{
		{ms(tH), ms(t1), "offline", "no_agents"},
		{ms(t1), ms(t4), "online", "agents_online"},
		{ms(t4), ms(t5), "busy", "all_busy"},
		{ms(t5), ms(t7), "online", "agents_online"},
		{ms(t7), end, "offline", "no_agents"},
	}
	checkIntervals(t, "site widget", intervals(t, body, "widgets", "group", "", "reason"), siteAndSales)
	// A widget's intervals cover the range: sales, which has no event
	// before alice came and no hours, had no agents.
	checkIntervals(t, "sales widget", intervals(t, body, "widgets", "group", "sales", "reason"), siteAndSales)
	checkIntervals(t, "night widget", intervals(t, body, "widgets", "group", "night", "reason"), []interval{
		{ms(tH), end, "offline", "outside_hours"},
	})

	// group=night: its widget, and the agents in it or in no group.
	q.Set("group", "night")
	body = timeline(r, q.Encode())
	if got := ids(body, "agents", "id"); fmt.Sprint(got) != "[dave]" {
		t.Fatalf("group=night agents: got %v, want [dave]", got)
	}
	if got := ids(body, "widgets", "group"); fmt.Sprint(got) != "[night]" {
		t.Fatalf("group=night widgets: got %v", got)
	}
	q.Del("group")
	q.Set("agent", "alice")
	body = timeline(r, q.Encode())
	if got := ids(body, "agents", "id"); fmt.Sprint(got) != "[alice]" {
		t.Fatalf("agent=alice: got %v", got)
	}

	// The report of today (and tomorrow, should the test have crossed
	// midnight), in UTC.
	today := midnight.Format(time.DateOnly)
	reportPath := "/v1/admin/sites/acme/reports/availability?from=" + today + "&to=" + time.Now().UTC().Format(time.DateOnly) + "&tz=UTC"
	code, rep := adminCall(t, r, "GET", reportPath, admin, "")
	if code != http.StatusOK {
		t.Fatalf("report: %d %v", code, rep)
	}
	days := rep["days"].([]any)
	sum := map[string]float64{}
	var total float64
	for _, d := range days {
		day := d.(map[string]any)
		from, _ := time.Parse(time.RFC3339, day["from"].(string))
		to, _ := time.Parse(time.RFC3339, day["to"].(string))
		total += to.Sub(from).Seconds()
		for _, a := range day["agents"].([]any) {
			m := a.(map[string]any)
			for _, f := range []string{"online_seconds", "busy_seconds", "offline_seconds"} {
				sum[m["id"].(string)+"."+f] += m[f].(float64)
			}
		}
		for _, w := range day["widgets"].([]any) {
			m := w.(map[string]any)
			for _, f := range []string{"inside_hours_seconds", "online_seconds"} {
				sum["widget:"+m["group"].(string)+"."+f] += m[f].(float64)
			}
			if len(days) == 1 && m["group"] == "" {
				// The longest stretch without online: midnight to t1, t4
				// to t5, or t7 to now.
				want := max(t1.Sub(midnight), t5.Sub(t4), to.Sub(t7)).Seconds()
				if got := m["longest_gap_seconds"].(float64); math.Abs(got-want) > 1e-6 {
					t.Errorf("site longest gap: got %v, want %v", got, want)
				}
			}
			if m["group"] == "night" && (m["coverage"] != nil || m["inside_hours_seconds"].(float64) != 0) {
				t.Errorf("night (closed): got %v", m)
			}
		}
	}
	sec := func(d time.Duration) float64 { return d.Seconds() }
	want := map[string]float64{
		"alice.online_seconds":              sec(t4.Sub(t1)),
		"alice.busy_seconds":                sec(t6.Sub(t4)),
		"alice.offline_seconds":             total - sec(t6.Sub(t1)),
		"dave.online_seconds":               sec(t3.Sub(t2) + t7.Sub(t5)),
		"dave.busy_seconds":                 sec(t5.Sub(t3)),
		"widget:.inside_hours_seconds":      total,
		"widget:.online_seconds":            sec(t4.Sub(t1) + t7.Sub(t5)),
		"widget:sales.inside_hours_seconds": total,
		"widget:sales.online_seconds":       sec(t4.Sub(t1) + t7.Sub(t5)),
		"widget:night.inside_hours_seconds": 0,
		"widget:night.online_seconds":       0,
		"dave.offline_seconds":              total - sec(t7.Sub(t2)),
	}
	for k, v := range want {
		if math.Abs(sum[k]-v) > 1e-6 {
			t.Errorf("%s: got %v, want %v", k, sum[k], v)
		}
	}

	// The same as CSV.
	req, _ := http.NewRequest("GET", r.http.URL+reportPath, nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	checkOpenAPI(t, resp)
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	// A header, then per day alice, dave, and the widgets "", night, sales.
	if len(rows) != 1+5*len(days) || rows[0][0] != "date" || rows[1][1] != "agent" || rows[1][2] != "alice" || rows[3][1] != "site" || rows[5][2] != "sales" {
		t.Fatalf("CSV: got %q", rows)
	}

	// Every replica restarts: a new one answers the same, from the stream.
	fixed := url.Values{"from": {ms(tH)}, "to": {ms(t7)}}.Encode()
	before := timeline(r, fixed)
	w.Stop()
	r2, _ := startHistoryReplica(t, ns)
	after := timeline(r2, fixed)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("after a restart:\ngot  %v\nwant %v", after, before)
	}
}

// TestHistoryBadQueries: 400 naming the parameter, 404 without the event
// stream.
func TestHistoryBadQueries(t *testing.T) {
	ns := natstest.Start(t)
	seed(t, ns, "acme", time.Now().Add(-time.Hour))
	r, _ := startHistoryReplica(t, ns)
	admin := mintAdminToken(t, "acme")
	now := time.Now().UTC()
	for _, tc := range []struct{ query, param string }{
		{"timeline?from=" + ms(now) + "&to=" + ms(now.Add(-time.Minute)), "from"},
		{"timeline?from=" + ms(now.Add(-time.Minute)) + "&to=yesterday", "to"},
		{"timeline?to=" + ms(now), "from"},
		{"timeline?from=2020-01-01T00:00:00Z&to=" + ms(now), "from"}, // over the retention
		{"timeline?from=" + ms(now.Add(-time.Minute)) + "&to=" + ms(now) + "&group=a*b", "group"},
		{"reports/availability?from=2026-12-01&to=2026-12-01&tz=Mars/Olympus", "tz"},
		{"reports/availability?from=2026-12-01&to=2026-12-01", "tz"},
		{"reports/availability?from=2026-12-02&to=2026-12-01&tz=UTC", "from"},
		{"reports/availability?from=2026-13-01&to=2026-12-01&tz=UTC", "from"},
		{"reports/availability?from=2020-01-01&to=2020-01-02&tz=UTC", "from"}, // over the retention
		{"reports/availability?from=2999-01-01&to=2999-01-02&tz=UTC", "from"}, // the future
		{"reports/availability?from=2026-12-01&to=12/31/2026&tz=UTC", "to"},
		{"timeline?from=" + ms(now.Add(time.Hour)) + "&to=" + ms(now.Add(2*time.Hour)), "from"}, // the future
		{"timeline?from=" + ms(now.Add(-time.Minute)) + "&to=" + ms(now) + "&agent=a.b", "agent"},
	} {
		req, _ := http.NewRequest("GET", r.http.URL+"/v1/admin/sites/acme/"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg := expectHTTPError(t, resp, tc.query, http.StatusBadRequest, protocol.CodeBadRequest)
		resp.Body.Close()
		if !strings.HasPrefix(msg, tc.param+": ") {
			t.Errorf("%s: got %q, want a message naming %s", tc.query, msg, tc.param)
		}
	}

	off := startReplica(t, ns, replicaOptions{}) // no history
	for _, path := range []string{"timeline?from=" + ms(now.Add(-time.Minute)) + "&to=" + ms(now), "reports/availability?from=2026-12-01&to=2026-12-01&tz=UTC"} {
		code, body := adminCall(t, off, "GET", "/v1/admin/sites/acme/"+path, admin, "")
		if code != http.StatusNotFound || !strings.Contains(fmt.Sprint(body), "event stream") {
			t.Fatalf("without history: got %d %v", code, body)
		}
	}
}
