package hub

import (
	"testing"

	"github.com/presencehub/presencehub/presence"
)

// TestCoverageKeys: the coverage keys of the site's widget and of a
// group's parse back to their kind, site and group, and are not taken for
// other keys.
func TestCoverageKeys(t *testing.T) {
	for _, tc := range []struct {
		prefix, group string
		key           string
	}{
		{uncoveredPrefix, "", "u.acme"},
		{uncoveredPrefix, "sales", "u.acme.sales"},
		{lostPrefix, "", "c.acme"},
		{lostPrefix, "sales", "c.acme.sales"},
	} {
		key := coverageKey(tc.prefix, "acme", tc.group)
		if key != tc.key {
			t.Fatalf("got key %q, want %q", key, tc.key)
		}
		k, ok := parseKey(key)
		if !ok || k.kind != tc.prefix || k.site != "acme" || k.group != tc.group || k.agent != "" {
			t.Fatalf("parsed %q as %+v, %v", key, k, ok)
		}
	}
	for _, key := range []string{"u", "c", "u.acme.sales.x", "c.acme.sales.x"} {
		if k, ok := parseKey(key); ok {
			t.Fatalf("parsed %q as %+v, want it refused", key, k)
		}
	}
}

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
