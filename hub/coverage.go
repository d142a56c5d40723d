package hub

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// The uncovered alert (site setting uncovered_alert, docs/events.md). A
// widget (the site's, "", or a group's) is uncovered when it is not online
// for a reason other than outside_hours: inside its working hours, nobody
// answers. Its deadline is kept by NATS, as the idle rule's is
// (activity.go), not by a timer of one replica:
//
//   - When a replica's view finds a widget uncovered, it creates the key
//     u.<site>[.<group>] holding {since, reason}, with a TTL of the
//     site's uncovered_alert. Every replica that sees the change tries;
//     Create refuses a key that exists, so one wins.
//   - When the widget is online again, or its hours close, the key is
//     purged (with a compare-and-set on its revision: one purge lands).
//   - When the key expires, every replica's watch sees its marker. Each
//     one whose view still finds the widget uncovered publishes
//     coverage.lost, with an id made of the site, the group and the
//     stored since, so JetStream keeps one copy, and creates the key
//     c.<site>[.<group>] holding the same record: the loss is marked.
//   - When a widget whose loss is marked is online again, the mark is
//     purged (a compare-and-set again), with store.RestoredMarker as the
//     marker's body; every replica's watch sees that marker and
//     publishes coverage.restored, with an id made of the same since
//     and stamped with the marker's time, so every copy is the same.
//
// Whichever replicas die, one that is alive and watching does each step,
// and every step's effect lands once. A replica without events takes no
// part.
//
// When a widget is uncovered, and when its coverage counts as lost or
// restored, is package presence's (coverage.go there); this file keeps the
// keys and carries out its decisions on the rule worker (worker.go).

// coverageState is what the view knows of one widget's coverage keys.
type coverageState struct {
	uncovered    *store.CoverageRecord // the u. key, while it exists
	uncoveredRev uint64
	lost         *store.CoverageRecord // the c. key, while it exists
	lostRev      uint64
	// losing is the record of a u. key that expired while its widget
	// was uncovered: the loss is being marked (the c. key written).
	losing *store.CoverageRecord
	// creating is set while this replica creates the u. key.
	creating bool
	// purgingUncovered and purgingLost are the revisions of the u. and c. keys this
	// replica is purging; any entry of the key ends the attempt.
	purgingUncovered, purgingLost uint64
}

// state is what the rules see of the keys: a clock runs while the u. key
// exists or is being created, a loss is marked while the c. key exists or
// is being written.
func (c *coverageState) state() presence.CoverageState {
	if c == nil {
		return presence.CoverageState{}
	}
	return presence.CoverageState{
		Clock: c.uncovered != nil || c.creating,
		Lost:  c.lost != nil || c.losing != nil,
	}
}

func (c *coverageState) empty() bool {
	return c.uncovered == nil && c.lost == nil && c.losing == nil && !c.creating && c.purgingUncovered == 0 && c.purgingLost == 0
}

// applyCoverageLocked folds an entry of a u. or c. key into the view.
func (r *rules) applyCoverageLocked(s *site, k store.Key, e entry) {
	h := r.h
	c := s.coverage[k.Group]
	if c == nil {
		if e.deleted {
			return
		}
		c = &coverageState{}
		put(&s.coverage, k.Group, c)
	}
	defer func() {
		if c.empty() {
			delete(s.coverage, k.Group)
		}
	}()
	s.pendingLocked().coverageChanged()
	var rec store.CoverageRecord
	if !e.deleted {
		var err error
		if rec, err = store.DecodeCoverageRecord(e.value); err != nil {
			h.log.Error("ignoring bad coverage record", "key", e.key, "err", err)
			return
		}
	}
	// A marker read from the bucket carries its time; a removal found
	// only by absence in a snapshot does not, and is not acted on. Nor
	// is a marker so old that another replica's copy of its event may
	// have left the stream's duplicate window (a replica starting up).
	fresh := !e.at.IsZero() && h.cfg.Now().Sub(e.at) < resyncEventAge && h.events != nil
	switch k.Kind {
	case store.KindUncovered:
		c.creating, c.purgingUncovered = false, 0
		if !e.deleted {
			c.uncovered, c.uncoveredRev = &rec, e.rev
			return
		}
		was := c.uncovered
		c.uncovered, c.uncoveredRev = nil, 0
		if was == nil || len(e.value) > 0 || !fresh || !e.live {
			return // purged, or not news
		}
		// The key expired: the widget was uncovered for the delay, unless
		// it is covered now or the alert was turned off meanwhile. Only a
		// live watch's view is the state just before the marker: a
		// snapshot holds each key's last revision only, so the agents'
		// keys rewritten since (a lease refreshed) would be missing when
		// its marker is applied. A replica that missed the marker leaves
		// it to the others; if every one did, the widget, still uncovered
		// and not lost, gets a new deadline.
		w, _ := s.presence.WidgetAt(k.Group, h.cfg.Now())
		if !presence.CoverageLost(s.settingsLocked().UncoveredAfter(), w, c.state()) {
			return
		}
		siteID, group, at, lost := s.id, k.Group, e.at, *was
		if h.rules.worker.enqueue(ruleKey{ruleCoverageLose, siteID, group}, ruleFunc(func(ctx context.Context) {
			h.rules.loseCoverage(ctx, siteID, group, lost, at)
		})) {
			c.losing = was
		}
	case store.KindCoverageLost:
		// Any entry of the mark after an expiry is the loss marked (and,
		// for a marker, restored already: a watch that ran behind may
		// never read the put).
		c.purgingLost, c.losing = 0, nil
		if !e.deleted {
			c.lost, c.lostRev = &rec, e.rev
			return
		}
		was := c.lost
		c.lost, c.lostRev = nil, 0
		if was == nil || string(e.value) != string(store.RestoredMarker) || !fresh {
			return
		}
		ev := coverageEvent(s.id, k.Group, was.Since, events.TypeCoverageRestored, e.at, events.CoverageRestoredData{
			Group: k.Group, LostFor: presence.LostFor(was.Since, e.at),
		})
		part, rev := h.store.PartitionOf(s.id), e.rev
		h.rules.worker.enqueue(ruleKey{ruleCoverageRestored, s.id, ev.ID}, ruleFunc(func(context.Context) {
			h.publishEvents(part, rev, []events.Event{ev})
		}))
	}
}

