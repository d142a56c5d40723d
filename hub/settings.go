package hub

import (
	"fmt"
	"slices"
	"time"

	"github.com/presencehub/presencehub/presence"
)

// Site settings beyond allowed origins: the rules that make "online" mean
// that someone will answer (docs/protocol.md, site settings).

// IdleSettings is the idle rule: an agent whose status is online and none
// of whose devices has shown activity for After gets Status.
type IdleSettings struct {
	After  string          `json:"after"`  // a Go duration, 1s to 24h
	Status presence.Status `json:"status"` // busy or offline
}

// BackgroundSettings is the mobile background mode: a mobile device that
// says it goes to the background keeps its lease for Max.
type BackgroundSettings struct {
	Max string `json:"max"` // a Go duration, 1m to 7 days
}

// Bounds of the settings' durations.
const (
	MinIdleAfter      = time.Second
	MaxIdleAfter      = 24 * time.Hour
	MinBackgroundMax  = time.Minute
	MaxBackgroundMax  = 7 * 24 * time.Hour
	MinUncoveredAlert = time.Second
	MaxUncoveredAlert = 24 * time.Hour
)

// SettingsError is a setting refused, naming it.
type SettingsError struct {
	Field string // "idle.after"
	Msg   string
}

func (e *SettingsError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks the settings and returns a *SettingsError naming the
// first bad one.
func (s SiteSettings) Validate() error {
	if s.Idle != nil {
		if _, err := parseBounded("idle.after", s.Idle.After, MinIdleAfter, MaxIdleAfter); err != nil {
			return err
		}
		if !slices.Contains([]presence.Status{presence.Busy, presence.Offline}, s.Idle.Status) {
			return &SettingsError{Field: "idle.status", Msg: fmt.Sprintf("%q: want busy or offline", s.Idle.Status)}
		}
	}
	if s.Background != nil {
		if _, err := parseBounded("background.max", s.Background.Max, MinBackgroundMax, MaxBackgroundMax); err != nil {
			return err
		}
	}
	if s.UncoveredAlert != "" {
		if _, err := parseBounded("uncovered_alert", s.UncoveredAlert, MinUncoveredAlert, MaxUncoveredAlert); err != nil {
			return err
		}
	}
	return nil
}

func parseBounded(field, v string, lo, hi time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, &SettingsError{Field: field, Msg: "missing"}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, &SettingsError{Field: field, Msg: fmt.Sprintf("%q is not a duration such as 15m", v)}
	}
	if d < lo || d > hi {
		return 0, &SettingsError{Field: field, Msg: fmt.Sprintf("%v is out of range: %v to %v", d, lo, hi)}
	}
	return d, nil
}

// idleAfter returns the idle rule's delay, or 0 when the rule is off.
func (s SiteSettings) idleAfter() time.Duration {
	if s.Idle == nil {
		return 0
	}
	d, _ := time.ParseDuration(s.Idle.After) // validated when stored
	return d
}

// backgroundMax returns how long a background lease lasts, or 0 when
// background mode is off.
func (s SiteSettings) backgroundMax() time.Duration {
	if s.Background == nil {
		return 0
	}
	d, _ := time.ParseDuration(s.Background.Max)
	return d
}

// uncoveredAlert returns how long a widget may stay uncovered before
// coverage.lost, or 0 when the alert is off.
func (s SiteSettings) uncoveredAlert() time.Duration {
	if s.UncoveredAlert == "" {
		return 0
	}
	d, _ := time.ParseDuration(s.UncoveredAlert) // validated when stored
	return d
}

// clone returns a deep copy, for handing out of the view.
func (s SiteSettings) clone() SiteSettings {
	s.AllowedOrigins = slices.Clone(s.AllowedOrigins)
	if s.Idle != nil {
		idle := *s.Idle
		s.Idle = &idle
	}
	if s.Background != nil {
		bg := *s.Background
		s.Background = &bg
	}
	return s
}
