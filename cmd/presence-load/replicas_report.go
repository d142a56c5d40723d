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
}

// noClients is phase A.
type noClients struct {
	Idle    string `json:"idle_replica"`
	Clients string `json:"clients_replica"`
	// IdleOwns is set when the idle replica owns the duties.
	IdleOwns bool            `json:"idle_owns_duties"`
	Steps    []noClientsStep `json:"steps"`
	// Growth per remote device of the idle replica, first step to last.
	RSSPerDeviceBytes  float64 `json:"rss_growth_per_device_bytes"`
	HeapPerDeviceBytes float64 `json:"heap_growth_per_device_bytes"`
}

type noClientsStep struct {
	Devices        int           `json:"devices"`
	Sites          int           `json:"sites"`
	Idle           replicaWindow `json:"idle"`
	Clients        replicaWindow `json:"clients"`
	Writes         streamWrites  `json:"nats_writes_per_sec"`
	NATSCPUPercent *float64      `json:"nats_cpu_percent_of_a_core,omitempty"`
	NATSRSSBytes   int64         `json:"nats_rss_bytes,omitempty"`
}

// growth sets the growth per device between the first step and the last.
func (n *noClients) growth() {
	first, last := n.Steps[0], n.Steps[len(n.Steps)-1]
	if dev := last.Devices - first.Devices; dev > 0 {
		n.RSSPerDeviceBytes = float64(last.Idle.RSSBytes-first.Idle.RSSBytes) / float64(dev)
		n.HeapPerDeviceBytes = (last.Idle.HeapInuseBytes - first.Idle.HeapInuseBytes) / float64(dev)
	}
}

// routed is phase B with one replica count.
type routed struct {
	Replicas       int             `json:"replicas"`
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
}

// target21 is one of issue 21's targets and whether the figures meet it.
type target21 struct {
	Target string `json:"target"`
	Met    bool   `json:"met"`
	Figure string `json:"figure"`
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

// checkTargets sets s.Targets from the figures.
func (s *replicasSummary) checkTargets() {
	a := s.NoClients
	last := a.Steps[len(a.Steps)-1]
	first := a.Steps[0]
	s.Targets = append(s.Targets,
		target21{Target: fmt.Sprintf("a replica with no clients uses under 1%% of a core while %d devices (%vs grace) live on another", last.Devices, s.GraceSeconds),
			Met: last.Idle.CPUPercent < 1, Figure: fmt.Sprintf("%.2f%% of a core", last.Idle.CPUPercent)},
		target21{Target: "and grows under 0.5 KiB per remote device",
			Met:    a.RSSPerDeviceBytes < 512 && a.HeapPerDeviceBytes < 512,
			Figure: fmt.Sprintf("RSS %+.3f KiB, Go heap %+.3f KiB per device (%d → %d devices)", a.RSSPerDeviceBytes/1024, a.HeapPerDeviceBytes/1024, first.Devices, last.Devices)})
	flat := last.Writes.Total-first.Writes.Total < 1
	wt := target21{Target: "the NATS write rate of live, unchanged sessions grows with replicas, not devices",
		Figure: fmt.Sprintf("2 replicas: %.2f/s with %d devices, %.2f/s with %d (under 1/s apart: flat)", first.Writes.Total, first.Devices, last.Writes.Total, last.Devices)}
	wt.Met = flat
	if len(s.Routed) >= 2 {
		lo, hi := s.Routed[0], s.Routed[len(s.Routed)-1]
		wt.Met = flat && hi.Writes.Total > lo.Writes.Total
		wt.Figure += fmt.Sprintf("; %d devices: %.2f/s with %d replicas, %.2f/s with %d", lo.Devices, lo.Writes.Total, lo.Replicas, hi.Writes.Total, hi.Replicas)
	} else {
		wt.Figure += "; not measured with more replicas (phase B needs two --routed-replicas)"
	}
	s.Targets = append(s.Targets, wt)
	if len(s.Routed) < 2 {
		return
	}
	lo, hi := s.Routed[0], s.Routed[len(s.Routed)-1]
	others := target21{Target: fmt.Sprintf("%d → %d replicas halves each replica's CPU and memory for sites it has no client of: replicas without the duties", lo.Replicas, hi.Replicas), Met: true}
	var parts []string
	for _, r := range []*routed{lo, hi} {
		sites, without, heap, rss, cpu, n := 0, 0, 0.0, 0.0, 0.0, 0
		for _, p := range r.PerReplica {
			if p.Duties {
				continue
			}
			n++
			sites += p.Sites
			without += p.WithoutClient
			heap += p.HeapInuseBytes
			rss += float64(p.RSSBytes)
			cpu += p.CPUPercent
		}
		if without != 0 {
			others.Met = false
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d replicas: each holds %d sites, %d without a client; heap %.1f MiB, RSS %.1f MiB, CPU %.2f%% (means)",
				r.Replicas, sites/n, without/n, heap/float64(n)/mib, rss/float64(n)/mib, cpu/float64(n)))
		}
	}
	others.Figure = strings.Join(parts, "; ")
	owner := target21{Target: "the same for the replica that owns the duties"}
	var ownerParts []string
	var ownerWithout [2]int
	for i, r := range []*routed{lo, hi} {
		for _, p := range r.PerReplica {
			if p.Duties {
				ownerWithout[i] = p.WithoutClient
				ownerParts = append(ownerParts, fmt.Sprintf("%d replicas: holds %d sites, %d without a client; heap %.1f MiB", r.Replicas, p.Sites, p.WithoutClient, p.HeapInuseBytes/mib))
			}
		}
	}
	owner.Figure = strings.Join(ownerParts, "; ")
	owner.Met = ownerWithout[1] <= ownerWithout[0]/2
	s.Targets = append(s.Targets, others, owner)
}

