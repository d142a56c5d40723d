package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// run runs the phases and returns the summary.
func (l *loadTest) run(ctx context.Context) (sum *summary, err error) {
	cfg := l.cfg
	sum = l.newSummary()
	hubs, err := newHubProbes(cfg.pids)
	if err != nil {
		return nil, err
	}
	if cfg.rate > 0 && len(l.agents) > 0 && !cfg.storm {
		if per := cfg.rate / float64(len(l.agents)); per > 10 {
			fmt.Fprintf(l.stderr, "presence-load: warning: %.1f changes/s per agent; the hub allows --status-rate (default 10/s) per device, so expect rate_limited refusals\n", per)
		}
	}
	defer func() {
		l.closeAll()
		if err == nil {
			l.collect(sum)
			sum.Hubs = hubs.summaries(len(l.widgets)+len(l.agents)*cfg.devices, sum.Changes)
			if hubs.err != nil {
				sum.HubError = hubs.err.Error()
			}
		}
	}()

	// Connect.
	connectStart := time.Now()
	devices := len(l.agents) * cfg.devices
	for _, a := range l.agents {
		for _, d := range a.devices {
			d.seen = make([]bool, l.changesOf(a.idx, l.nChanges))
		}
	}
	agentRes, err := l.connectPhase(ctx, "agent devices", devices, cfg.connectRate, cfg.dialers, false, l.openDevice)
	if err != nil {
		return nil, err
	}
	// Agents whose stored status is not online (an earlier run) start online.
	for _, a := range l.agents {
		if st := a.status.Load(); st != nil && *st != "online" {
			fmt.Fprintf(l.stderr, "agent %s/%s: stored status %s from an earlier run; setting online\n", a.site, a.id, *st)
			if err := l.send(ctx, a, []byte(`{"type":"set_status","status":"online","ref":"init"}`)); err != nil {
				return nil, fmt.Errorf("agent %s/%s: setting online: %w", a.site, a.id, err)
			}
		}
	}
	widgetRes, err := l.connectPhase(ctx, "widgets", cfg.widgets, cfg.connectRate, cfg.dialers, false, func(ctx context.Context, i int) error { return l.openWidget(ctx, i, false) })
	if err != nil {
		return nil, err
	}
	sum.setConnect(agentRes, widgetRes, time.Since(connectStart))
	readyStart := time.Now()
	if err := l.waitInitial(ctx); err != nil {
		return nil, err
	}
	sum.InitialStateMS = ms(time.Since(readyStart))
	hubs.sampleConnected()

	if cfg.storm {
		sum.Storm, err = l.stormPhase(ctx)
		if err != nil {
			return nil, err
		}
		hubs.sampleStormEnd()
	} else if l.nChanges > 0 {
		hubs.sampleChangesStart()
		self0, selfErr := readProc(os.Getpid())
		ch, err := l.changePhase(ctx)
		if err != nil {
			return nil, err
		}
		hubs.sampleChangesEnd()
		if self1, err := readProc(os.Getpid()); err == nil && selfErr == nil {
			ch.GeneratorCPUSeconds = float64(self1.cpuTicks-self0.cpuTicks) / clkTck
		}
		sum.Changes = ch
	}
	return sum, nil
}

// changesOf is how many of the first n changes belong to agent a.
func (l *loadTest) changesOf(a, n int) int {
	if n <= a {
		return 0
	}
	return (n - a + len(l.agents) - 1) / len(l.agents)
}

// send writes msg on the agent's sender device.
func (l *loadTest) send(ctx context.Context, a *agent, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return a.devices[senderDevice].conn.Write(ctx, websocket.MessageText, msg)
}

