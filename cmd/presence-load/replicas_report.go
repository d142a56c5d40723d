package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// The figures of `presence-load replicas`, and issue 21's targets checked
// against them.

const mib = 1 << 20

// replicasSummary is the whole report; its JSON is what --json writes.
type replicasSummary struct {
	Date          string     `json:"date"`
	Presencehub   string     `json:"presencehub"`
	NATS          string     `json:"nats"`
	GraceSeconds  float64    `json:"grace_seconds"`
	LivenessTTL   float64    `json:"liveness_ttl_seconds"`
	WindowSeconds float64    `json:"window_seconds"`
	SettleSeconds float64    `json:"settle_seconds"`
	ServeArgs     []string   `json:"serve_args,omitempty"`
	NoClients     *noClients `json:"no_clients"`
	Routed        []*routed  `json:"routed,omitempty"`
	Targets       []target21 `json:"targets"`
	// Design are the properties of issue 22's design the figures show.
	Design []target21 `json:"design"`
}

// noClients is phase A: the partition's owner, its standby, the replica
// that is neither, and the role of the one the devices are on.
type noClients struct {
	Owner     string          `json:"owner"`
	Standby   string          `json:"standby"`
	Idle      string          `json:"idle"`
	DevicesOn string          `json:"devices_on"`
	Steps     []noClientsStep `json:"steps"`
	// Growth per remote device, first step to last, of each replica with
	// no clients, by role.
	Growth map[string]growth `json:"growth_per_remote_device"`
}

// growth is a replica's growth per remote device.
type growth struct {
	RSSBytes  float64 `json:"rss_bytes"`
	HeapBytes float64 `json:"heap_bytes"`
}

// met reports whether g is under issue 21's 0.5 KiB per remote device.
func (g growth) met() bool { return g.RSSBytes < 512 && g.HeapBytes < 512 }

func (g growth) String() string {
	return fmt.Sprintf("RSS %+.3f KiB, Go heap %+.3f KiB per device", g.RSSBytes/1024, g.HeapBytes/1024)
}

type noClientsStep struct {
	Devices        int           `json:"devices"`
	Sites          int           `json:"sites"`
	Owner          replicaWindow `json:"owner"`
	Standby        replicaWindow `json:"standby"`
	Idle           replicaWindow `json:"idle"`
	Writes         streamWrites  `json:"nats_writes_per_sec"`
	NATSCPUPercent *float64      `json:"nats_cpu_percent_of_a_core,omitempty"`
	NATSRSSBytes   int64         `json:"nats_rss_bytes,omitempty"`
}

// role returns the replica of role.
func (st *noClientsStep) role(role string) replicaWindow {
	switch role {
	case roleOwner:
		return st.Owner
	case roleStandby:
		return st.Standby
	}
	return st.Idle
}

// phaseARolesOrder is the order phase A reports its roles in.
var phaseARolesOrder = []string{roleIdle, roleStandby, roleOwner}

// growth sets the growth per device between the first step and the last
// of each replica with no clients.
func (n *noClients) growth() {
	first, last := n.Steps[0], n.Steps[len(n.Steps)-1]
	n.Growth = make(map[string]growth)
	dev := last.Devices - first.Devices
	for _, role := range phaseARolesOrder {
		if role == n.DevicesOn || dev <= 0 {
			continue
		}
		f, l := first.role(role), last.role(role)
		n.Growth[role] = growth{RSSBytes: float64(l.RSSBytes-f.RSSBytes) / float64(dev), HeapBytes: (l.HeapInuseBytes - f.HeapInuseBytes) / float64(dev)}
	}
}

// name returns the replica of role.
func (n *noClients) name(role string) string {
	switch role {
	case roleOwner:
		return n.Owner
	case roleStandby:
		return n.Standby
	}
	return n.Idle
}

// routed is phase B with one replica count.
type routed struct {
	Replicas       int             `json:"replicas"`
	Partitions     int             `json:"partitions"`
	Devices        int             `json:"devices"`
	Sites          int             `json:"sites"`
	PerReplica     []routedReplica `json:"per_replica"`
	Writes         streamWrites    `json:"nats_writes_per_sec"`
	NATSCPUPercent *float64        `json:"nats_cpu_percent_of_a_core,omitempty"`
	NATSRSSBytes   int64           `json:"nats_rss_bytes,omitempty"`
}

type routedReplica struct {
	replicaWindow
	RoutedSites int `json:"routed_sites"`
	// WithoutClient is the sites held that no device was routed to.
	WithoutClient int `json:"sites_held_without_client"`
	// PartitionSites is the sites of the partitions it owns or stands by
	// for, which it holds whole; ExpectedWithoutClient those of them no
	// device was routed to: what WithoutClient should be.
	PartitionSites        int `json:"sites_of_owned_and_standby_partitions"`
	ExpectedWithoutClient int `json:"expected_sites_without_client"`
}

// target21 is one of issue 21's targets, or a property of issue 22's
// design, and whether the figures meet it.
type target21 struct {
	Target string `json:"target"`
	Met    bool   `json:"met"`
	Figure string `json:"figure"`
	// Why says why a target is missed by design.
	Why string `json:"why,omitempty"`
	// NotMeasured is set when the run did not measure it.
	NotMeasured bool `json:"not_measured,omitempty"`
}

