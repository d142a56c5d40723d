// Package history owns one replica's index of the availability history of
// every site, read from the event stream (docs/events.md), and answers the
// timeline and the availability report of the admin API
// (docs/protocol.md#history) from it, with the computations of package
// presence.
//
// The index keeps, per site, per agent the instants its chosen or
// effective status changed (agent.status, agent.availability), and per
// group the instants its widget changed (widget.status), stamped with the
// events' timestamps. It holds nothing that is not in the stream: every
// replica builds the same index from the stream's start, so history
// survives a restart of every replica for as long as the stream retains
// it. Points older than the retention are dropped as new ones arrive.
//
// The Index, its reading of the stream and the range every query checks
// are in history.go; the series it keeps and how an event is added to them
// in series.go; the queries in timeline.go and report.go (with its CSV). It
// serves no HTTP: the transport's admin API calls it.
//
// Goroutines: none of its own. Run, on its caller's goroutine, opens the
// stream (again every retryEvery while it cannot) and reads it with one
// ordered consumer, whose handler runs on the NATS client's goroutines and
// applies each event under the index's lock; Run returns when its context
// is done, after the consumer is stopped. Queries run on the caller's
// goroutine under a read lock.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/protocol"
)

// ErrNotReady is returned by queries until the index has read what the
// stream held when Run started.
var ErrNotReady = errors.New("history: still reading the event stream")

// ParamError is a query parameter out of range.
type ParamError struct {
	Param, Msg string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Config configures an Index.
type Config struct {
	JetStream jetstream.JetStream
	// Stream is the event stream's name; default events.DefaultStream.
	Stream string
	// Retention is the stream's retention; default
	// events.DefaultRetention. No query reaches further back.
	Retention time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Subjects the index reads.
var subjects = []string{
	events.SubjectPrefix + "*." + events.TypeAgentStatus,
	events.SubjectPrefix + "*." + events.TypeAgentAvailability,
	events.SubjectPrefix + "*." + events.TypeWidgetStatus,
}

// Index is the history of every site, kept in memory.
type Index struct {
	cfg Config

	mu    sync.RWMutex
	sites map[string]*siteIndex
	// first is the timestamp of the earliest event read (ms), 0 before any.
	first int64
	ready bool
	// readyCh is closed once ready.
	readyCh chan struct{}
}

// New returns an Index for cfg; Run fills it.
func New(cfg Config) (*Index, error) {
	if cfg.JetStream == nil {
		return nil, errors.New("history: no JetStream")
	}
	if cfg.Stream == "" {
		cfg.Stream = events.DefaultStream
	}
	if cfg.Retention == 0 {
		cfg.Retention = events.DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Index{cfg: cfg, sites: make(map[string]*siteIndex), readyCh: make(chan struct{})}, nil
}

// Ready reports whether the index has read what the stream held when Run
// started.
func (x *Index) Ready() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ready
}

// Loaded is closed once the index is ready.
func (x *Index) Loaded() <-chan struct{} { return x.readyCh }

func (x *Index) markReady() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.ready {
		x.ready = true
		close(x.readyCh)
	}
}

// Run reads the event stream from its start and follows it until ctx is
// done. While the stream cannot be opened (NATS down at startup) it tries
// again every retryEvery, logging why.
func (x *Index) Run(ctx context.Context) error {
	for {
		cc, err := x.start(ctx)
		if err == nil {
			<-ctx.Done()
			cc.Stop()
			<-cc.Closed()
			return nil
		}
		x.cfg.Logger.Warn("history: failed to start reading the event stream; trying again", "err", err, "in", retryEvery)
		t := time.NewTimer(retryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// retryEvery is how often Run tries again to open the stream.
const retryEvery = 2 * time.Second

// start opens the ordered consumer; the ordered consumer itself rides out
// reconnects and resumes after the last message it handled.
func (x *Index) start(ctx context.Context) (jetstream.ConsumeContext, error) {
	stream, err := x.cfg.JetStream.Stream(ctx, x.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("history: failed to open event stream %q: %w", x.cfg.Stream, err)
	}
	// What "caught up" means: the last message of the subjects read, as
	// the stream holds it now.
	var target uint64
	for _, subj := range subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("history: failed to read event stream %q: %w", x.cfg.Stream, err)
		case m.Sequence > target:
			target = m.Sequence
		}
	}
	if target == 0 {
		x.markReady()
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("history: failed to read event stream %q: %w", x.cfg.Stream, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		x.apply(msg.Subject(), msg.Data())
		if md, err := msg.Metadata(); err == nil && (md.NumPending == 0 || md.Sequence.Stream >= target) {
			x.markReady()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("history: failed to read event stream %q: %w", x.cfg.Stream, err)
	}
	return cc, nil
}

// Start is where the history begins: the first event read, or the
// stream's retention back from now when that is later; now when no event
// was read.
func (x *Index) Start() time.Time {
	x.mu.RLock()
	first := x.first
	x.mu.RUnlock()
	now := x.cfg.Now()
	start := now.Add(-x.cfg.Retention)
	if first == 0 {
		return now
	}
	if f := time.UnixMilli(first); f.After(start) {
		start = f
	}
	return start
}

// Selection narrows a query: Agent, when set, says which agents to
// include; Group, when set, names the only widget to include ("" is the
// site's own).
type Selection struct {
	Agent func(id string) bool
	Group *string
}

// checkRange checks a query's range and returns the range to answer:
// clipped to now, and to the start of the history when the range begins
// before it (a deployment's first day can be reported). A range that
// begins before the stream's retention, or that ends before the history
// begins, is refused naming fromParam.
func (x *Index) checkRange(from, to time.Time, fromParam, toParam string) (time.Time, time.Time, error) {
	if !x.Ready() {
		return from, to, ErrNotReady
	}
	if !from.Before(to) {
		return from, to, &ParamError{fromParam, "must be before " + toParam}
	}
	now := x.cfg.Now()
	if kept := now.Add(-x.cfg.Retention); from.Before(kept) {
		return from, to, &ParamError{fromParam, fmt.Sprintf("before the retention of the event stream (%v): the history starts at %s",
			x.cfg.Retention, x.Start().UTC().Format(protocol.TimeFormat))}
	}
	if start := x.Start(); !start.Before(to) {
		return from, to, &ParamError{fromParam, fmt.Sprintf("before the history the event stream holds, which starts at %s (retention %v)",
			start.UTC().Format(protocol.TimeFormat), x.cfg.Retention)}
	} else if from.Before(start) {
		from = start
	}
	if now := now.Truncate(time.Millisecond); to.After(now) {
		to = now
	}
	if !from.Before(to) {
		return from, to, &ParamError{fromParam, "must be before now"}
	}
	return from, to, nil
}