// waitInitial waits until every widget shows its initial status and every
// agent is online.
func (l *loadTest) waitInitial(ctx context.Context) error {
	ready := func() (int, int) {
		online := 0
		for _, a := range l.agents {
			if st := a.status.Load(); st != nil && *st == "online" {
				online++
			}
		}
		return int(l.readyWidgets.Load()), online
	}
	deadline := time.Now().Add(l.cfg.timeout)
	for {
		w, a := ready()
		if w == len(l.widgets) && a == len(l.agents) {
			return nil
		}
		if time.Now().After(deadline) {
			if closed := l.closedSummary(); closed != "" {
				return fmt.Errorf("after %v, %d of %d widgets show their initial status and %d of %d agents are online; sockets closed while waiting: %s", l.cfg.timeout, w, len(l.widgets), a, len(l.agents), closed)
			}
			return fmt.Errorf("after %v, %d of %d widgets show their initial status and %d of %d agents are online: is another agent online on the load-* sites (an earlier run still inside its grace period)?", l.cfg.timeout, w, len(l.widgets), a, len(l.agents))
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// changePhase sends the status changes on schedule and waits for the
// frames they cause.
func (l *loadTest) changePhase(ctx context.Context) (*changeSummary, error) {
	cfg := l.cfg
	nAgents := len(l.agents)
	step := cfg.changeStep()
	cs := &changeSummary{Planned: l.nChanges}
	if cfg.rate > 0 {
		cs.Mode = fmt.Sprintf("%.0f changes/s for %v", cfg.rate, cfg.duration)
	} else {
		cs.Mode = fmt.Sprintf("%d round(s) %v apart, %d agent(s)", cfg.changes, cfg.interval, nAgents)
	}
	fmt.Fprintf(l.stderr, "changing: %d status change(s), %s\n", l.nChanges, cs.Mode)
	l.phase.Store(phaseChanges)
	start := time.Now()
	firstSend := l.now()
	var behind time.Duration
	sent := 0
	for n := range l.nChanges {
		due := start.Add(time.Duration(n) * step)
		if d := time.Until(due); d > 0 {
			if err := sleepCtx(ctx, d); err != nil {
				break
			}
		} else {
			behind = max(behind, -d)
		}
		a := l.agents[n%nAgents]
		msg := fmt.Appendf(nil, `{"type":"set_status","status":%q,"ref":"%d"}`, statusFor(n/nAgents), n)
		l.sendAt[n].Store(l.now())
		if err := l.send(ctx, a, msg); err != nil {
			l.sendAt[n].Store(0)
			if ctx.Err() == nil {
				cs.SendError = fmt.Sprintf("change %d (agent %s/%s): %v", n, a.site, a.id, err)
			}
			break
		}
		sent++
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	lastSend := time.Now()
	cs.Sent = sent
	cs.SendMS = ms(time.Duration(l.now() - firstSend))
	cs.BehindMaxMS = ms(behind)
	// What the sent changes should cause.
	for _, w := range l.widgets {
		if w.agent >= 0 {
			cs.Expected += int64(l.changesOf(w.agent, sent))
		}
	}
	for _, a := range l.agents {
		cs.Expected += int64(l.changesOf(a.idx, sent) * len(a.devices))
	}
	deadline := lastSend.Add(cfg.timeout)
	for l.delivered.Load() < cs.Expected && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	l.phase.Store(phaseDone)
	if last := l.lastDelivery.Load(); last > firstSend {
		cs.DurationMS = ms(time.Duration(last - firstSend))
	}
	cs.firstSend = firstSend
	return cs, nil
}

// stormPhase closes every widget at once, reopens them all at once, and
// measures the time until each has its snapshot.
func (l *loadTest) stormPhase(ctx context.Context) (*stormSummary, error) {
	cfg := l.cfg
	st := &stormSummary{Widgets: len(l.widgets), RatePerSec: cfg.stormRate}
	fmt.Fprintf(l.stderr, "storm: closing %d widgets\n", len(l.widgets))
	closeStart := time.Now()
	l.eachParallel(len(l.widgets), 64, func(i int) {
		w := l.widgets[i]
		w.closing.Store(true)
		w.conn.CloseNow()
	})
	l.widgetReaders.Wait()
	st.CloseMS = ms(time.Since(closeStart))
	for _, w := range l.widgets {
		w.conn = nil
	}
	l.stormStart.Store(l.now())
	l.phase.Store(phaseStorm)
	dialers := len(l.widgets)
	if cfg.stormRate > 0 {
		dialers = cfg.dialers
	}
	fmt.Fprintf(l.stderr, "storm: reopening %d widgets\n", len(l.widgets))
	res, err := l.connectPhase(ctx, "widgets (storm)", len(l.widgets), cfg.stormRate, dialers, true, func(ctx context.Context, i int) error { return l.openWidget(ctx, i, true) })
	if err != nil {
		return nil, err
	}
	st.Failed = res.failed
	if res.firstEr != nil {
		st.FirstError = res.firstEr.Error()
	}
	st.Dial = latencyOf(durationsMicros(res.each), 1)
	want := int64(len(l.widgets) - res.failed)
	deadline := time.Now().Add(cfg.timeout)
	for l.stormSnaps.Load() < want && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
	l.phase.Store(phaseDone)
	return st, nil
}

// eachParallel calls fn(i) for i in [0, n) on up to workers goroutines.
func (l *loadTest) eachParallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// closeAll closes every socket: widgets with a normal close, devices with
// bye (so their leases end at once), and anything left over abruptly. It
// returns once every reader has exited.
func (l *loadTest) closeAll() {
	l.phase.Store(phaseDone)
	l.eachParallel(len(l.widgets), 256, func(i int) {
		w := l.widgets[i]
		if w.conn != nil {
			w.closing.Store(true)
			w.conn.Close(websocket.StatusNormalClosure, "load test done")
		}
	})
	var devs []*device
	for _, a := range l.agents {
		for _, d := range a.devices {
			if d.conn != nil {
				devs = append(devs, d)
			}
		}
	}
	l.eachParallel(len(devs), 64, func(i int) {
		d := devs[i]
		d.closing.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		d.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"bye"}`))
	})
	done := make(chan struct{})
	go func() {
		l.deviceReaders.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(writeTimeout):
		for _, d := range devs {
			d.conn.CloseNow()
		}
		<-done
	}
	for _, d := range devs {
		d.conn.CloseNow() // releases the descriptor; the hub closed it after bye
	}
	l.widgetReaders.Wait()
}