func newReplicasSummary(cfg *replicasConfig) *replicasSummary {
	s := &replicasSummary{Date: time.Now().UTC().Format(time.RFC3339), Presencehub: cfg.presencehub,
		NATS: "nats-server in the generator's process", GraceSeconds: cfg.grace.Seconds(), LivenessTTL: cfg.livenessTTL.Seconds(),
		WindowSeconds: cfg.window.Seconds(), SettleSeconds: cfg.settle.Seconds(), ServeArgs: cfg.serveArgs}
	if cfg.natsServer != "" {
		s.NATS = "nats-server process " + cfg.natsServer
	}
	return s
}

// writeText prints the report.
func (s *replicasSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "presence-load replicas, %s: %s; %s\ngrace %vs, liveness TTL %vs, each figure over a %vs window starting %vs after the last device was welcomed\n",
		s.Date, s.Presencehub, s.NATS, s.GraceSeconds, s.LivenessTTL, s.WindowSeconds, s.SettleSeconds)
	if len(s.ServeArgs) > 0 {
		fmt.Fprintf(w, "replicas run with %s\n", strings.Join(s.ServeArgs, " "))
	}
	a := s.NoClients
	fmt.Fprintf(w, "\nA. Replicas with no clients: %d replicas, 1 partition: %s owns it, %s stands by for it, %s is neither; the devices on %s (the %s)\n",
		phaseAReplicas, a.Owner, a.Standby, a.Idle, a.name(a.DevicesOn), a.DevicesOn)
	for _, role := range phaseARolesOrder {
		what := map[string]string{roleIdle: "neither owner nor standby", roleStandby: "the partition's standby", roleOwner: "the partition's owner"}[role]
		clients := "no clients"
		if role == a.DevicesOn {
			clients = "the devices"
		}
		fmt.Fprintf(w, "%s, %s (%s):\n", a.name(role), what, clients)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "devices\tsites\tsockets\tCPU %\tRSS MiB\theap MiB\tsites held\tfollowed\tKV ops/s\t")
		for _, st := range a.Steps {
			r := st.role(role)
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.1f\t%.1f\t%d\t%d\t%.2f\t\n", st.Devices, st.Sites, r.Sockets,
				r.CPUPercent, float64(r.RSSBytes)/mib, r.HeapInuseBytes/mib, r.Sites, r.Followed, r.KVOpsPerSec)
		}
		tw.Flush()
		if g, ok := a.Growth[role]; ok {
			fmt.Fprintf(w, "growth per remote device: %s\n", g)
		}
	}
	fmt.Fprintln(w, "NATS:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "devices\twrites/s\tof them members\tCPU %\t")
	for _, st := range a.Steps {
		fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%s\t\n", st.Devices, st.Writes.Total, st.Writes.Members, percent(st.NATSCPUPercent))
	}
	tw.Flush()
	for _, r := range s.Routed {
		fmt.Fprintf(w, "\nB. %d replicas, %d partitions, %d devices on %d sites, routed by FNV-1a-32(site) mod %d\n", r.Replicas, r.Partitions, r.Devices, r.Sites, r.Replicas)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "replica\tsockets\trouted sites\towned\tstandby\ttheir sites\tCPU %\tRSS MiB\theap MiB\tsites held\tfollowed\twithout client\texpected\t")
		for _, p := range r.PerReplica {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t\n", p.Name, p.Sockets, p.RoutedSites, p.Owned, p.Standby,
				p.PartitionSites, p.CPUPercent, float64(p.RSSBytes)/mib, p.HeapInuseBytes/mib, p.Sites, p.Followed, p.WithoutClient, p.ExpectedWithoutClient)
		}
		tw.Flush()
		fmt.Fprintf(w, "owned, standby: the partitions it owns and stands by for; their sites: those partitions' sites, held whole;\n"+
			"expected: the sites of those partitions no device was routed to\n")
		fmt.Fprintf(w, "NATS writes/s: %.2f (presence %.2f, members %.2f); NATS CPU %%: %s\n", r.Writes.Total, r.Writes.Presence, r.Writes.Members, percent(r.NATSCPUPercent))
	}
	fmt.Fprintln(w, "\nIssue 21's targets:")
	writeMarks(w, s.Targets)
	fmt.Fprintln(w, "\nIssue 22's design:")
	writeMarks(w, s.Design)
}

// writeMarks prints targets, each met or MISSED.
func writeMarks(w io.Writer, ts []target21) {
	for _, t := range ts {
		mark := "met   "
		switch {
		case t.NotMeasured:
			mark = "  --  "
		case !t.Met:
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, t.Target, t.Figure)
		if t.Why != "" {
			fmt.Fprintf(w, "           %s\n", t.Why)
		}
	}
}

// percent formats a CPU share, "-" when not measured (NATS in this process).
func percent(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

// writeJSONFile writes the report as JSON to path.
func (s *replicasSummary) writeJSONFile(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
