package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// startWorkers runs n workers until the test ends.
func startWorkers(t *testing.T, n int) *ruleWorker {
	w := &ruleWorker{}
	ctx, cancel := context.WithCancel(context.Background())
	w.start(ctx, n)
	t.Cleanup(func() {
		cancel()
		w.stop()
	})
	return w
}

// blockWorker queues a job under key that holds its worker until release is
// closed (or the workers stop), and returns once it runs.
func blockWorker(t *testing.T, w *ruleWorker, key ruleKey, release <-chan struct{}) {
	t.Helper()
	started := make(chan struct{})
	if !w.enqueue(key, ruleFunc(func(ctx context.Context) {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
		}
	})) {
		t.Fatal("enqueue refused while the workers run")
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not start")
	}
}

// sumJob is a merging job: merged ones run once, with the sum.
type sumJob struct {
	n   int
	out chan<- int
}

func (j sumJob) run(context.Context) { j.out <- j.n }

func (j sumJob) merge(pending ruleJob) ruleJob {
	j.n += pending.(sumJob).n
	return j
}

// TestRuleWorkerMergesByKey: while the only worker is busy, decisions of
// one key wait as one (the last, or the merge of all for a merging job),
// so the queue holds one per key however many come; enqueueing never
// blocks; and the waiting keys run in the order they first came.
func TestRuleWorkerMergesByKey(t *testing.T) {
	w := startWorkers(t, 1)
	release := make(chan struct{})
	blockWorker(t, w, ruleKey{ruleIdleClocks, "acme", ""}, release)

	ran := make(chan string, 10)
	for i := range 1000 {
		w.enqueue(ruleKey{ruleActivityWrite, "acme", "alice"}, ruleFunc(func(context.Context) { ran <- fmt.Sprint("alice ", i) }))
	}
	sums := make(chan int, 10)
	for i := range 1000 {
		w.enqueue(ruleKey{ruleSignOff, "acme", "bob"}, sumJob{i, sums})
	}
	for i := range 1000 {
		w.enqueue(ruleKey{ruleActivityWrite, "acme", fmt.Sprint("agent", i)}, ruleFunc(func(context.Context) {}))
	}
	w.enqueue(ruleKey{ruleActivityWrite, "acme", "carol"}, ruleFunc(func(context.Context) { ran <- "carol" }))
	if n := w.queued(); n != 1003 {
		t.Fatalf("got %d decisions queued, want 1003: one per key", n)
	}
	close(release)
	if got := <-ran; got != "alice 999" {
		t.Fatalf("got %q first, want the last decision of alice's key", got)
	}
	if got := <-sums; got != 999*1000/2 {
		t.Fatalf("got a merged sum of %d, want %d", got, 999*1000/2)
	}
	if got := <-ran; got != "carol" {
		t.Fatalf("got %q, want carol's decision, queued last", got)
	}
	select {
	case got := <-ran:
		t.Fatalf("got %q run twice", got)
	case got := <-sums:
		t.Fatalf("got a second sum %d", got)
	default:
	}
}

// TestRuleWorkerCount: n workers carry out n decisions at once.
func TestRuleWorkerCount(t *testing.T) {
	w := startWorkers(t, 3)
	release := make(chan struct{})
	defer close(release)
	for i := range 3 {
		blockWorker(t, w, ruleKey{ruleIdleClocks, fmt.Sprint("site", i), ""}, release)
	}
}

// TestRuleWorkerStop: nothing is queued before start or after the context
// ends; stop waits for the decision being carried out and drops those
// still queued, which would run on an ended context.
func TestRuleWorkerStop(t *testing.T) {
	var w ruleWorker
	noop := ruleFunc(func(context.Context) {})
	if w.enqueue(ruleKey{ruleIdleClocks, "acme", ""}, noop) {
		t.Fatal("enqueue accepted before start")
	}
	w.stop() // a worker never started stops at once

	ctx, cancel := context.WithCancel(context.Background())
	w.start(ctx, 1)
	var (
		mu       sync.Mutex
		finished bool
		ranLate  bool
	)
	started := make(chan struct{})
	w.enqueue(ruleKey{ruleIdleClocks, "acme", ""}, ruleFunc(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		mu.Lock()
		finished = true
		mu.Unlock()
	}))
	<-started
	w.enqueue(ruleKey{ruleIdleClocks, "other", ""}, ruleFunc(func(context.Context) {
		mu.Lock()
		ranLate = true
		mu.Unlock()
	}))
	cancel()
	w.stop()
	mu.Lock()
	defer mu.Unlock()
	if !finished {
		t.Fatal("stop returned before the running decision ended")
	}
	if ranLate {
		t.Fatal("a decision queued when the context ended ran after it")
	}
	if w.enqueue(ruleKey{ruleIdleClocks, "acme", ""}, noop) {
		t.Fatal("enqueue accepted after the context ended")
	}
}

// TestRuleMerges: merged decisions of the idle rule and of sign-off keep
// the later deadline and the later close, whichever came first.
func TestRuleMerges(t *testing.T) {
	early, late := idleDeadlineJob{deadline: 10}, idleDeadlineJob{deadline: 20}
	if got := early.merge(late).(idleDeadlineJob).deadline; got != 20 {
		t.Errorf("an earlier deadline merged into a later one: got %d, want 20", got)
	}
	if got := late.merge(early).(idleDeadlineJob).deadline; got != 20 {
		t.Errorf("a later deadline merged into an earlier one: got %d, want 20", got)
	}
	t0 := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	first, second := signOffJob{hoursGroup: "", closedAt: t0}, signOffJob{hoursGroup: "sales", closedAt: t0.Add(time.Hour)}
	if got := first.merge(second).(signOffJob); got != second {
		t.Errorf("an earlier close merged into a later one: got %+v, want %+v", got, second)
	}
	if got := second.merge(first).(signOffJob); got != second {
		t.Errorf("a later close merged into an earlier one: got %+v, want %+v", got, second)
	}
}
