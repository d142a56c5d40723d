package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/presencehub/presencehub/hub/store"
)

// What `presence-load replicas` measures of a deployment over a window:
// each replica's CPU and RSS from /proc, its heap and gauges from its
// /metrics, and the messages NATS stored in the buckets' streams.

// scrape reads a Prometheus text page and sums every series of each name.
func (d *deployment) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(f[0], "{")
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// collectGarbage has the replica run a GC (pprof's heap profile with
// gc=1), so that the heap it then reports is what it holds, not what it
// has not collected yet. The profile is asked for as text (debug=1): a
// gzipped one would leave a compressor's garbage of about a megabyte.
func (d *deployment) collectGarbage(ctx context.Context, r *replica) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.debug+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// streams are the streams whose writes a window counts: the presence
// bucket's and the members bucket's.
var streams = []string{"KV_" + store.DefaultBucket, "KV_" + store.DefaultMembersBucket}

// streamSeqs returns each stream's last sequence.
func (d *deployment) streamSeqs(ctx context.Context) ([]uint64, error) {
	out := make([]uint64, len(streams))
	for i, name := range streams {
		s, err := d.js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		out[i] = s.CachedInfo().State.LastSeq
	}
	return out, nil
}

// pids returns the replicas' process ids, and the standalone
// nats-server's last (0 when it runs in this process).
func (d *deployment) pids() []int {
	var out []int
	for _, r := range d.replicas {
		out = append(out, r.cmd.Process.Pid)
	}
	if d.natsProc != nil {
		return append(out, d.natsProc.cmd.Process.Pid)
	}
	return append(out, 0)
}

// replicaWindow is one replica over a window.
type replicaWindow struct {
	Name           string  `json:"name"`
	CPUPercent     float64 `json:"cpu_percent_of_a_core"`
	RSSBytes       int64   `json:"rss_bytes"`
	HeapInuseBytes float64 `json:"heap_inuse_bytes_after_gc"`
	Sites          int     `json:"sites_held"`
	Followed       int     `json:"followed_sites"`
	// Owned and Standby are the partitions it owns and stands by for
	// (presencehub_duties, presencehub_standby_partitions).
	Owned          int     `json:"owned_partitions"`
	Standby        int     `json:"standby_partitions"`
	Sockets        int     `json:"sockets"`
	KVOpsPerSec    float64 `json:"kv_ops_per_sec"`
	ownedAtStart   int
	standbyAtStart int
}

// window is what one measurement window saw.
type window struct {
	Replicas       []replicaWindow
	Writes         streamWrites
	NATSCPUPercent *float64 // nil when NATS runs in this process
	NATSRSSBytes   int64
}

// streamWrites is the messages stored per second in each stream.
type streamWrites struct {
	Presence float64 `json:"presence"`
	Members  float64 `json:"members"`
	Total    float64 `json:"total"`
}

// measure samples the deployment at the start and the end of a window of
// d.cfg.window. Each replica's CPU is its utime+stime over the window
// (/proc); its RSS (/proc) and heap in use (after a forced GC) and its
// gauges are taken at the end, after the window, so that neither the
// scrapes nor the GC count in its CPU.
func (d *deployment) measure(ctx context.Context) (*window, error) {
	for _, r := range d.replicas {
		if err := r.alive(); err != nil {
			return nil, err
		}
	}
	start := make([]map[string]float64, len(d.replicas))
	for i, r := range d.replicas {
		m, err := d.scrape(ctx, r.url+"/metrics")
		if err != nil {
			return nil, err
		}
		start[i] = m
	}
	pids := d.pids()
	seq0, err := d.streamSeqs(ctx)
	if err != nil {
		return nil, err
	}
	p0, t0, err := sampleProcs(pids)
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, d.cfg.window); err != nil { // the measurement window
		return nil, err
	}
	p1, t1, err := sampleProcs(pids)
	if err != nil {
		return nil, err
	}
	seq1, err := d.streamSeqs(ctx)
	if err != nil {
		return nil, err
	}
	secs := t1.Sub(t0).Seconds()
	w := &window{}
	cpu := func(i int) float64 { return float64(p1[i].cpuTicks-p0[i].cpuTicks) / clkTck / secs * 100 }
	for i, r := range d.replicas {
		if err := d.collectGarbage(ctx, r); err != nil {
			return nil, err
		}
		m, err := d.scrape(ctx, r.url+"/metrics")
		if err != nil {
			return nil, err
		}
		w.Replicas = append(w.Replicas, replicaWindow{
			Name: r.name, CPUPercent: cpu(i), RSSBytes: p1[i].rssBytes, HeapInuseBytes: m["go_memstats_heap_inuse_bytes"],
			Sites: int(m["presencehub_sites"]), Followed: int(m["presencehub_followed_sites"]),
			Owned: int(m["presencehub_duties"]), ownedAtStart: int(start[i]["presencehub_duties"]),
			Standby: int(m["presencehub_standby_partitions"]), standbyAtStart: int(start[i]["presencehub_standby_partitions"]),
			Sockets:     int(m["presencehub_connections"]),
			KVOpsPerSec: (m["presencehub_kv_ops_total"] - start[i]["presencehub_kv_ops_total"]) / secs,
		})
	}
	rate := func(i int) float64 { return float64(seq1[i]-seq0[i]) / secs }
	w.Writes = streamWrites{Presence: rate(0), Members: rate(1), Total: rate(0) + rate(1)}
	if n := len(pids) - 1; pids[n] != 0 {
		c := cpu(n)
		w.NATSCPUPercent, w.NATSRSSBytes = &c, p1[n].rssBytes
	}
	return w, nil
}

// sampleProcs reads /proc for every pid (0: none) and the time.
func sampleProcs(pids []int) ([]procSample, time.Time, error) {
	out := make([]procSample, len(pids))
	for i, pid := range pids {
		if pid == 0 {
			continue
		}
		s, err := readProc(pid)
		if err != nil {
			return nil, time.Time{}, err
		}
		out[i] = s
	}
	return out, time.Now(), nil
}
