package main

import (
	"context"
	"fmt"
	"math"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/hub/history"
)

// checkHistory checks the --history-* flags.
func (c *serveConfig) checkHistory() error {
	if c.historySites < 1 {
		return fmt.Errorf("invalid --history-sites %d: at least 1", c.historySites)
	}
	if c.historySums != "none" && !bucketName.MatchString(c.historySums) {
		return fmt.Errorf("invalid --history-summaries %q: letters, digits, _ and - only, or none", c.historySums)
	}
	if c.historySums != "none" && c.historySums == c.eventStream {
		return fmt.Errorf("invalid --history-summaries %q: the event stream's name (--events-stream)", c.historySums)
	}
	if c.summarizeRate < 0 || math.IsNaN(c.summarizeRate) || math.IsInf(c.summarizeRate, 0) {
		return fmt.Errorf("invalid --history-summarize-rate %v: sites a second, 0 for none", c.summarizeRate)
	}
	return nil
}

// summarizesOwned reports whether the replica writes the daily summaries
// of the sites it owns (--history-summarize-rate), which needs the
// history and its summaries.
func (c *serveConfig) summarizesOwned() bool {
	return c.eventStream != "none" && c.historySums != "none" && c.summarizeRate > 0
}

// summarizeOwned writes, until ctx is done, the daily summaries of the
// sites of the partitions h owns, at --history-summarize-rate sites a
// second at most (docs/events.md#daily-summaries).
func summarizeOwned(ctx context.Context, cfg *serveConfig, x *history.Index, h *hub.Hub) error {
	return x.SummarizeSites(ctx, history.SummarizeConfig{Sites: h.OwnedSites, Rate: cfg.summarizeRate})
}
