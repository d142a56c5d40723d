package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
)

// Summaries without a query: the owner of a site's partition calls
// Summarize for each site it owns once a day, after the day ended
// (SummarizeSites), so that a site's first query reads summaries even if
// nobody asked about the site before. Summarize reads the site's events
// after its last summary and writes the complete parts, as a query's load
// would (the same ops into the same builder: the same bytes), without
// keeping the site in memory.

// Summarize writes the summaries of site's days that are complete and not
// written yet, on the caller's goroutine. A site in memory writes those
// its consumer built (no read). Otherwise it finds the site's last
// summary, and when an event of the types the index reads that is of a
// complete day follows it, reads the site's events after it from the
// event stream with a consumer of its own, writing the parts complete
// after each batch of 1,024 events: memory holds the part being built and
// those its batch completed (a busy site's day is one part).
// The site does not enter the index (Config.Sites): summarising evicts
// none of the sites that queries read. Without Config.Summaries it does
// nothing.
func (x *Index) Summarize(ctx context.Context, site string) error {
	if x.cfg.Summaries == "" {
		return nil
	}
	x.mu.RLock()
	e, stopped := x.sites[site], x.stopped
	x.mu.RUnlock()
	if stopped {
		return ErrNotReady
	}
	if e != nil {
		select {
		case <-e.loaded:
			if e.err == nil {
				x.writeSummaries(ctx, e)
			}
		default: // its query writes them once loaded
		}
		return nil
	}
	return x.summarize(ctx, site)
}

// summarize is Summarize of a site not in memory.
func (x *Index) summarize(ctx context.Context, site string) error {
	evs, err := x.cfg.JetStream.Stream(ctx, x.cfg.Stream)
	if err != nil {
		return fmt.Errorf("failed to open event stream %q: %w", x.cfg.Stream, err)
	}
	info := evs.CachedInfo()
	if info.State.Msgs == 0 {
		return nil
	}
	b := &builder{day: math.MinInt64, epoch: uint64(info.Created.UnixNano()), limit: x.partBytes,
		settled: dayOf(x.cfg.Now().Add(-SettleAfter).UnixMilli())}
	if err := x.summariesEnd(ctx, evs, site, b, info.State.FirstSeq); err != nil {
		return err
	}
	if due, err := x.anyDue(ctx, evs, site, b); err != nil || !due {
		return err
	}
	return x.summarizeAfter(ctx, evs, site, b)
}

// summariesEnd sets b to go on after site's summaries: after the last one
// written, when it is of this event stream, decodes and its last event is
// still the one the stream holds at its sequence (the usual case: one
// read); otherwise after the chain a query's load applies (readChain),
// reading every summary of the site.
func (x *Index) summariesEnd(ctx context.Context, evs jetstream.Stream, site string, b *builder, firstSeq uint64) error {
	sums, err := x.cfg.JetStream.Stream(ctx, x.cfg.Summaries)
	if err != nil {
		return fmt.Errorf("failed to open history summaries stream %q: %w", x.cfg.Summaries, err)
	}
	m, err := sums.GetLastMsgForSubject(ctx, summaryPrefix(site)+">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read site %s in history summaries stream %q: %w", site, x.cfg.Summaries, err)
	}
	if l, ok := parseLink(m.Subject, m.Data); ok {
		h, err := summaryHeader(l.data)
		if err == nil && h.epoch == b.epoch && decodeSummary(l.data, func(op) {}) == nil {
			l.header = h
			if len(x.stillThere(ctx, evs, site, []link{l}, firstSeq)) == 1 {
				b.day, b.n, b.to = l.day, l.n, l.to
				return nil
			}
		}
	}
	chain, err := x.readChain(ctx, site, b.epoch, firstSeq)
	if err != nil {
		return err
	}
	chain = x.stillThere(ctx, evs, site, chain, firstSeq)
	for _, l := range chain {
		if decodeSummary(l.data, func(op) {}) != nil {
			break
		}
		b.day, b.n, b.to = l.day, l.n, l.to
	}
	return nil
}

// anyDue reports whether the site's first event of the types read after
// b.to is of a day that is complete: else there is nothing to write yet
// (but parts of today that are full, which wait for the day's end).
func (x *Index) anyDue(ctx context.Context, evs jetstream.Stream, site string, b *builder) (bool, error) {
	var first *jetstream.RawStreamMsg
	for _, subj := range subjects(site) {
		m, err := evs.GetMsg(ctx, b.to+1, jetstream.WithGetMsgSubject(subj))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return false, fmt.Errorf("failed to read site %s in event stream %q: %w", site, x.cfg.Stream, err)
		case first == nil || m.Sequence < first.Sequence:
			first = m
		}
	}
	if first == nil {
		return false, nil
	}
	var ev envelope
	if json.Unmarshal(first.Data, &ev) != nil {
		return true, nil // read on: the builder skips it as a load does
	}
	return max(dayOf(time.Time(ev.Timestamp).UnixMilli()), b.day) < b.settled, nil
}

