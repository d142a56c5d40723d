package hub

import (
	"hash/maphash"
	"strings"
	"sync"
)

// The registry of sites: found by id through shards, so that no lock spans
// every site.

// siteRegistry finds sites by id. Its shards' locks are held only to look a
// site up, add or remove it, never while a site is locked by the same
// goroutine's lookup, so the lock order is site, then shard.
type siteRegistry struct {
	seed   maphash.Seed
	shards [registryShards]registryShard
}

const registryShards = 64

type registryShard struct {
	mu    sync.Mutex
	sites map[string]*site // guarded by mu
}

func newSiteRegistry() *siteRegistry {
	r := &siteRegistry{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].sites = make(map[string]*site)
	}
	return r
}

func (r *siteRegistry) shard(id string) *registryShard {
	return &r.shards[maphash.String(r.seed, id)%registryShards]
}

// get returns the site with id, or nil; with create, a new one is added if
// there is none.
func (r *siteRegistry) get(id string, create bool) *site {
	sh := r.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.sites[id]
	if s == nil && create {
		// A copy of the id: id is usually part of a bucket key, which
		// the site would keep whole for as long as it lives.
		id = strings.Clone(id)
		s = newSite(id)
		sh.sites[id] = s
	}
	return s
}

// removeLocked takes s out of the registry; the caller holds s.mu.
func (r *siteRegistry) removeLocked(s *site) {
	sh := r.shard(s.id)
	sh.mu.Lock()
	if sh.sites[s.id] == s {
		delete(sh.sites, s.id)
	}
	sh.mu.Unlock()
	s.removed = true
}

// all returns every site in the registry now, in no order.
func (r *siteRegistry) all() []*site {
	var out []*site
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, s := range sh.sites {
			out = append(out, s)
		}
		sh.mu.Unlock()
	}
	return out
}
