package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/hub/store"
)

// claim is the value of a one-shot claim's key t.<name>: who claimed it,
// and a nonce that tells this claim from every other of the same replica.
type claim struct {
	ID      string    `json:"id"`
	Claimed time.Time `json:"claimed"`
	Nonce   string    `json:"nonce"`
}

// Claim claims the one-shot duty name (a key t.<name>, name of the
// characters store.ValidMembersKey allows) for ttl (at least 1s): of every
// caller across the replicas, exactly one gets true while the claim's key
// lives; after ttl the name can be claimed again. It needs no Run: it is
// one compare-and-set, retried through an election within ctx.
func (m *Member) Claim(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	key := store.ClaimPrefix + name
	if !store.ValidMembersKey(key) {
		return false, fmt.Errorf("cluster: invalid claim name %q", name)
	}
	v, _ := json.Marshal(claim{ID: m.cfg.ID, Claimed: m.cfg.Now().UTC(), Nonce: rand.Text()})
	_, err := m.cfg.Members.ClaimKey(ctx, key, v, ttl, 0)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrReplaced):
		return false, nil
	}
	return false, fmt.Errorf("cluster: %w", err)
}

// Forget removes the record of replica id, once its device leases were
// handed over after it went: the replicas that start later need not.
func (m *Member) Forget(ctx context.Context, id string) error {
	return m.cfg.Members.Forget(ctx, id)
}
