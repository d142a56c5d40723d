package hub

import (
	"encoding/json"
	"fmt"
)

// SiteSettings are a site's settings, set through the admin API.
type SiteSettings struct {
	// AllowedOrigins lists the origins ("https://shop.example") allowed to
	// open widget sockets for the site; empty allows any.
	AllowedOrigins []string `json:"allowed_origins"`
	// Idle, when set, turns an online agent without activity for its
	// After into its Status (settings.go).
	Idle *IdleSettings `json:"idle,omitempty"`
	// SignOffAtClose sets online and busy agents offline when the working
	// hours that govern them close.
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

func decodeSettings(b []byte) (SiteSettings, error) {
	var s SiteSettings
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("failed to decode site settings: %w", err)
	}
	return s, nil
}
