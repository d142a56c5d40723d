package cluster_test

import (
	"hash/fnv"
	"testing"

	"github.com/presencehub/presencehub/hub/cluster"
)

// TestPartitionOfIsStable: a site's partition is fixed for good (replicas of
// different versions must agree, and a deployment's keys outlive any
// release): the table holds FNV-1a 32 of the site and its partitions among
// 16, 64 and 1024, so a change of the hash fails here.
func TestPartitionOfIsStable(t *testing.T) {
	for _, tc := range []struct {
		site            string
		hash            uint32
		p16, p64, p1024 int
	}{
		{"", 2166136261, 5, 5, 453},
		{"acme", 1174237615, 15, 47, 431},
		{"demo", 2935829814, 6, 54, 310},
		{"globex", 168391822, 14, 14, 142},
		{"initech", 2025973345, 1, 33, 609},
		{"site-0001", 4273552630, 6, 54, 246},
		{"Ünïcode", 3119013579, 11, 11, 715},
	} {
		h := fnv.New32a()
		h.Write([]byte(tc.site))
		if got := h.Sum32(); got != tc.hash {
			t.Errorf("FNV-1a 32 of %q = %d, the table says %d", tc.site, got, tc.hash)
		}
		for n, want := range map[int]int{16: tc.p16, 64: tc.p64, 1024: tc.p1024, 1: 0} {
			if got := cluster.PartitionOf(tc.site, n); got != want {
				t.Errorf("PartitionOf(%q, %d) = %d, want %d", tc.site, n, got, want)
			}
		}
	}
}
