package hub

import "time"

// keyRevs is the last revision the view applied of each key of a site,
// removals included for a while (tombstones), so that an entry that comes
// twice, or late, changes nothing: a site can be fed by its follow and by
// the whole-bucket watch at once, and a load races the messages of its
// subscription. Guarded by the site's mu.
type keyRevs struct {
	m     map[string]keyRev
	gone  int // tombstones in m
	swept time.Time
}

type keyRev struct {
	rev  uint64
	gone bool      // the key was removed at rev
	at   time.Time // when, for a tombstone
}

// tombstoneTTL is how long the revision of a removed key is kept: longer
// than a message can be late.
const tombstoneTTL = 2 * time.Minute

// newer reports whether revision rev of key is newer than the last the
// view applied, and records it if so. A removal found by absence (rev 0)
// is always applied.
func (r *keyRevs) newer(key string, rev uint64, deleted bool, now time.Time) bool {
	if r.m == nil {
		r.m = make(map[string]keyRev)
	}
	last, ok := r.m[key]
	if rev == 0 {
		if ok && last.gone {
			r.gone--
		}
		delete(r.m, key)
		return true
	}
	if ok && rev <= last.rev {
		return false
	}
	if ok && last.gone {
		r.gone--
	}
	if deleted {
		r.m[key] = keyRev{rev: rev, gone: true, at: now}
		r.gone++
		r.sweep(now)
		return true
	}
	r.m[key] = keyRev{rev: rev}
	return true
}

// sweep forgets tombstones older than tombstoneTTL, at most once per
// tombstoneTTL.
func (r *keyRevs) sweep(now time.Time) {
	if now.Sub(r.swept) < tombstoneTTL {
		return
	}
	r.swept = now
	for key, kr := range r.m {
		if kr.gone && now.Sub(kr.at) > tombstoneTTL {
			delete(r.m, key)
			r.gone--
		}
	}
}
