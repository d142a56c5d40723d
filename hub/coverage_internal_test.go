package hub

import "testing"

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
