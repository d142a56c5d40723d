package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Hub process measurements, from /proc.

// clkTck is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clkTck = 100

type procSample struct {
	cpuTicks uint64
	rssBytes int64
}

func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("hub pid %d: %w", pid, err)
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'. Field 3 (state) is fields[0]; utime and stime are fields
	// 14 and 15.
	i := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(fields) < 13 {
		return s, fmt.Errorf("hub pid %d: unexpected /proc/%d/stat", pid, pid)
	}
	ut, err1 := strconv.ParseUint(fields[11], 10, 64)
	st, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("hub pid %d: unexpected utime/stime in /proc/%d/stat", pid, pid)
	}
	s.cpuTicks = ut + st
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("hub pid %d: %w", pid, err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					s.rssBytes = kb * 1024
					return s, nil
				}
			}
		}
	}
	return s, fmt.Errorf("hub pid %d: no VmRSS in /proc/%d/status", pid, pid)
}

// hubProbes samples the hub processes: before connecting, after connecting,
// and around the change phase.
type hubProbes struct {
	pids                                         []int
	before, connected, start, end, storm         []procSample
	haveConnected, haveStart, haveEnd, haveStorm bool
	err                                          error
}

func newHubProbes(pids []int) (*hubProbes, error) {
	h := &hubProbes{pids: pids}
	var err error
	h.before, err = h.sample()
	return h, err
}

func (h *hubProbes) sample() ([]procSample, error) {
	out := make([]procSample, len(h.pids))
	for i, pid := range h.pids {
		s, err := readProc(pid)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func (h *hubProbes) take(dst *[]procSample, ok *bool) {
	s, err := h.sample()
	if err != nil {
		if h.err == nil {
			h.err = err
		}
		return
	}
	*dst, *ok = s, true
}

func (h *hubProbes) sampleConnected()    { h.take(&h.connected, &h.haveConnected) }
func (h *hubProbes) sampleChangesStart() { h.take(&h.start, &h.haveStart) }
func (h *hubProbes) sampleChangesEnd()   { h.take(&h.end, &h.haveEnd) }
func (h *hubProbes) sampleStormEnd()     { h.take(&h.storm, &h.haveStorm) }

// summaries assumes sockets and deliveries spread equally over the hubs.
func (h *hubProbes) summaries(sockets int, cs *changeSummary) []hubSummary {
	if len(h.pids) == 0 {
		return nil
	}
	per := float64(sockets) / float64(len(h.pids))
	var out []hubSummary
	for i, pid := range h.pids {
		hs := hubSummary{PID: pid, Sockets: per, RSSBeforeBytes: h.before[i].rssBytes}
		if h.haveConnected {
			hs.RSSAfterBytes = h.connected[i].rssBytes
			hs.CPUConnectSeconds = float64(h.connected[i].cpuTicks-h.before[i].cpuTicks) / clkTck
			if hs.CPUConnectSeconds > 0 && per > 0 {
				hs.CPUSecondsPer1000Connections = hs.CPUConnectSeconds / (per / 1000)
			}
			if h.haveStorm {
				hs.CPUStormSeconds = float64(h.storm[i].cpuTicks-h.connected[i].cpuTicks) / clkTck
			}
			if per > 0 {
				hs.RSSPerConnectionBytes = float64(hs.RSSAfterBytes-hs.RSSBeforeBytes) / per
			}
		}
		if h.haveStart && h.haveEnd {
			hs.CPUSeconds = float64(h.end[i].cpuTicks-h.start[i].cpuTicks) / clkTck
			if cs != nil && cs.Deliveries > 0 {
				share := float64(cs.Deliveries) / float64(len(h.pids)) // deliveries assumed per hub
				hs.CPUSecondsPer1000 = hs.CPUSeconds / (share / 1000)
			}
		}
		out = append(out, hs)
	}
	return out
}
