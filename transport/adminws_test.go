package transport_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/wstest"
	"github.com/presencehub/presencehub/transport"
)

type statsFrame struct {
	Type      string `json:"type"`
	Site      string `json:"site"`
	SiteStats struct {
		Agents struct {
			Online, Busy, Offline, Total int
			PendingGrace                 int `json:"pending_grace"`
		} `json:"agents"`
		Widgets struct {
			Total   int            `json:"total"`
			ByGroup map[string]int `json:"by_group"`
		} `json:"widgets"`
	} `json:"site_stats"`
	Replicas []struct {
		Hub         string `json:"hub"`
		NATS        string `json:"nats"`
		Connections struct{ Agent, Widget, Admin int }
	} `json:"replicas"`
	Totals struct {
		Connections struct{ Agent, Widget, Admin int }
	} `json:"totals"`
}

func decodeStats(t *testing.T, f wstest.Frame) statsFrame {
	t.Helper()
	var s statsFrame
	if err := json.Unmarshal(f.Raw, &s); err != nil || s.Type != "stats" {
		t.Fatalf("got %s, want a stats frame", f)
	}
	return s
}

// watchStats reads stats frames until one satisfies cond.
func watchStats(t *testing.T, c *wstest.Client, what string, cond func(statsFrame) bool) statsFrame {
	t.Helper()
	for i := 0; i < 30; i++ {
		if s := decodeStats(t, c.Next()); cond(s) {
			return s
		}
	}
	t.Fatalf("no stats frame showed %s", what)
	panic("unreachable")
}

func TestAdminStatsAggregateReplicas(t *testing.T) {
	ns := natstest.Start(t)
	r1 := startReplica(t, ns, replicaOptions{})
	r2 := startReplica(t, ns, replicaOptions{})
	watchWidget(t, r1, "acme", "", "offline", "no_agents")
	watchWidget(t, r2, "acme", "sales", "offline", "no_agents")
	watchWidget(t, r2, "other", "", "offline", "no_agents")
	connectAgent(t, r1, mintToken(t, "acme", "alice"), "", "desktop")
	bob := connectAgent(t, r2, mintToken(t, "acme", "bob", "sales"), "", "mobile")
	bob.Send(map[string]string{"type": "set_status", "status": "busy"})
	bob.Expect("status")

	admin := dial(t, r1.wsURL+"/v1/admin", nil)
	admin.Send(map[string]string{"type": "hello", "token": mintAdminToken(t, "acme")})
	s := watchStats(t, admin, "both replicas with their sockets", func(s statsFrame) bool {
		return len(s.Replicas) == 2 && s.Totals.Connections.Agent == 2 && s.Totals.Connections.Widget == 3 && s.Totals.Connections.Admin == 1
	})
	if s.Site != "acme" || s.SiteStats.Agents.Online != 1 || s.SiteStats.Agents.Busy != 1 || s.SiteStats.Agents.Total != 2 {
		t.Fatalf("got site %s agents %+v, want acme with 1 online and 1 busy of 2", s.Site, s.SiteStats.Agents)
	}
	if s.SiteStats.Widgets.Total != 2 || s.SiteStats.Widgets.ByGroup[""] != 1 || s.SiteStats.Widgets.ByGroup["sales"] != 1 {
		t.Fatalf("got widgets %+v, want acme's 2 (site 1, sales 1) across replicas", s.SiteStats.Widgets)
	}
	for _, r := range s.Replicas {
		if r.NATS != "connected" {
			t.Fatalf("got replica %s NATS %q, want connected", r.Hub, r.NATS)
		}
	}
	bob.Conn.CloseNow()
	watchStats(t, admin, "bob's grace pending", func(s statsFrame) bool {
		return s.SiteStats.Agents.PendingGrace == 1 && s.Totals.Connections.Agent == 1
	})
}

func TestAdminStatsRefusesNonAdmins(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	c := dial(t, r.wsURL+"/v1/admin", nil)
	c.Send(map[string]string{"type": "hello", "token": mintToken(t, "acme", "alice")})
	c.Expect("error", "code", "forbidden")
	if got := c.ExpectClose(); got != websocket.StatusCode(transport.CloseBadHello) {
		t.Fatalf("got close %d, want %d", got, transport.CloseBadHello)
	}
	c = dial(t, r.wsURL+"/v1/admin", nil)
	c.Send(map[string]string{"type": "hello", "token": "garbage"})
	c.Expect("error", "code", "unauthorized")
	c.ExpectClose()
}

func TestDevTokenOnlyInDevMode(t *testing.T) {
	ns := natstest.Start(t)
	r := startReplica(t, ns, replicaOptions{})
	auth, err := transport.NewAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Handle("GET /dev/token", transport.DevTokenHandler(auth))
	resp, err := http.Get(r.http.URL + "/dev/token?agent=carol&groups=sales")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Token, Site string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.Site != transport.DevSite {
		t.Fatalf("got %d %+v, want 200 for site %s", resp.StatusCode, body, transport.DevSite)
	}
	claims, err := auth.Verify(body.Token)
	if err != nil || claims.Subject != "carol" || len(claims.Groups) != 1 || claims.Groups[0] != "sales" {
		t.Fatalf("got claims %+v (%v), want carol in sales", claims, err)
	}
	a := connectAgent(t, r, body.Token, "", "web")
	if got := a.welcome.Str("status"); got != "online" {
		t.Fatalf("got %q, want online", got)
	}
	resp, err = http.Get(r.http.URL + "/dev/token?agent=a.b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("got %d for a bad agent id, want 400", resp.StatusCode)
	}

	off := startReplica(t, ns, replicaOptions{})
	off.srv.Handle("/dev/token", transport.DevTokenRefused())
	resp, err = http.Get(off.http.URL + "/dev/token?agent=carol")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("got %d outside dev mode, want 404", resp.StatusCode)
	}
}