// summarizeAfter reads site's events after b.to, as a query's load does
// (one filter, the types read), into b, and writes the parts that are
// complete as they are, until it has read what the stream held of the
// site when it began.
func (x *Index) summarizeAfter(ctx context.Context, evs jetstream.Stream, site string, b *builder) error {
	cons, err := evs.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     events.SubjectPrefix + site + ".>",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       b.to + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("failed to read site %s in event stream %q: %w", site, x.cfg.Stream, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = evs.DeleteConsumer(ctx, cons.CachedInfo().Name) // else gone when inactive
	}()
	subjs := subjects(site)
	for pending := cons.CachedInfo().NumPending; pending > 0; {
		batch, err := cons.FetchNoWait(int(min(pending, 1024)))
		if err != nil {
			return fmt.Errorf("failed to read site %s in event stream %q: %w", site, x.cfg.Stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			pending--
			md, err := m.Metadata()
			if err != nil || !slices.Contains(subjs, m.Subject()) {
				continue
			}
			if md.Sequence.Stream <= b.to {
				return nil // not in order: no summaries of it, as a load
			}
			o, err := decodeOp(m.Data())
			if err != nil {
				continue // not in a summary, as a load skips it
			}
			o.seq, o.stored = md.Sequence.Stream, md.Timestamp.UnixNano()
			b.add(o)
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("failed to read site %s in event stream %q: %w", site, x.cfg.Stream, err)
		}
		if got == 0 {
			break
		}
		if err := x.writeReady(ctx, site, b, false); err != nil {
			return err
		}
	}
	return x.writeReady(ctx, site, b, true)
}

// writeReady writes b's parts that are complete and drops them: while
// reading (not last), only those a later part follows, since the last one
// read may go on in the next batch.
func (x *Index) writeReady(ctx context.Context, site string, b *builder, last bool) error {
	var parts []*part
	switch {
	case last && b.anyReady():
		parts = b.ready()
	case !last && len(b.parts) > 1:
		parts = b.parts[:len(b.parts)-1]
		for _, p := range parts {
			p.sealed = true
		}
	default:
		return nil
	}
	data := make([][]byte, len(parts))
	for i, p := range parts {
		data[i] = p.encode()
	}
	n, err := x.writeParts(ctx, site, parts, data)
	b.written(n)
	if errors.Is(err, errDiffers) {
		return nil
	}
	return err
}

// DefaultSummarizeRate is SummarizeConfig.Rate by default: sites a second.
const DefaultSummarizeRate = 10

// SummarizeConfig configures SummarizeSites.
type SummarizeConfig struct {
	// Sites returns the sites whose summaries this replica writes: those
	// of the partitions it owns (hub.Hub.OwnedSites).
	Sites func() []string
	// Rate is how many sites a second it summarises at most; default
	// DefaultSummarizeRate.
	Rate float64
	// Every is how often it lists Sites again when it has summarised
	// every site listed since the last day ended; default 10 s.
	Every time.Duration
}

// SummarizeSites summarises, on the caller's goroutine until ctx is done,
// each site cfg.Sites lists once a UTC day, after the day ended and
// SettleAfter passed: it walks them at cfg.Rate at most, then lists them
// again every cfg.Every for the ones not done yet (a partition acquired, a
// site created, a summary that failed). It is best effort: a walk that
// comes late, or not at all (no replica up), only leaves a site's first
// query to read the events of the days not summarised, and write them.
// Its memory is the names of the sites done today.
func (x *Index) SummarizeSites(ctx context.Context, cfg SummarizeConfig) error {
	summarizeSites(ctx, cfg, x.cfg.Now, x.Summarize, x.cfg.Logger)
	return nil
}

// summarizeSites is SummarizeSites with its clock, its Summarize and its
// logger given.
func summarizeSites(ctx context.Context, cfg SummarizeConfig, now func() time.Time, summarize func(context.Context, string) error, log *slog.Logger) {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultSummarizeRate
	}
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	gap := time.Duration(float64(time.Second) / cfg.Rate)
	settled := func() int64 { return dayOf(now().Add(-SettleAfter).UnixMilli()) }
	day := int64(math.MinInt64)
	done := make(map[string]bool)
	var next time.Time // the earliest start of the next Summarize
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
walk:
	for {
		if d := settled(); d != day {
			day = d
			clear(done)
		}
		failed, firstErr := 0, error(nil)
		for _, site := range cfg.Sites() {
			if done[site] {
				continue
			}
			if d := time.Until(next); d > 0 && !wait(d) {
				return
			}
			if ctx.Err() != nil {
				return
			}
			if settled() != day {
				continue walk // another day ended: start again
			}
			next = time.Now().Add(gap)
			if err := summarize(ctx, site); err != nil {
				if failed++; firstErr == nil {
					firstErr = err
				}
				continue
			}
			done[site] = true
		}
		if failed > 0 && ctx.Err() == nil {
			log.Warn("history: sites not summarised; tried again in a while", "sites", failed, "err", firstErr)
		}
		if !wait(cfg.Every) {
			return
		}
	}
}
