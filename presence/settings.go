package presence

import (
	"fmt"
	"slices"
	"time"
)

// Site settings: the rules that make "online" mean that someone will
// answer, and their bounds (docs/protocol.md, site settings). Settings is
// stored as JSON in the bucket and is the admin API's body, so its field
// names are part of both.

// Settings are a site's settings, set through the admin API.
type Settings struct {
	// AllowedOrigins lists the origins ("https://shop.example") allowed to
	// open widget sockets for the site; empty allows any.
	AllowedOrigins []string `json:"allowed_origins"`
	// Idle, when set, turns an online agent without activity for its
	// After into its Status (idle.go).
	Idle *IdleSettings `json:"idle,omitempty"`
	// SignOffAtClose sets online and busy agents offline when the working
	// hours that govern them close (signoff.go).
	SignOffAtClose bool `json:"sign_off_at_close,omitempty"`
	// Background, when set, lets mobile devices keep their lease for up
	// to its Max while their app is in the background.
	Background *BackgroundSettings `json:"background,omitempty"`
	// UncoveredAlert, when set (a Go duration, 1s to 24h), publishes
	// coverage.lost when the widget of the site or a group stays not
	// online, inside its working hours, for that long, and
	// coverage.restored when it is online again (coverage.go).
	UncoveredAlert string `json:"uncovered_alert,omitempty"`
}

// IdleSettings is the idle rule: an agent whose status is online and none
// of whose devices has shown activity for After gets Status.
type IdleSettings struct {
	After  string `json:"after"`  // a Go duration, 1s to 24h
	Status Status `json:"status"` // busy or offline
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
func (s Settings) Validate() error {
	if s.Idle != nil {
		if _, err := parseBounded("idle.after", s.Idle.After, MinIdleAfter, MaxIdleAfter); err != nil {
			return err
		}
		if s.Idle.Status != Busy && s.Idle.Status != Offline {
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

// The accessors below read settings that Validate accepted when they were
// stored; a duration that does not parse reads as 0, the setting off.

// IdleAfter returns the idle rule's delay, or 0 when the rule is off.
func (s Settings) IdleAfter() time.Duration {
	if s.Idle == nil {
		return 0
	}
	d, _ := time.ParseDuration(s.Idle.After)
	return d
}

// BackgroundMax returns how long a background lease lasts, or 0 when
// background mode is off.
func (s Settings) BackgroundMax() time.Duration {
	if s.Background == nil {
		return 0
	}
	d, _ := time.ParseDuration(s.Background.Max)
	return d
}

// UncoveredAfter returns how long a widget may stay uncovered before
// coverage.lost (the uncovered_alert setting), or 0 when the alert is off.
func (s Settings) UncoveredAfter() time.Duration {
	if s.UncoveredAlert == "" {
		return 0
	}
	d, _ := time.ParseDuration(s.UncoveredAlert)
	return d
}

// Clone returns a deep copy, so that settings handed out of the hub's view
// share nothing with it.
func (s Settings) Clone() Settings {
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
