package history

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/internal/jsretry"
)

// Summaries live in a stream of their own (Config.Summaries, created by
// OpenSummaries), one message per part (summary.go) on
// presence.history.v<version>.<site>.<YYYY-MM-DD>.<part>. A site's first
// query reads the site's summaries, applies the run of them that follows
// on from the event stream's start without a gap, then reads the event
// stream after the last one. The replica that loaded a site writes the
// parts it read from the event stream once they are complete, each only if
// its subject holds none yet (Nats-Expected-Last-Subject-Sequence 0): the
// same events make the same bytes, so whichever replica writes a part
// first, it is the part every replica would write. Writes happen on the
// queries of the site, and a write that fails is tried again at the site's
// next query; the owner of the site's partition also writes them once a
// day, best effort (Summarize, SummarizeSites in summarize.go), so that a
// site nobody asked about has them.
const (
	// DefaultSummaries is the summaries' stream by default.
	DefaultSummaries = "PRESENCE_HISTORY"
	// SummarySubjectPrefix starts every summary's subject.
	SummarySubjectPrefix = "presence.history."
	// SettleAfter is how long after a day ends a replica that writes a
	// site's summaries takes the day as complete, even when no later event of the site came
	// yet: more than events.MaxRetryAge, after which no replica publishes
	// an event, with room for replicas' clocks to disagree. A day with a
	// later event of the site is complete at once (summary.go's days). It
	// only decides when a part is written, never what the answers are: a
	// message that came after its part was written is read from the event
	// stream, after the part, in its place.
	SettleAfter = 10 * time.Minute
	// summaryMargin: summaries are kept this much longer than the events
	// they hold, since a day's summary is written after the day.
	summaryMargin = 2 * 24 * time.Hour
)

// OpenSummaries creates the summaries' stream, or updates an existing one
// to cfg (its Name by default DefaultSummaries, its Retention the event
// stream's): it keeps summaries two days longer than the event stream
// keeps events.
func OpenSummaries(ctx context.Context, js jetstream.JetStream, cfg events.StreamConfig) (jetstream.Stream, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultSummaries
	}
	cfg = cfg.WithDefaults()
	s, err := jsretry.OpenStream(ctx, js, jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "presencehub: daily summaries of the event stream for the history (docs/events.md#daily-summaries)",
		Subjects:    []string{SummarySubjectPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Retention + summaryMargin,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to open history summaries stream %q: %w", cfg.Name, err)
	}
	return s, nil
}

// summaryPrefix starts the subjects of site's summaries of this version.
func summaryPrefix(site string) string {
	return SummarySubjectPrefix + "v" + strconv.Itoa(summaryVersion) + "." + site + "."
}

func summarySubject(site string, day int64, n int) string {
	return summaryPrefix(site) + dayDate(day) + "." + strconv.Itoa(n)
}

// link is one summary read from the stream.
type link struct {
	day int64
	n   int
	header
	data []byte
}