// loseCoverage publishes coverage.lost for a widget whose u. key expired
// at at (the partition's owner publishes it, its standby keeps it:
// event_duty.go), and marks the loss with its c. key. Every replica that saw
// the expiry marks it: Create writes the key once. A Create so late that the mark was written and removed
// meanwhile (the widget online again) writes it again (Create takes a
// removed key); the widget is online, so it is removed again, and the
// second coverage.restored, named by the same since, is a copy JetStream
// drops.
func (r *rules) loseCoverage(ctx context.Context, siteID, group string, rec store.CoverageRecord, at time.Time) {
	h := r.h
	h.publishEvents(h.store.PartitionOf(siteID), 0, []events.Event{coverageEvent(siteID, group, rec.Since, events.TypeCoverageLost, at, events.CoverageLostData{
		Group: group, Since: protocol.Time(rec.Since), Reason: rec.Reason,
	})})
	ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
	defer cancel()
	// Created or not (another replica marked it), the loss is marked.
	_, err := h.store.For(siteID).CreateRetrying(ctx, store.CoverageKey(store.KindCoverageLost, siteID, group), rec, 0)
	if err == nil {
		return
	}
	if ctx.Err() == nil {
		h.log.Warn("failed to mark a widget's coverage lost", "site", siteID, "group", group, "err", err)
	}
	// Let the view start over: a widget still uncovered gets a new
	// deadline.
	if s := h.view.lockExistingSite(siteID); s != nil {
		if c := s.coverage[group]; c != nil && c.losing != nil {
			c.losing = nil
			s.pendingLocked().coverageChanged()
		}
		h.view.unlockSite(s)
	}
}

// coverageEvent builds an event of the uncovered alert. Its id is
// "coverage.<site>.<group>.<since, Unix nanoseconds>.<type>": the same on
// every replica, since every one reads since from the bucket, and one per
// loss of a widget's coverage.
func coverageEvent(siteID, group string, since time.Time, typ string, at time.Time, data any) events.Event {
	return events.New(siteID, "coverage."+siteID+"."+group+"."+strconv.FormatInt(since.UnixNano(), 10)+"."+typ, typ, at, data)
}

