package presence

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSettingsBounds: every bound of every setting, on both sides, and the
// error naming the field it refuses.
func TestSettingsBounds(t *testing.T) {
	idle := func(after string, status Status) Settings {
		return Settings{Idle: &IdleSettings{After: after, Status: status}}
	}
	bg := func(max string) Settings { return Settings{Background: &BackgroundSettings{Max: max}} }
	alert := func(d string) Settings { return Settings{UncoveredAlert: d} }
	tests := []struct {
		name  string
		s     Settings
		field string // "" for valid
		msg   string // part of the message
	}{
		{"none", Settings{}, "", ""},
		{"origins and sign-off", Settings{AllowedOrigins: []string{"https://shop.example"}, SignOffAtClose: true}, "", ""},

		{"idle at its minimum", idle("1s", Busy), "", ""},
		{"idle at its maximum", idle("24h", Offline), "", ""},
		{"idle under its minimum", idle("999ms", Busy), "idle.after", "out of range: 1s to 24h0m0s"},
		{"idle over its maximum", idle("24h0m1s", Busy), "idle.after", "out of range"},
		{"idle zero", idle("0s", Busy), "idle.after", "out of range"},
		{"idle negative", idle("-5m", Busy), "idle.after", "out of range"},
		{"idle missing", idle("", Busy), "idle.after", "missing"},
		{"idle not a duration", idle("15", Busy), "idle.after", "not a duration"},
		{"idle online", idle("15m", Online), "idle.status", "want busy or offline"},
		{"idle no status", idle("15m", ""), "idle.status", "want busy or offline"},
		{"idle unknown status", idle("15m", "away"), "idle.status", `"away"`},
		{"idle after checked first", idle("x", Online), "idle.after", ""},

		{"background at its minimum", bg("1m"), "", ""},
		{"background at its maximum", bg("168h"), "", ""},
		{"background under its minimum", bg("59s"), "background.max", "out of range: 1m0s to 168h0m0s"},
		{"background over its maximum", bg("168h0m1s"), "background.max", "out of range"},
		{"background missing", bg(""), "background.max", "missing"},
		{"background not a duration", bg("a week"), "background.max", "not a duration"},

		{"alert off", alert(""), "", ""},
		{"alert at its minimum", alert("1s"), "", ""},
		{"alert at its maximum", alert("24h"), "", ""},
		{"alert under its minimum", alert("999ms"), "uncovered_alert", "out of range: 1s to 24h0m0s"},
		{"alert over its maximum", alert("24h1s"), "uncovered_alert", "out of range"},
		{"alert not a duration", alert("5"), "uncovered_alert", "not a duration"},

		// The first bad setting is the one named.
		{"idle before background", Settings{Idle: &IdleSettings{After: "0s", Status: Busy}, Background: &BackgroundSettings{}}, "idle.after", ""},
		{"background before alert", Settings{Background: &BackgroundSettings{}, UncoveredAlert: "0s"}, "background.max", ""},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: got %v, want valid", tt.name, err)
			}
			continue
		}
		var se *SettingsError
		if !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a *SettingsError naming %s", tt.name, err, tt.field)
			continue
		}
		if se.Field != tt.field || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("%s: got field %q message %q, want field %q and a message containing %q", tt.name, se.Field, se.Msg, tt.field, tt.msg)
		}
		if !strings.HasPrefix(err.Error(), tt.field+": ") {
			t.Errorf("%s: got %q, want it to start with the field", tt.name, err)
		}
	}
}

// TestSettingsBoundConstants pins the documented bounds (docs/protocol.md).
func TestSettingsBoundConstants(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want time.Duration
	}{
		{"MinIdleAfter", MinIdleAfter, time.Second},
		{"MaxIdleAfter", MaxIdleAfter, 24 * time.Hour},
		{"MinBackgroundMax", MinBackgroundMax, time.Minute},
		{"MaxBackgroundMax", MaxBackgroundMax, 7 * 24 * time.Hour},
		{"MinUncoveredAlert", MinUncoveredAlert, time.Second},
		{"MaxUncoveredAlert", MaxUncoveredAlert, 24 * time.Hour},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestSettingsDurations: each accessor reads its setting, and 0 when it is
// off.
func TestSettingsDurations(t *testing.T) {
	var off Settings
	if off.IdleAfter() != 0 || off.BackgroundMax() != 0 || off.UncoveredAfter() != 0 {
		t.Fatalf("got %v, %v, %v for no settings, want 0 (off) each", off.IdleAfter(), off.BackgroundMax(), off.UncoveredAfter())
	}
	on := Settings{
		Idle:           &IdleSettings{After: "15m", Status: Busy},
		Background:     &BackgroundSettings{Max: "10h"},
		UncoveredAlert: "90s",
	}
	if on.IdleAfter() != 15*time.Minute || on.BackgroundMax() != 10*time.Hour || on.UncoveredAfter() != 90*time.Second {
		t.Fatalf("got %v, %v, %v, want 15m, 10h, 1m30s", on.IdleAfter(), on.BackgroundMax(), on.UncoveredAfter())
	}
}

// TestSettingsJSON pins the JSON shape: it is stored in the bucket and is
// the admin API's body, so a renamed field loses stored settings.
func TestSettingsJSON(t *testing.T) {
	s := Settings{
		AllowedOrigins: []string{"https://shop.example"},
		Idle:           &IdleSettings{After: "15m", Status: Busy},
		SignOffAtClose: true,
		Background:     &BackgroundSettings{Max: "10h"},
		UncoveredAlert: "5m",
	}
	const want = `{"allowed_origins":["https://shop.example"],"idle":{"after":"15m","status":"busy"},"sign_off_at_close":true,"background":{"max":"10h"},"uncovered_alert":"5m"}`
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	if b, _ := json.Marshal(Settings{}); string(b) != `{"allowed_origins":null}` {
		t.Fatalf("got %s for no settings, want only allowed_origins", b)
	}
}

// TestSettingsClone: a clone shares nothing a caller could change.
func TestSettingsClone(t *testing.T) {
	s := Settings{
		AllowedOrigins: []string{"https://a.example"},
		Idle:           &IdleSettings{After: "15m", Status: Busy},
		Background:     &BackgroundSettings{Max: "10h"},
	}
	c := s.Clone()
	c.AllowedOrigins[0] = "https://b.example"
	c.Idle.After = "1m"
	c.Background.Max = "1h"
	if s.AllowedOrigins[0] != "https://a.example" || s.Idle.After != "15m" || s.Background.Max != "10h" {
		t.Fatalf("changing the clone changed the original: %+v %+v %+v", s.AllowedOrigins, *s.Idle, *s.Background)
	}
}