// writeText prints the report.
func (s *replicasSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "presence-load replicas, %s: %s; %s\ngrace %vs, liveness TTL %vs, each figure over a %vs window starting %vs after the last device was welcomed\n",
		s.Date, s.Presencehub, s.NATS, s.GraceSeconds, s.LivenessTTL, s.WindowSeconds, s.SettleSeconds)
	if len(s.ServeArgs) > 0 {
		fmt.Fprintf(w, "replicas run with %s\n", strings.Join(s.ServeArgs, " "))
	}
	a := s.NoClients
	owner := a.Clients
	if a.IdleOwns {
		owner = a.Idle
	}
	fmt.Fprintf(w, "\nA. A replica with no clients (%s); the devices on %s; %s owns the duties\n", a.Idle, a.Clients, owner)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "devices\tsites\tCPU %\tRSS MiB\theap MiB\tsites held\tfollowed\tKV ops/s\tNATS writes/s\tof them members\tNATS CPU %\t")
	for _, st := range a.Steps {
		i := st.Idle
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.1f\t%.1f\t%d\t%d\t%.2f\t%.2f\t%.2f\t%s\t\n", st.Devices, st.Sites,
			i.CPUPercent, float64(i.RSSBytes)/mib, i.HeapInuseBytes/mib, i.Sites, i.Followed, i.KVOpsPerSec, st.Writes.Total, st.Writes.Members, percent(st.NATSCPUPercent))
	}
	tw.Flush()
	fmt.Fprintf(w, "growth per remote device: RSS %+.3f KiB, Go heap %+.3f KiB\n", a.RSSPerDeviceBytes/1024, a.HeapPerDeviceBytes/1024)
	fmt.Fprintf(w, "The replica with the devices (%s) meanwhile:\n", a.Clients)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "devices\tsockets\tCPU %\tRSS MiB\theap MiB\tsites held\tfollowed\tKV ops/s\t")
	for _, st := range a.Steps {
		c := st.Clients
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.1f\t%.1f\t%d\t%d\t%.2f\t\n", st.Devices, c.Sockets, c.CPUPercent, float64(c.RSSBytes)/mib, c.HeapInuseBytes/mib, c.Sites, c.Followed, c.KVOpsPerSec)
	}
	tw.Flush()
	for _, r := range s.Routed {
		fmt.Fprintf(w, "\nB. %d replicas, %d devices on %d sites, routed by FNV-1a-32(site) mod %d\n", r.Replicas, r.Devices, r.Sites, r.Replicas)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "replica\tsockets\trouted sites\tCPU %\tRSS MiB\theap MiB\tsites held\tfollowed\twithout client\tduties\t")
		for _, p := range r.PerReplica {
			duties := ""
			if p.Duties {
				duties = "yes"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.1f\t%.1f\t%d\t%d\t%d\t%s\t\n", p.Name, p.Sockets, p.RoutedSites, p.CPUPercent,
				float64(p.RSSBytes)/mib, p.HeapInuseBytes/mib, p.Sites, p.Followed, p.WithoutClient, duties)
		}
		tw.Flush()
		fmt.Fprintf(w, "NATS writes/s: %.2f (presence %.2f, members %.2f); NATS CPU %%: %s\n", r.Writes.Total, r.Writes.Presence, r.Writes.Members, percent(r.NATSCPUPercent))
	}
	fmt.Fprintln(w, "\nIssue 21's targets:")
	for _, t := range s.Targets {
		mark := "met   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, t.Target, t.Figure)
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
