package hub

import (
	"testing"

	"github.com/presencehub/presencehub/presence"
)

// TestUncovered: a widget is uncovered when it is not online, unless its
// hours are closed.
func TestUncovered(t *testing.T) {
	for _, tc := range []struct {
		w    presence.Widget
		want bool
	}{
		{presence.Widget{Status: presence.Online, Reason: presence.ReasonAgentsOnline}, false},
		{presence.Widget{Status: presence.Busy, Reason: presence.ReasonAllBusy}, true},
		{presence.Widget{Status: presence.Offline, Reason: presence.ReasonNoAgents}, true},
		{presence.Widget{Status: presence.Offline, Reason: presence.ReasonOutsideHours}, false},
	} {
		if got := uncovered(tc.w); got != tc.want {
			t.Errorf("uncovered(%+v) = %v, want %v", tc.w, got, tc.want)
		}
	}
}

// TestUncoveredAlertSetting: uncovered_alert is off when absent, and
// validated from 1s to 24h, naming the field.
func TestUncoveredAlertSetting(t *testing.T) {
	if d := (SiteSettings{}).uncoveredAlert(); d != 0 {
		t.Fatalf("got %v for no setting, want 0 (off)", d)
	}
	for v, ok := range map[string]bool{"1s": true, "5m": true, "24h": true, "999ms": false, "24h1s": false, "5": false} {
		err := SiteSettings{UncoveredAlert: v}.Validate()
		if ok != (err == nil) {
			t.Errorf("Validate(%q) = %v, want ok %v", v, err, ok)
		}
		if se, isSE := err.(*SettingsError); err != nil && (!isSE || se.Field != "uncovered_alert") {
			t.Errorf("Validate(%q) = %v, want a SettingsError naming uncovered_alert", v, err)
		}
	}
}
