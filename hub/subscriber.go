package hub

import "errors"

// Subscriber is a local recipient of pre-encoded frames: an agent device, a
// widget, or anything else the transport connects.
//
// Contract: Send is called with the hub's lock held and must not block; a
// large fan-out calls Send for different subscribers from several goroutines
// at once (never for the same subscriber), so state shared between
// subscribers must be safe for concurrent use. It
// queues the frame and reports true, or reports false when the queue is full;
// the hub then unregisters the subscriber everywhere and calls Kick once with
// ErrSlowSubscriber. Kick is also called with ErrReplaced when a newer session
// of the same device took its lease over. Kick must not block either: it only
// starts closing the subscriber. The same frame slice is passed to many
// subscribers and must not be modified.
type Subscriber interface {
	Send(frame []byte) bool
	Kick(reason error)
}

// ErrSlowSubscriber is the reason a subscriber whose queue filled up is kicked.
var ErrSlowSubscriber = errors.New("hub: subscriber too slow, send queue full")