// checkCoverageLocked compares the site's widgets with their coverage keys
// and carries out what presence.CheckCoverage calls for: a u. key for a
// widget newly uncovered, a purge of the u. key of one that is not any
// more, a purge of the c. key of one that is online again. A write of a
// key already under way is not started again, and a restore waits for the
// loss's mark to be written. It runs whenever the view tells a site's
// changes (flushLocked), which includes the site's working-hours
// boundaries (onBoundary) and entries of coverage keys.
func (r *rules) checkCoverageLocked(s *site, now time.Time) {
	h := r.h
	if h.events == nil {
		return
	}
	alert := s.settingsLocked().UncoveredAfter()
	if alert == 0 && len(s.coverage) == 0 {
		return
	}
	for _, g := range h.rules.coverageGroupsLocked(s) {
		w, _ := s.presence.WidgetAt(g, now)
		c := s.coverage[g]
		act := presence.CheckCoverage(alert, w, c.state())
		if act.StartClock {
			siteID, group, rec := s.id, g, store.CoverageRecord{Since: now, Reason: w.Reason}
			if h.rules.worker.enqueue(ruleKey{ruleCoverageClock, siteID, group}, ruleFunc(func(ctx context.Context) {
				h.rules.startCoverageClock(ctx, siteID, group, rec, alert)
			})) {
				if c == nil {
					c = &coverageState{}
					put(&s.coverage, g, c)
				}
				c.creating = true
			}
		}
		if act.StopClock && c.uncovered != nil && c.purgingUncovered == 0 {
			c.purgingUncovered = c.uncoveredRev
			h.rules.purgeCoverageLocked(s, g, store.KindUncovered, c.uncoveredRev, store.ClearedMarker)
		}
		if act.Restore && c.lost != nil && c.purgingLost == 0 {
			c.purgingLost = c.lostRev
			h.rules.purgeCoverageLocked(s, g, store.KindCoverageLost, c.lostRev, store.RestoredMarker)
		}
	}
	for g, c := range s.coverage {
		if c.empty() {
			delete(s.coverage, g)
		}
	}
}

// coverageGroupsLocked lists the widgets whose coverage is checked: the
// site's, every group the rules know, the groups of the agents the pending
// changes touched (a group whose last member left is no longer one the
// rules know), those with coverage keys and, when the settings changed,
// the groups of every agent record.
func (r *rules) coverageGroupsLocked(s *site) []string {
	groups := append([]string{""}, s.presence.Groups()...)
	p := s.pending
	if p == nil {
		p = &pendingChanges{} // none: checked outside a flush
	}
	groups = append(groups, p.agentGroups...)
	for g := range s.coverage {
		groups = append(groups, g)
	}
	if p.allGroups {
		for _, a := range s.agents {
			groups = append(groups, a.rec.Groups...)
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups)
}

// startCoverageClock creates a widget's u. key, which expires after the
// alert's delay. Every replica that found the widget uncovered tries;
// Create refuses a key that exists, so one wins.
func (r *rules) startCoverageClock(ctx context.Context, siteID, group string, rec store.CoverageRecord, alert time.Duration) {
	h := r.h
	wctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
	defer cancel()
	created, err := h.store.For(siteID).CreateRetrying(wctx, store.CoverageKey(store.KindUncovered, siteID, group), rec, alert)
	if created {
		return // the entry, once applied, clears creating
	}
	exists := err == nil // another replica created it
	if !exists && ctx.Err() == nil {
		h.log.Warn("failed to start a widget's uncovered clock", "site", siteID, "group", group, "err", err)
	}
	if s := h.view.lockExistingSite(siteID); s != nil {
		if c := s.coverage[group]; c != nil && c.creating {
			c.creating = false
			if !exists {
				s.pendingLocked().coverageChanged() // try again at the next check
			}
		}
		h.view.unlockSite(s)
	}
}

// purgeCoverageLocked starts purging the coverage key of kind kind of
// group at revision rev with marker as the marker's body; a replica whose
// purge finds another revision (another replica purged it first) gives
// up. The caller has set the attempt's revision (purgingUncovered or purgingLost).
func (r *rules) purgeCoverageLocked(s *site, group string, kind store.Kind, rev uint64, marker []byte) {
	h := r.h
	siteID, key := s.id, store.CoverageKey(kind, s.id, group)
	// attempt returns the field that records this attempt.
	attempt := func(c *coverageState) *uint64 {
		if kind == store.KindUncovered {
			return &c.purgingUncovered
		}
		return &c.purgingLost
	}
	started := h.rules.worker.enqueue(ruleKey{ruleCoveragePurge, siteID, key.String()}, ruleFunc(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, writeTimeout(h))
		defer cancel()
		_, err := h.store.For(key.Site).Purge(ctx, key, rev, marker)
		if err == nil {
			return // the marker, once applied, ends the attempt
		}
		if !errors.Is(err, ErrReplaced) && ctx.Err() == nil {
			h.log.Warn("failed to purge a coverage key", "site", siteID, "key", key, "err", err)
		}
		if s := h.view.lockExistingSite(siteID); s != nil {
			if c := s.coverage[group]; c != nil && *attempt(c) == rev {
				*attempt(c) = 0
				if !errors.Is(err, ErrReplaced) {
					s.pendingLocked().coverageChanged() // try again at the next check
				}
			}
			h.view.unlockSite(s)
		}
	}))
	if !started {
		*attempt(s.coverage[group]) = 0
	}
}
