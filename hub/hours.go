package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// Working hours: each schedule in the view has one timer, armed for its next
// boundary. Every replica arms its own from the same bucket state, so every
// replica's widgets flip at the same instant, with no polling and nothing
// but the schedule itself shared.

func (h *Hub) applyHoursLocked(s *siteState, group string, e entry) {
	if e.deleted {
		if _, ok := s.hours[group]; !ok {
			return
		}
		delete(s.hours, group)
	} else {
		sched, err := presence.ParseSchedule(e.value)
		if err != nil {
			h.log.Error("ignoring bad schedule", "key", e.key, "err", err)
			return
		}
		if old, ok := s.hours[group]; ok && reflect.DeepEqual(old, sched) {
			return // a reconcile re-applying what the view holds
		}
		s.hours[group] = sched
	}
	h.hoursChangedLocked(s, group)
}

// hoursChangedLocked re-arms group's timer and sends what its schedule now
// means: widget frames where widgets moved, and the site's open state to
// its agents when the site's own hours changed.
func (h *Hub) hoursChangedLocked(s *siteState, group string) {
	if ht := s.timers[group]; ht != nil {
		ht.t.Stop()
		delete(s.timers, group)
	}
	now := h.cfg.Now()
	if sched := s.hours[group]; sched != nil {
		if _, next := sched.OpenAt(now); !next.IsZero() {
			ht := &hoursTimer{}
			ht.t = time.AfterFunc(next.Sub(now), func() { h.onBoundary(s.id, group, ht) })
			s.timers[group] = ht
		}
	}
	h.refreshWidgetsLocked(s, func(g string) bool {
		if group == "" {
			return g == "" || s.hours[g] == nil // groups without their own hours follow the site's
		}
		return g == group
	})
	if group != "" {
		return
	}
	hours := h.siteHoursLocked(s, now)
	if reflect.DeepEqual(hours, s.hoursSent) {
		return
	}
	s.hoursSent = hours
	frame := encode(hoursFrame{Type: "hours", Hours: hours})
	for agent := range s.local {
		h.sendToAgentLocked(s, agent, frame)
	}
}

// hoursTimer is a schedule's armed timer; its identity tells a firing timer
// whether it is still the current one.
type hoursTimer struct {
	t *time.Timer // guarded by Hub.mu
}

// onBoundary runs when a schedule's timer fires.
func (h *Hub) onBoundary(site, group string, ht *hoursTimer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sites[site]
	if s == nil || s.timers[group] != ht {
		return // the schedule changed or went away since the timer was armed
	}
	h.hoursChangedLocked(s, group)
}

// siteHoursLocked is the site's open state under its own working hours.
func (h *Hub) siteHoursLocked(s *siteState, now time.Time) Hours {
	sched := s.hours[""]
	if sched == nil {
		return Hours{Open: true}
	}
	open, next := sched.OpenAt(now)
	return Hours{Open: open, NextChange: optionalTime(next)}
}

func (h *Hub) stopTimers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sites {
		for group, ht := range s.timers {
			ht.t.Stop()
			delete(s.timers, group)
		}
	}
}

func (h *Hub) applySettingsLocked(s *siteState, e entry) {
	if e.deleted {
		s.settings, s.hasSettings = SiteSettings{}, false
		return
	}
	settings, err := decodeSettings(e.value)
	if err != nil {
		h.log.Error("ignoring bad site settings", "key", e.key, "err", err)
		return
	}
	s.settings, s.hasSettings = settings, true
}

// Schedule returns the working hours of (site, group), group "" meaning the
// site's own, from the view.
func (h *Hub) Schedule(site, group string) (*presence.Schedule, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sites[site]; s != nil {
		if sched, ok := s.hours[group]; ok {
			return sched, true
		}
	}
	return nil, false
}

// PutSchedule stores the working hours of (site, group) for every replica
// and returns once this replica applies them. The schedule must be valid.
func (h *Hub) PutSchedule(ctx context.Context, site, group string, sched *presence.Schedule) error {
	if err := sched.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(sched)
	if err != nil {
		return fmt.Errorf("failed to encode schedule: %w", err)
	}
	return h.put(ctx, hoursKey(site, group), b)
}

// DeleteSchedule removes the working hours of (site, group); it reports
// whether there were any.
func (h *Hub) DeleteSchedule(ctx context.Context, site, group string) (bool, error) {
	if _, ok := h.Schedule(site, group); !ok {
		return false, nil
	}
	return true, h.purge(ctx, hoursKey(site, group))
}

// Settings returns the site's settings from the view.
func (h *Hub) Settings(site string) SiteSettings {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sites[site]; s != nil {
		return SiteSettings{AllowedOrigins: slices.Clone(s.settings.AllowedOrigins)}
	}
	return SiteSettings{}
}

// PutSettings stores the site's settings for every replica and returns once
// this replica applies them.
func (h *Hub) PutSettings(ctx context.Context, site string, settings SiteSettings) error {
	if settings.AllowedOrigins == nil {
		settings.AllowedOrigins = []string{}
	}
	b, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("failed to encode settings: %w", err)
	}
	return h.put(ctx, settingsKey(site), b)
}

func (h *Hub) put(ctx context.Context, key string, value []byte) error {
	if !h.Ready() {
		return ErrNotReady
	}
	rev, err := h.kv.Put(ctx, key, value)
	h.metrics.kvOp("put", err)
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", key, err)
	}
	return h.waitApplied(ctx, rev)
}

func (h *Hub) purge(ctx context.Context, key string) error {
	if !h.Ready() {
		return ErrNotReady
	}
	rev, err := h.purgeKey(ctx, key, 0)
	if err != nil {
		return fmt.Errorf("failed to remove %s: %w", key, err)
	}
	return h.waitApplied(ctx, rev)
}
