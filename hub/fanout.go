package hub

import (
	"errors"
	"runtime"
	"sync"
)

// The fan-out: who subscribes to what, and getting frames to them. Frames
// are queued in their site's outbox while the site is locked, in the order
// the view produced them, and sent by the site's delivery goroutine after
// the lock is released (look up under the lock, release, then send, as
// tailscale's derp server does). One delivery goroutine runs per site with
// frames to send, and ends when its outbox is empty, so a blocked or slow
// subscriber holds up only its own site.

// fanout is the part of a Hub that queues frames to local subscribers and
// sends them: one delivery goroutine per site with frames to send.
type fanout struct{ h *Hub }

// subscriberSet is a set of subscribers with a list of them for sending,
// made again only after the set changed: a widget watched by 10,000
// subscribers costs no copy per change, and a list handed to a delivery
// stays as it was however the set changes meanwhile.
type subscriberSet struct {
	m    map[Subscriber]struct{}
	list []Subscriber // nil after a change; never modified once made
}

func (ss *subscriberSet) add(sub Subscriber) {
	if ss.m == nil {
		ss.m = make(map[Subscriber]struct{})
	}
	ss.m[sub] = struct{}{}
	ss.list = nil
}

func (ss *subscriberSet) remove(sub Subscriber) {
	if _, ok := ss.m[sub]; ok {
		delete(ss.m, sub)
		ss.list = nil
	}
}

func (ss *subscriberSet) len() int { return len(ss.m) }

// snapshot returns the subscribers as a list that must not be modified.
func (ss *subscriberSet) snapshot() []Subscriber {
	if ss.list == nil && len(ss.m) > 0 {
		ss.list = make([]Subscriber, 0, len(ss.m))
		for sub := range ss.m {
			ss.list = append(ss.list, sub)
		}
	}
	return ss.list
}

// delivery is one frame for a list of subscribers, or a kick.
type delivery struct {
	frame *Frame
	to    []Subscriber // not modified once queued
	kick  Subscriber   // with reason, instead of a frame
	why   error
}

// outbox is a site's queue of deliveries. Guarded by the site's mu.
type outbox struct {
	queue      []delivery
	delivering bool // a delivery goroutine runs
}

// startLocked reports whether the caller must start a delivery goroutine:
// there are deliveries and none runs.
func (o *outbox) startLocked() bool {
	if len(o.queue) == 0 || o.delivering {
		return false
	}
	o.delivering = true
	return true
}

func (o *outbox) busy() bool { return o.delivering || len(o.queue) > 0 }

// enqueueLocked queues frame for the subscribers in to, which the caller
// must not modify afterwards.
func (f *fanout) enqueueLocked(s *site, frame *Frame, to []Subscriber) {
	if len(to) > 0 {
		s.out.queue = append(s.out.queue, delivery{frame: frame, to: to})
	}
}

// deliver sends the site's queued deliveries in order until its outbox is
// empty. It runs on a goroutine of its own, one per site at a time.
func (f *fanout) deliver(s *site) {
	h := f.h
	for {
		s.mu.Lock()
		batch := s.out.queue
		s.out.queue = nil
		if len(batch) == 0 {
			s.out.delivering = false
			if s.emptyLocked() {
				h.view.sites.removeLocked(s)
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		var full []Subscriber
		for _, d := range batch {
			if d.kick != nil {
				d.kick.Kick(d.why)
				continue
			}
			full = append(full, h.fanout.fanOut(d.frame, d.to)...)
		}
		if len(full) > 0 {
			h.fanout.dropSlow(s, full)
		}
	}
}

// fanOut hands frame to every subscriber in to and returns those whose
// queue was full. A Send writes to a socket at once, and a write costs the
// kernel a few microseconds, so a large fan-out is split over the cores to
// get the frame to the last subscriber sooner.
func (f *fanout) fanOut(frame *Frame, to []Subscriber) []Subscriber {
	h := f.h
	parts := min(runtime.GOMAXPROCS(0), len(to)/fanOutPart, maxFanOutParts)
	if parts <= 1 {
		return h.fanout.sendAll(frame, to)
	}
	fulls := make([][]Subscriber, parts)
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Go(func() { fulls[i] = h.fanout.sendAll(frame, to[i*len(to)/parts:(i+1)*len(to)/parts]) })
	}
	fulls[0] = h.fanout.sendAll(frame, to[:len(to)/parts])
	wg.Wait()
	var full []Subscriber
	for _, f := range fulls {
		full = append(full, f...)
	}
	return full
}

// A split fan-out gives each goroutine at least fanOutPart subscribers and
// uses at most maxFanOutParts goroutines.
const (
	fanOutPart     = 32
	maxFanOutParts = 8
)

// sendAll hands frame to each subscriber and returns those whose queue was
// full. It may run on several goroutines at once for one fan-out.
func (f *fanout) sendAll(frame *Frame, to []Subscriber) []Subscriber {
	h := f.h
	var full []Subscriber
	sent := 0
	for _, sub := range to {
		if sub.Send(frame) {
			sent++
		} else {
			full = append(full, sub)
		}
	}
	h.counters.framesOut.Add(uint64(sent))
	h.metrics.framesOut.Add(float64(sent))
	return full
}

// dropSlow unregisters the subscribers of s whose queue was full and kicks
// those that were still registered.
func (f *fanout) dropSlow(s *site, full []Subscriber) {
	h := f.h
	var kick []Subscriber
	s.mu.Lock()
	for _, sub := range full {
		if h.fanout.unregisterLocked(s, sub) {
			kick = append(kick, sub)
		}
	}
	s.mu.Unlock()
	for _, sub := range kick {
		h.counters.slowClosed.Add(1)
		h.metrics.slowClosed.Inc()
		sub.Kick(ErrSlowSubscriber)
	}
}

// dropLocked unregisters a subscriber of s and queues its kick behind the
// frames queued for it before.
func (f *fanout) dropLocked(s *site, sub Subscriber, reason error) {
	h := f.h
	if !h.fanout.unregisterLocked(s, sub) {
		return
	}
	if errors.Is(reason, ErrSlowSubscriber) {
		h.counters.slowClosed.Add(1)
		h.metrics.slowClosed.Inc()
	}
	s.out.queue = append(s.out.queue, delivery{kick: sub, why: reason})
}

// registerLocked records what unregisters sub from s.
func (f *fanout) registerLocked(s *site, sub Subscriber, unsub func()) {
	put(&s.registered, sub, append(s.registered[sub], unsub))
}

// unregisterLocked removes a subscriber from everything of s without
// kicking it; it reports whether sub was registered.
func (f *fanout) unregisterLocked(s *site, sub Subscriber) bool {
	unsubs, ok := s.registered[sub]
	if !ok {
		return false
	}
	delete(s.registered, sub)
	for _, f := range unsubs {
		f()
	}
	return true
}

// unregister removes a subscriber of the site from everything.
func (f *fanout) unregister(siteID string, sub Subscriber) {
	h := f.h
	if s := h.view.lockExistingSite(siteID); s != nil {
		h.fanout.unregisterLocked(s, sub)
		h.view.unlockSite(s)
	}
}
