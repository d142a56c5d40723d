package hub

import (
	"context"
	"time"

	"github.com/presencehub/presencehub/hub/change"
	"github.com/presencehub/presencehub/hub/store"
	"github.com/presencehub/presencehub/presence"
)

// Applying bucket entries to the view. Every entry is applied by
// applyEntryLocked, which returns its change record (package change): the
// frames for local subscribers are derived from the records gathered in the
// site's pending changes (frames.go), and the events from each record
// (events.Derive).

// applyEntryLocked applies entry e of key k to site s, gathers its change
// record for the site's next frames and returns it. withWidgets fills in
// the states of the widgets the entry can move, before and after, which
// only the events need (frames compare with what they last sent).
//
// An entry no newer than the last one the view applied of its key (the
// whole-bucket watch and a site's follow both bring it, or a load read it
// first) changes nothing: ok is false.
func (v *view) applyEntryLocked(s *site, k store.Key, e entry, withWidgets bool) (_ change.Record, ok bool) {
	h := v.h
	if !s.revs.newer(e.key, e.rev, e.deleted, h.cfg.Now()) {
		return change.Record{}, false
	}
	rec := change.Record{Site: s.id, Key: k, Rev: e.rev, At: e.at, Removed: e.deleted, Partition: h.store.PartitionOf(s.id)}
	if e.deleted {
		rec.Marker = e.value
	}
	touched := h.view.touchedLocked(s, k, e)
	agentKind := k.Kind == store.KindAgent || k.Kind == store.KindLease
	if agentKind {
		rec.Agent.Before = h.view.agentNowLocked(s, k.Agent)
	}
	if k.Kind == store.KindLease {
		d, ok := s.devices[e.key]
		rec.Lease.Before, rec.Lease.Had = d.rec, ok
	}
	if withWidgets {
		groups := touched.Expand(s.presence)
		rec.Widgets = make([]change.Widget, len(groups))
		for i, g := range groups {
			w, next := s.presence.WidgetAt(g, e.at)
			rec.Widgets[i] = change.Widget{Group: g, Before: change.WidgetState{Widget: w, Next: next}}
		}
	}
	h.view.applyKeyLocked(s, k, e)
	if agentKind {
		rec.Agent.After = h.view.agentNowLocked(s, k.Agent)
	}
	if k.Kind == store.KindLease {
		d, ok := s.devices[e.key]
		rec.Lease.After, rec.Lease.Has = d.rec, ok
	}
	for i := range rec.Widgets {
		w, next := s.presence.WidgetAt(rec.Widgets[i].Group, e.at)
		rec.Widgets[i].After = change.WidgetState{Widget: w, Next: next}
	}
	s.pendingLocked().add(rec, touched, e.live)
	return rec, true
}

// touchedLocked returns the widgets entry e of key k can move, as
// change.TouchedBy decides from the view before e is applied.
func (v *view) touchedLocked(s *site, k store.Key, e entry) change.Touched {
	var rec, next *store.AgentRecord
	if st, ok := s.agents[k.Agent]; ok {
		rec = &st.rec
	}
	agent, _ := s.presence.Agent(k.Agent)
	if k.Kind == store.KindAgent && !e.deleted {
		if r, err := store.DecodeAgentRecord(e.value); err == nil {
			next = &r
		}
	}
	return change.TouchedBy(k, rec, agent, next)
}

// agentNowLocked returns agent as the view holds it now.
func (v *view) agentNowLocked(s *site, agent string) change.AgentState {
	var st change.AgentState
	if a, ok := s.agents[agent]; ok {
		st.Record, st.HasRecord = a.rec, true
	}
	st.Effective = presence.Offline
	if a, ok := s.presence.Agent(agent); ok {
		st.Effective, st.Groups = a.Effective(), a.Groups
		for _, d := range a.LiveDevices() {
			st.Live = append(st.Live, d.ID+"/"+string(d.State)) // a move to the background is news
		}
	}
	return st
}

// entry is one bucket update: a put of value, or the key's removal.
type entry struct {
	key     string
	rev     uint64
	value   []byte
	deleted bool
	at      time.Time // when NATS stored it; zero for a removal found by absence
	// live is set for an entry the watch read after loading, not one of
	// a snapshot: the view held everything before it when it came.
	live bool
}

