package hub

import (
	"context"
	"sync"
)

// The rule worker carries out the rules' decisions (activity.go, signoff.go,
// coverage.go): the writes they call for run on a fixed number of
// goroutines owned by Run (Config.RuleWorkers), not on a goroutine each.
// Decisions are taken on the apply path with a site's lock held, so handing
// one over never blocks; instead the queue holds at most one decision per
// key, a later one of the same key being merged into the one waiting. The
// queue is therefore bounded by the number of distinct keys (agents, widgets
// and sites with a decision pending), and no decision is lost: the merged
// one does what both would have.

// rules is the part of a Hub that carries out the rules' decisions: the
// idle rule (activity.go), sign-off at close (signoff.go), the uncovered
// alert (coverage.go) and working hours' boundaries (hours.go), on its
// worker.
type rules struct {
	h      *Hub
	worker ruleWorker
}

// ruleKind says what a decision is about; with a site and a name it keys
// the decision.
type ruleKind uint8

const (
	ruleIdleDeadline     ruleKind = iota + 1 // name: the agent
	ruleActivityWrite                        // name: the agent
	ruleRestoreFromIdle                      // name: the agent
	ruleIdleClocks                           // name: ""
	ruleSignOff                              // name: the agent
	ruleCoverageClock                        // name: the group
	ruleCoverageLose                         // name: the group
	ruleCoveragePurge                        // name: the coverage key
	ruleCoverageRestored                     // name: the event's id
)

// ruleKey names a decision; two pending decisions with one key are merged.
type ruleKey struct {
	kind       ruleKind
	site, name string
}

// ruleJob is a decision waiting to be carried out.
type ruleJob interface {
	run(ctx context.Context)
}

// mergingJob is a ruleJob that folds the pending decision of its key into
// itself. A ruleJob that is not one replaces the pending decision: it is a
// later view of the same question, which makes the earlier one moot.
type mergingJob interface {
	ruleJob
	merge(pending ruleJob) ruleJob
}

// ruleFunc is a ruleJob carried out by a function.
type ruleFunc func(ctx context.Context)

func (f ruleFunc) run(ctx context.Context) { f(ctx) }

// ruleWorker is the queue of decisions and its goroutines.
type ruleWorker struct {
	mu   sync.Mutex
	cond sync.Cond // signalled on mu when a decision is queued or the workers stop
	// ctx is Run's, handed to every job; nil while no workers run.
	// Guarded by mu, as are pending and order.
	ctx     context.Context
	pending map[ruleKey]ruleJob
	order   []ruleKey // the keys of pending, first queued first
	wg      sync.WaitGroup
	// stopWatch stops the watch of ctx that ends the workers.
	stopWatch func() bool
}

// start runs n workers on ctx until it is done or stop is called.
func (w *ruleWorker) start(ctx context.Context, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cond.L = &w.mu
	w.ctx = ctx
	w.pending = make(map[ruleKey]ruleJob)
	w.order = nil
	w.stopWatch = context.AfterFunc(ctx, w.end)
	for range n {
		w.wg.Go(func() { w.work(ctx) })
	}
}

// end makes the workers return after their current job and drops the
// decisions still queued: Run is ending, and their writes would fail on
// its context anyway.
func (w *ruleWorker) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx = nil
	clear(w.pending)
	w.order = nil
	w.cond.Broadcast()
}

// stop ends the workers and waits for them.
func (w *ruleWorker) stop() {
	w.mu.Lock()
	stopWatch := w.stopWatch
	w.mu.Unlock()
	if stopWatch == nil {
		return // never started
	}
	stopWatch()
	w.end()
	w.wg.Wait()
}

// enqueue queues a decision under k, merging it with one already pending
// under k; it never blocks. It reports false, queueing nothing, when the
// workers do not run (Run has not started or has ended).
func (w *ruleWorker) enqueue(k ruleKey, j ruleJob) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == nil || w.ctx.Err() != nil {
		return false
	}
	if old, ok := w.pending[k]; ok {
		if m, ok := j.(mergingJob); ok {
			j = m.merge(old)
		}
		w.pending[k] = j // keeps its place in order
		return true
	}
	w.pending[k] = j
	w.order = append(w.order, k)
	w.cond.Signal()
	return true
}

// queued returns how many decisions wait.
func (w *ruleWorker) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// work carries out decisions, first queued first, until end.
func (w *ruleWorker) work(ctx context.Context) {
	for {
		w.mu.Lock()
		for w.ctx != nil && len(w.order) == 0 {
			w.cond.Wait()
		}
		// Run's context may end before end runs: what is queued then
		// would run on an ended context.
		if w.ctx == nil || ctx.Err() != nil {
			w.mu.Unlock()
			return
		}
		k := w.order[0]
		w.order[0] = ruleKey{} // let go of its strings
		w.order = w.order[1:]
		j := w.pending[k]
		delete(w.pending, k)
		w.mu.Unlock()
		j.run(ctx)
	}
}
