package hub

import "context"

// WaitApplied waits until the view has applied bucket revision rev; the
// events of every entry up to rev have then been handed to JetStream.
func (h *Hub) WaitApplied(ctx context.Context, rev uint64) error { return h.applied.wait(ctx, rev) }

// EventsComplete is closed when JetStream has acknowledged every event
// handed to it so far.
func (h *Hub) EventsComplete() <-chan struct{} { return h.events.js.PublishAsyncComplete() }