// applyKeyLocked folds one bucket entry of site s into the view; what it
// changes is told when s is unlocked.
func (v *view) applyKeyLocked(s *site, k store.Key, e entry) {
	h := v.h
	switch k.Kind {
	case store.KindAgent:
		h.view.applyAgentLocked(s, k.Agent, e)
	case store.KindLease:
		h.view.applyDeviceLocked(s, k, e)
	case store.KindHours:
		h.view.applyHoursLocked(s, k.Group, e)
	case store.KindSettings:
		h.view.applySettingsLocked(s, e)
	case store.KindActivity:
		h.rules.applyActivityLocked(s, k, e)
	case store.KindUncovered, store.KindCoverageLost:
		h.rules.applyCoverageLocked(s, k, e)
	}
}

func (v *view) applyAgentLocked(s *site, agent string, e entry) {
	h := v.h
	if e.deleted {
		delete(s.agents, agent)
		s.presence.RemoveAgent(agent)
		return
	}
	rec, err := store.DecodeAgentRecord(e.value)
	if err != nil {
		h.log.Error("ignoring bad agent record", "key", e.key, "err", err)
		return
	}
	put(&s.agents, agent, storedAgent{rec: rec, rev: e.rev})
	s.presence.SetAgent(agent, rec.Status, rec.Groups)
}

func (v *view) applyDeviceLocked(s *site, k store.Key, e entry) {
	h := v.h
	before, known := s.presence.Agent(k.Agent)
	wasLingering := known && before.Lingering()
	revoked := e.deleted && string(e.value) == string(store.RevokedMarker)
	if e.deleted {
		delete(s.devices, e.key)
		s.presence.RemoveDevice(k.Agent, k.Device)
		if revoked {
			h.kickRevokedLocked(s, k)
		}
	} else {
		rec, err := store.DecodeDeviceRecord(e.value)
		if err != nil {
			h.log.Error("ignoring bad device record", "key", e.key, "err", err)
			return
		}
		put(&s.devices, e.key, storedDevice{rec: rec, written: e.at})
		s.presence.SetDevice(k.Agent, presence.Device{
			ID: k.Device, Kind: rec.Kind, Since: rec.Since, Session: rec.Session, State: rec.State,
		})
		h.view.kickReplacedLocked(s, k, rec.Session)
		if !rec.Held() {
			h.view.reassertLocked(s, k, rec.Session)
		}
	}
	if revoked {
		return // a grace an admin cut short did not run out
	}
	a, ok := s.presence.Agent(k.Agent)
	h.metrics.observeGrace(wasLingering, a, ok)
}

// kickReplacedLocked closes a local session whose device has been taken over
// by a newer session (the same device id connected again elsewhere).
func (v *view) kickReplacedLocked(s *site, k store.Key, session string) {
	h := v.h
	for sess := range s.local[k.Agent] {
		if sess.device == k.Device && sess.id != session {
			h.log.Debug("device session replaced", "site", k.Site, "agent", k.Agent, "device", k.Device)
			h.fanout.dropLocked(s, sess.sub, ErrReplaced)
		}
	}
}

// reassertLocked writes again, in the background, the lease of a live
// local session that another replica wrote as dropped: it took this
// replica for gone (its liveness key ran out while it was cut off) and
// handed its leases over after, or while, this replica asserted them
// again. A session that ended wrote its drop itself, and is left alone.
func (v *view) reassertLocked(s *site, k store.Key, session string) {
	h := v.h
	for sess := range s.local[k.Agent] {
		if sess.device != k.Device || sess.id != session {
			continue
		}
		h.goBackground(func(ctx context.Context) {
			if err := sess.refresh(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("failed to assert again a lease another replica dropped", "site", sess.site, "agent", sess.agent, "device", sess.device, "err", err)
			}
		})
	}
}

func (v *view) applySettingsLocked(s *site, e entry) {
	h := v.h
	s.pendingLocked().settingsChanged()
	if e.deleted {
		s.settings = nil
		return
	}
	settings, err := decodeSettings(e.value)
	if err != nil {
		h.log.Error("ignoring bad site settings", "key", e.key, "err", err)
		return
	}
	before := s.settingsLocked().IdleAfter()
	s.settings = &siteSettings{rules: settings, at: e.at}
	if after := settings.IdleAfter(); after > 0 && after != before && h.view.isLoaded() {
		// The idle rule was turned on or changed: online agents' clocks
		// start now (the load starts them for a replica starting up).
		h.rules.startIdleClocksLocked(s)
	}
}
