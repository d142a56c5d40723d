package cluster

import (
	"fmt"
	"testing"
)

// TestRendezvousMovesOnlyTheLeaversPartitions: with one replica fewer,
// every partition keeps its owner unless the leaver owned it; every replica
// gets a share near its fair one.
func TestRendezvousMovesOnlyTheLeaversPartitions(t *testing.T) {
	const n = 1024
	all := []string{"hub-0", "hub-1", "hub-2", "hub-3"}
	share := make(map[string]int)
	for p := range n {
		owner := ownerOf(p, all)
		share[owner]++
		if without := ownerOf(p, all[:3]); owner != "hub-3" && without != owner {
			t.Errorf("partition %d moved from %s to %s when hub-3 left", p, owner, without)
		}
	}
	for _, id := range all {
		if share[id] < n/len(all)*3/4 {
			t.Errorf("%s owns %d of %d partitions: %v", id, share[id], n, fmt.Sprint(share))
		}
	}
	if got := ownerOf(0, nil); got != "" {
		t.Errorf("owner among none: %q", got)
	}
}

// TestRolesStandbyOwnsWhenTheOwnerLeaves: a partition's standby is the
// replica that owns it once its owner left, never the owner itself.
func TestRolesStandbyOwnsWhenTheOwnerLeaves(t *testing.T) {
	all := []string{"hub-0", "hub-1", "hub-2"}
	for p := range 64 {
		owner, standby := Roles(p, all)
		if standby == "" || standby == owner {
			t.Fatalf("partition %d: owner %q, standby %q", p, owner, standby)
		}
		var rest []string
		for _, id := range all {
			if id != owner {
				rest = append(rest, id)
			}
		}
		if got := ownerOf(p, rest); got != standby {
			t.Errorf("partition %d: %s owns it without %s, but the standby is %s", p, got, owner, standby)
		}
	}
	if owner, standby := Roles(0, all[:1]); owner != "hub-0" || standby != "" {
		t.Errorf("one replica: owner %q, standby %q", owner, standby)
	}
}
