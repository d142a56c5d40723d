package store

import "testing"

// TestKeys: every kind of key is written as the bucket has always stored
// it, and parses back to its parts; keys of no kind, or with a token too
// many or too few, are refused.
func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		key  Key
		want string
	}{
		{AgentKey("acme", "alice"), "a.acme.alice"},
		{LeaseKey("acme", "alice", "d1"), "d.acme.alice.d1"},
		{HoursKey("acme", ""), "h.acme"},
		{HoursKey("acme", "sales"), "h.acme.sales"},
		{SettingsKey("acme"), "s.acme"},
		{ActivityKey("acme", "alice"), "i.acme.alice"},
		{CoverageKey(KindUncovered, "acme", ""), "u.acme"},
		{CoverageKey(KindUncovered, "acme", "sales"), "u.acme.sales"},
		{CoverageKey(KindCoverageLost, "acme", ""), "c.acme"},
		{CoverageKey(KindCoverageLost, "acme", "sales"), "c.acme.sales"},
	} {
		if got := tc.key.String(); got != tc.want {
			t.Errorf("%+v is %q, want %q", tc.key, got, tc.want)
		}
		if k, ok := ParseKey(tc.want); !ok || k != tc.key {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", tc.want, k, ok, tc.key)
		}
	}
	for _, key := range []string{"", "x.acme", "a.acme", "a.acme.alice.x", "d.acme.alice", "s.acme.x", "u", "c",
		"u.acme.sales.x", "c.acme.sales.x", "h.acme.sales.x", "i.acme", "_probe"} {
		if k, ok := ParseKey(key); ok {
			t.Errorf("ParseKey(%q) = %+v, want it refused", key, k)
		}
	}
}
