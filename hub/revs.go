package hub

import "time"

// keyRevs is the last revision the view applied of each key of a site,
// removals included for a while (tombstones), so that an entry that comes
// twice, or late, changes nothing: a site can be fed by its follow and by
// the whole-bucket watch at once, and a load races the messages of its
// subscription. Guarded by the site's mu.
//
// The keys present and the tombstones are apart: a present key's revision
// is all it needs, and most of a site's keys are present (a map's slots
// are its value's size, and every site of a watched partition has one).
// Both maps are made on first write; the tombstones' goes when the last
// is swept.
type keyRevs struct {
	m     map[string]uint64    // present keys
	gone  map[string]tombstone // removed keys
	swept time.Time
}

// tombstone is the revision at which a key was removed, and when.
type tombstone struct {
	rev uint64
	at  time.Time
}

// tombstoneTTL is how long the revision of a removed key is kept: longer
// than a message can be late.
const tombstoneTTL = 2 * time.Minute

// newer reports whether revision rev of key is newer than the last the
// view applied, and records it if so. A removal found by absence (rev 0)
// is always applied.
func (r *keyRevs) newer(key string, rev uint64, deleted bool, now time.Time) bool {
	if rev == 0 {
		delete(r.m, key)
		delete(r.gone, key)
		return true
	}
	if last, ok := r.last(key); ok && rev <= last {
		return false
	}
	if deleted {
		delete(r.m, key)
		put(&r.gone, key, tombstone{rev: rev, at: now})
		r.sweep(now)
		return true
	}
	delete(r.gone, key)
	put(&r.m, key, rev)
	return true
}

// last returns the last revision applied of key, removal or not.
func (r *keyRevs) last(key string) (uint64, bool) {
	if rev, ok := r.m[key]; ok {
		return rev, true
	}
	t, ok := r.gone[key]
	return t.rev, ok
}

// sweep forgets tombstones older than tombstoneTTL, at most once per
// tombstoneTTL.
func (r *keyRevs) sweep(now time.Time) {
	if now.Sub(r.swept) < tombstoneTTL {
		return
	}
	r.swept = now
	for key, t := range r.gone {
		if now.Sub(t.at) > tombstoneTTL {
			delete(r.gone, key)
		}
	}
	if len(r.gone) == 0 {
		r.gone = nil
	}
}
