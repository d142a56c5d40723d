package hub

import (
	"context"
	"fmt"
)

// WaitApplied waits until the view has applied revision rev of site; the
// events of every entry of the site up to rev have then been handed to
// JetStream.
func (h *Hub) WaitApplied(ctx context.Context, site string, rev uint64) error {
	return h.waitApplied(ctx, site, rev)
}

// EventsComplete is closed when JetStream has acknowledged every event
// handed to it so far.
func (h *Hub) EventsComplete() <-chan struct{} { return h.events.Complete() }

// MissedSignOffs lists what a view (re)loading now would sign off, as
// "site/agent by hours of group".
func (h *Hub) MissedSignOffs() []string {
	var out []string
	for _, m := range h.rules.missedSignOffs(h.cfg.Now()) {
		for _, agent := range m.Agents {
			out = append(out, fmt.Sprintf("%s/%s by hours of %q", m.site, agent, m.HoursGroup))
		}
	}
	return out
}

// testWatcher is a watcher of partition 0 for tests that feed the view by
// hand.
func testWatcher(h *Hub) *watcher {
	ownEvents(h, 0, true)
	return newWatcher(h, 0)
}

// ownEvents gives h the event duty of partition, as its owner or its
// standby, without a watch: for tests and benchmarks that feed the view by
// hand, without Run. A later call for the same partition changes nothing.
func ownEvents(h *Hub, partition int, owner bool) {
	d := &h.duty
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watchers == nil {
		d.watchers = make(map[int]*partitionWatch)
	}
	if d.watchers[partition] != nil {
		return
	}
	done := make(chan struct{})
	close(done)
	pw := &partitionWatch{cancel: func() {}, done: done}
	pw.ev.owner = owner
	d.watchers[partition] = pw
}

// HoldBackWatches holds back every partition watch of h before it applies
// its next live entry, until the returned function is called.
func (h *Hub) HoldBackWatches() (release func()) {
	gate := make(chan struct{})
	h.watchGate.Store(&gate)
	return func() {
		h.watchGate.Store(nil)
		close(gate)
	}
}