// loadSummaries applies to e the site's summaries that follow on from
// the event stream's start, and gives e the builder of the parts read
// after them. It returns the last sequence they hold (0: none). A failure
// to read them is logged: the site is then read from the event stream.
func (x *Index) loadSummaries(ctx context.Context, e *siteEntry, stream jetstream.Stream) uint64 {
	info, err := stream.Info(ctx)
	if err != nil {
		x.cfg.Logger.Warn("history: reading the site from the event stream alone", "site", e.site, "err", fmt.Errorf("failed to read event stream %q: %w", x.cfg.Stream, err))
		return 0
	}
	b := &builder{day: math.MinInt64, epoch: uint64(info.Created.UnixNano()), limit: x.partBytes,
		settled: dayOf(x.cfg.Now().Add(-SettleAfter).UnixMilli())}
	defer func() {
		x.mu.Lock()
		e.b = b
		x.mu.Unlock()
	}()
	if info.State.Msgs == 0 {
		return 0
	}
	chain, err := x.readChain(ctx, e.site, b.epoch, info.State.FirstSeq)
	if err != nil {
		x.cfg.Logger.Warn("history: reading the site from the event stream alone", "site", e.site, "err", err)
		return 0
	}
	chain = x.stillThere(ctx, stream, e.site, chain, info.State.FirstSeq)
	var ops []op
	for _, l := range chain {
		ops = ops[:0]
		if err := decodeSummary(l.data, func(o op) { ops = append(ops, o) }); err != nil {
			x.cfg.Logger.Warn("history: a summary does not decode; reading the site from the event stream after the one before it",
				"site", e.site, "subject", summarySubject(e.site, l.day, l.n), "err", err)
			break
		}
		x.mu.Lock()
		for _, o := range ops {
			if o.seq >= info.State.FirstSeq { // older ones left the stream
				x.applyOp(e.idx, o)
			}
		}
		x.mu.Unlock()
		e.summaries.Add(1)
		b.day, b.n, b.to = l.day, l.n, l.to
	}
	return b.to
}

