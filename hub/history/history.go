// Package history owns one replica's index of the availability history of
// the sites it is asked about, read from the event stream (docs/events.md),
// and answers the timeline and the availability report of the admin API
// (docs/protocol.md#history) from it, with the computations of package
// presence.
//
// The index keeps, per site, per agent the instants its chosen or
// effective status changed (agent.status, agent.availability), and per
// group the instants its widget changed (widget.status), stamped with the
// events' timestamps. It holds nothing that is not in the stream: a site
// is loaded at its first query by reading that site's daily summaries,
// when there are (Config.Summaries: a stream of their own, one message per
// part of a UTC day, written once by the replicas that read the days'
// events, and by the owner of the site's partition after each day:
// summarize.go), then that site's own subjects of the event stream after them,
// or from the stream's start (presence.events.<site>.>, nothing of other
// sites), and kept current by the same ordered consumer while it stays in
// memory; beyond Config.Sites sites the least recently asked is dropped
// (and read again if asked again). A summary holds what the index reads of
// each of a run of the site's events, so that the index built from the
// summaries and the events after them is the one built from the events
// alone, and so are the answers. So history survives a restart of every
// replica for as long as the stream retains it, and a replica's start
// reads nothing. Points older than the retention are dropped as new ones
// arrive.
//
// The Index, its lifetime and the range every query checks are in
// history.go; loading, following and dropping sites in sites.go; the
// series it keeps and how an event is added to them in series.go; the
// summaries' format and how a site's events are cut into them in
// summary.go, their stream, reading and writing in summaries.go, writing
// them without a query in summarize.go; the queries in timeline.go and
// report.go (with its CSV). It serves no HTTP:
// the transport's admin API calls it.
//
// Goroutines: none of its own. A query that finds its site not in memory
// reads its summaries and starts the site's ordered consumer (on the
// query's goroutine, without the index's lock) and waits for it to catch
// up, at most until the query's context is done; the consumer's handler
// runs on the NATS client's goroutines and applies each event under the
// index's lock. A query then writes the site's summaries that are
// complete and not written yet, on its goroutine. Run only waits for its
// context, then stops every site's consumer. Queries run on the caller's
// goroutine under a read lock. Summarize runs on the caller's goroutine
// (with a consumer of its own, deleted when it returns), and so does
// SummarizeSites, until its context is done: serve runs it on a goroutine
// of its own.
package history

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// ErrNotReady is returned by a query whose context ends before its site's
// history is read, or when the index is stopped.
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
	// Sites is how many sites' histories are kept in memory, the least
	// recently asked dropped beyond it; default DefaultSites.
	Sites int
	// Summaries is the stream of the sites' daily summaries, created by
	// OpenSummaries (summaries.go); "" reads and writes none, and every
	// site is read from the event stream alone.
	Summaries string
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultSites is the default of Config.Sites.
const DefaultSites = 1000

// Types the index reads.
var types = []string{events.TypeAgentStatus, events.TypeAgentAvailability, events.TypeWidgetStatus}

// subjects returns the subjects of the types read, of site ("*": every
// site).
func subjects(site string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = events.SubjectPrefix + site + "." + t
	}
	return out
}

// Index is the history of the sites asked about, kept in memory.
type Index struct {
	cfg Config

	mu sync.RWMutex
	// sites are the sites in memory, lru them from the most recently
	// asked (front) to the least.
	sites map[string]*siteEntry
	lru   *list.List
	// first is the timestamp of the stream's first event read (ms), 0
	// until one is found.
	first int64
	// stopped is set when Run returns: no consumer starts after it.
	stopped bool
	// readyCh is closed when Run starts.
	readyCh chan struct{}
	// hours, when set, says the working hours of sites and groups.
	hours Schedules
	// partBytes is the size of a summary's part (summary.go).
	partBytes int
}

// Schedules says the working hours of (site, group), group "" the site's
// own, as the hub's view has them now (hub.Hub does).
type Schedules interface {
	Schedule(site, group string) (*presence.Schedule, bool)
}

// SetHours sets where the index reads a widget's working hours, for the
// time before its first event (a widget of a group without hours of its
// own follows the site's). It is called without the index's lock held.
func (x *Index) SetHours(hours Schedules) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.hours = hours
}

// New returns an Index for cfg; Run keeps its sites current.
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
	if cfg.Sites <= 0 {
		cfg.Sites = DefaultSites
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Index{cfg: cfg, sites: make(map[string]*siteEntry), lru: list.New(), readyCh: make(chan struct{}), partBytes: partBytes}, nil
}

// Ready reports whether Run has started: each site's history is then read
// at its first query, which waits for it.
func (x *Index) Ready() bool {
	select {
	case <-x.readyCh:
		return true
	default:
		return false
	}
}

// Loaded is closed once Run has started.
func (x *Index) Loaded() <-chan struct{} { return x.readyCh }

// Run serves queries until ctx is done, then stops reading every site and
// drops them.
func (x *Index) Run(ctx context.Context) error {
	close(x.readyCh)
	<-ctx.Done()
	x.mu.Lock()
	x.stopped = true
	var stop []*siteEntry
	for _, e := range x.sites {
		stop = append(stop, e)
	}
	x.sites = make(map[string]*siteEntry)
	x.lru.Init()
	x.mu.Unlock()
	for _, e := range stop {
		e.stop(true)
	}
	return nil
}

// streamStart returns the timestamp of the first event of the types read
// the stream holds (ms), 0 when it holds none, read once found.
func (x *Index) streamStart(ctx context.Context) (int64, error) {
	x.mu.RLock()
	first := x.first
	x.mu.RUnlock()
	if first != 0 {
		return first, nil
	}
	stream, err := x.cfg.JetStream.Stream(ctx, x.cfg.Stream)
	if err != nil {
		return 0, fmt.Errorf("failed to open event stream %q: %w", x.cfg.Stream, err)
	}
	for _, subj := range subjects("*") {
		m, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue
		case err != nil:
			return 0, fmt.Errorf("failed to read event stream %q: %w", x.cfg.Stream, err)
		}
		var ev envelope
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			continue
		}
		if at := time.Time(ev.Timestamp).UnixMilli(); first == 0 || at < first {
			first = at
		}
	}
	x.mu.Lock()
	if x.first == 0 || (first != 0 && first < x.first) {
		x.first = first
	}
	first = x.first
	x.mu.Unlock()
	return first, nil
}

// start is where the history begins, given the stream's first event
// (ms, 0 when none): that event, or the stream's retention back from now
// when that is later; now when there is no event.
func (x *Index) start(first int64) time.Time {
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
func (x *Index) checkRange(ctx context.Context, from, to time.Time, fromParam, toParam string) (time.Time, time.Time, error) {
	if !from.Before(to) {
		return from, to, &ParamError{fromParam, "must be before " + toParam}
	}
	first, err := x.streamStart(ctx)
	if err != nil {
		return from, to, err
	}
	now := x.cfg.Now()
	if kept := now.Add(-x.cfg.Retention); from.Before(kept) {
		return from, to, &ParamError{fromParam, fmt.Sprintf("before the retention of the event stream (%v): the history starts at %s",
			x.cfg.Retention, x.start(first).UTC().Format(protocol.TimeFormat))}
	}
	if start := x.start(first); !start.Before(to) {
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
