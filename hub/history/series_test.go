package history

import (
	"container/list"
	"slices"
	"testing"
	"time"
)

const day = int64(24 * time.Hour / time.Millisecond)

// Points are kept in order whatever order they come in, one per instant;
// those before the cutoff go, but the last of them, which holds at the
// cutoff, stays.
func TestSeriesAdd(t *testing.T) {
	var sr series
	for _, p := range []point{{at: 10, a: 1}, {at: 30, a: 2}, {at: 20, a: 0}, {at: 30, a: 1}, {at: 5, a: 2}} {
		sr.add(p, 0)
	}
	if want := []point{{at: 5, a: 2}, {at: 10, a: 1}, {at: 20, a: 0}, {at: 30, a: 1}}; !slices.Equal(sr.points, want) {
		t.Fatalf("got %v, want %v", sr.points, want)
	}

	sr = series{}
	for i := range int64(10) {
		sr.add(point{at: i * day, a: uint8(i % 3)}, 0)
	}
	// Cutoff at day 6.5: days 0-5 are old; day 6's point holds at the
	// cutoff. Nothing is dropped until the second point is a day older
	// than the cutoff.
	cutoff := 6*day + day/2
	sr.add(point{at: 10 * day, a: 1}, cutoff)
	if got := sr.points[0].at; got != 6*day {
		t.Fatalf("first point kept at day %v, want day 6", float64(got)/float64(day))
	}
	if len(sr.points) != 5 {
		t.Fatalf("got %d points, want 5 (days 6 to 10)", len(sr.points))
	}
}

// memIndex returns an index with site in memory, loaded, for apply to
// fill without a stream.
func memIndex(cfg Config, site string) (*Index, *siteIndex) {
	x := &Index{cfg: cfg, sites: make(map[string]*siteEntry), lru: list.New(), readyCh: make(chan struct{})}
	e := &siteEntry{site: site, idx: newSiteIndex(), loaded: make(chan struct{})}
	e.elem = x.lru.PushFront(e)
	x.sites[site] = e
	e.done(nil)
	return x, e.idx
}

// learn replaces the guesses made before the first event that tells a
// value: an agent's chosen status before its first agent.status is that
// event's previous.
func TestSeriesLearn(t *testing.T) {
	x, err := New(Config{JetStream: nil, Now: func() time.Time { return time.UnixMilli(100 * day) }})
	if err == nil || x != nil {
		t.Fatal("New without JetStream succeeded")
	}
	x, s := memIndex(Config{Retention: time.Hour * 24 * 90, Now: func() time.Time { return time.UnixMilli(100 * day) }}, "acme")
	ev := func(typ, at, status, prev string) []byte {
		return []byte(`{"id":"1","type":"` + typ + `","site":"acme","timestamp":"` + at + `","data":{"agent":"alice","status":"` + status + `","previous":"` + prev + `"}}`)
	}
	// Connected: effective offline -> online; chosen unknown, taken from it.
	x.apply(s, "", ev("agent.availability", "1970-04-01T00:00:00Z", "online", "offline"))
	// An admin sets busy: chosen was online before.
	x.apply(s, "", ev("agent.status", "1970-04-02T00:00:00Z", "busy", "online"))
	x.apply(s, "", ev("agent.availability", "1970-04-02T00:00:00Z", "busy", "online"))
	sr := s.agents["alice"]
	on, busy, off := statusCode("online"), statusCode("busy"), statusCode("offline")
	if want := (point{a: on, b: off}); sr.initial != want {
		t.Fatalf("initial: got %+v, want %+v", sr.initial, want)
	}
	if len(sr.points) != 2 || sr.points[0].a != on || sr.points[0].b != on || sr.points[1].a != busy || sr.points[1].b != busy {
		t.Fatalf("points: got %+v", sr.points)
	}
	// An agent whose first event is a status set while it had no device:
	// effective offline throughout.
	x.apply(s, "", []byte(`{"type":"agent.status","site":"acme","timestamp":"1970-04-03T00:00:00Z","data":{"agent":"bob","status":"busy","previous":"offline"}}`))
	sr = s.agents["bob"]
	if sr.initial != (point{a: off, b: off}) || sr.points[0] != (point{at: 92 * day, a: busy, b: off}) {
		t.Fatalf("bob: got %+v %+v", sr.initial, sr.points)
	}
}