// readChain returns the site's summaries of epoch that follow each other
// without a gap, the first beginning before the event stream's first
// sequence (nothing before it is left).
func (x *Index) readChain(ctx context.Context, site string, epoch, firstSeq uint64) ([]link, error) {
	stream, err := x.cfg.JetStream.Stream(ctx, x.cfg.Summaries)
	if err != nil {
		return nil, fmt.Errorf("failed to open history summaries stream %q: %w", x.cfg.Summaries, err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     summaryPrefix(site) + ">",
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read site %s in history summaries stream %q: %w", site, x.cfg.Summaries, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(ctx, cons.CachedInfo().Name) // else gone when inactive
	}()
	var links []link
	for pending := cons.CachedInfo().NumPending; pending > 0; {
		// Without waiting: a summary that expired since the consumer
		// began is not waited for.
		batch, err := cons.FetchNoWait(int(min(pending, 256)))
		if err != nil {
			return nil, fmt.Errorf("failed to read site %s in history summaries stream %q: %w", site, x.cfg.Summaries, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			pending--
			l, ok := parseLink(m.Subject(), m.Data())
			if ok {
				if h, err := summaryHeader(l.data); err == nil && h.epoch == epoch {
					l.header = h
					links = append(links, l)
				}
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("failed to read site %s in history summaries stream %q: %w", site, x.cfg.Summaries, err)
		}
		if got == 0 {
			break
		}
	}
	slices.SortFunc(links, func(a, b link) int { return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to)) })
	if len(links) == 0 || links[0].from >= firstSeq {
		return nil, nil
	}
	chain := links[:1]
	for _, l := range links[1:] {
		last := chain[len(chain)-1].to
		if l.from > last {
			break // a gap: the rest is read from the event stream
		}
		if l.from == last && l.to > l.from {
			chain = append(chain, l)
		}
	}
	return chain, nil
}

// stillThere returns the links of chain up to the last whose last message
// is still the one the event stream holds at its sequence: after a
// restore of the stream from an older backup, the summaries written since
// name messages the stream does not hold, or holds others at their
// sequences. Links before the stream's first sequence hold nothing that is
// applied, and are kept.
func (x *Index) stillThere(ctx context.Context, stream jetstream.Stream, site string, chain []link, firstSeq uint64) []link {
	for i := len(chain) - 1; i >= 0 && chain[i].to >= firstSeq; i-- {
		m, err := stream.GetMsg(ctx, chain[i].to)
		if err == nil && m.Time.UnixNano() == chain[i].stored {
			break
		}
		x.cfg.Logger.Warn("history: a summary names an event the event stream does not hold (restored from a backup?); reading the stream from the summary before it",
			"subject", summarySubject(site, chain[i].day, chain[i].n), "seq", chain[i].to, "err", err)
		chain = chain[:i]
	}
	return chain
}

// parseLink reads a summary's day and part from its subject.
func parseLink(subject string, data []byte) (link, bool) {
	toks := strings.Split(subject, ".")
	if len(toks) < 3 {
		return link{}, false
	}
	d, err := time.Parse(time.DateOnly, toks[len(toks)-2])
	n, nerr := strconv.Atoi(toks[len(toks)-1])
	if err != nil || nerr != nil {
		return link{}, false
	}
	return link{day: dayOf(d.UnixMilli()), n: n, data: data}, true
}

// writeSummaries writes e's parts that are complete, each if its subject
// holds none yet, on the caller's goroutine; another query of the site
// writing them already, it returns. Days that ended SettleAfter ago by now
// are complete, even when they were not yet at the site's load. A part
// already there, written by another replica, is the same bytes; if not
// (replicas that disagree on a day's end, clocks apart by more than
// SettleAfter), e writes no more, and readers read the event stream from
// that part on.
func (x *Index) writeSummaries(ctx context.Context, e *siteEntry) {
	settled := dayOf(x.cfg.Now().Add(-SettleAfter).UnixMilli())
	x.mu.Lock()
	if e.b != nil {
		e.b.settled = max(e.b.settled, settled)
	}
	ready := e.b != nil && e.b.anyReady()
	x.mu.Unlock()
	if !ready || !e.writing.TryLock() {
		return
	}
	defer e.writing.Unlock()
	x.mu.Lock()
	var parts []*part
	var data [][]byte
	if e.b != nil {
		parts = e.b.ready()
		for _, p := range parts {
			data = append(data, p.encode())
		}
	}
	x.mu.Unlock()
	if len(parts) == 0 {
		return
	}
	written, err := x.writeParts(ctx, e.site, parts, data)
	x.mu.Lock()
	switch {
	case errors.Is(err, errDiffers):
		e.b = nil
	case e.b != nil:
		e.b.written(written)
	}
	x.mu.Unlock()
	if err != nil && !errors.Is(err, errDiffers) {
		x.cfg.Logger.Warn("history: summary not written; it will be at the site's next query", "site", e.site, "err", err)
	}
}

// errDiffers is a part whose subject holds another summary.
var errDiffers = errors.New("another replica's summary differs")

// writeParts writes site's parts, data their encoding, in order, each if
// its subject holds none yet, and returns how many it wrote or found
// written with the same bytes. It stops at the first that fails, or that
// holds another summary (errDiffers, logged here: the caller writes no
// more of the site's).
func (x *Index) writeParts(ctx context.Context, site string, parts []*part, data [][]byte) (int, error) {
	for i, p := range parts {
		subject := summarySubject(site, p.day, p.n)
		_, err := x.cfg.JetStream.Publish(ctx, subject, data[i], jetstream.WithExpectStream(x.cfg.Summaries), jetstream.WithExpectLastSequencePerSubject(0))
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			same, err := x.sameSummary(ctx, subject, data[i])
			if err != nil {
				return i, err
			}
			if !same {
				x.cfg.Logger.Warn("history: another replica's summary differs; this replica writes no more of the site's", "site", site, "subject", subject)
				return i, errDiffers
			}
			continue
		}
		if err != nil {
			return i, fmt.Errorf("failed to write history summary %s: %w", subject, err)
		}
	}
	return len(parts), nil
}

// sameSummary reports whether the summary on subject is data.
func (x *Index) sameSummary(ctx context.Context, subject string, data []byte) (bool, error) {
	stream, err := x.cfg.JetStream.Stream(ctx, x.cfg.Summaries)
	if err != nil {
		return false, fmt.Errorf("failed to open history summaries stream %q: %w", x.cfg.Summaries, err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return false, fmt.Errorf("failed to read history summary %s: %w", subject, err)
	}
	return bytes.Equal(m.Data, data), nil
}
