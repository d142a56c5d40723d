package hub

import (
	"errors"
	"sync"
)

// Subscriber is a local recipient of frames: an agent device, a widget, or
// anything else the transport connects.
//
// Contract: Send is called without any lock of the hub held, but it must not
// block: it queues the frame and reports true, or reports false when the
// queue is full; the hub then unregisters the subscriber everywhere and
// calls Kick once with ErrSlowSubscriber. Kick is also called with
// ErrReplaced when a newer session of the same device took its lease over,
// and with ErrRevoked when an admin revoked the device.
// Kick must not block either: it only starts closing the subscriber. The
// frames of one site reach a subscriber in the order the hub produced them,
// from one goroutine at a time; a large fan-out calls Send for different
// subscribers from several goroutines at once (never for the same
// subscriber), so state shared between subscribers must be safe for
// concurrent use.
type Subscriber interface {
	Send(f *Frame) bool
	Kick(reason error)
}

// ErrSlowSubscriber is the reason a subscriber whose queue filled up is kicked.
var ErrSlowSubscriber = errors.New("hub: subscriber too slow, send queue full")

// Frame is one message for one or many subscribers. Its payload (a JSON
// text message, see docs/protocol.md) is encoded once per change, and its
// wire form is prepared once, by the first subscriber that needs it, for all
// of them. A Frame and its bytes must not be modified.
type Frame struct {
	payload []byte

	wireOnce sync.Once
	wire     []byte // set once by wireOnce
}

// NewFrame returns a frame carrying payload, which it keeps.
func NewFrame(payload []byte) *Frame { return &Frame{payload: payload} }

// Payload returns the frame's message.
func (f *Frame) Payload() []byte { return f.payload }

// Wire returns the frame as prepare makes it from the payload. prepare runs
// once per frame, whichever subscriber asks first, and every later caller
// gets its result: all subscribers of one hub must therefore pass the same
// prepare (one wire format per process).
func (f *Frame) Wire(prepare func(payload []byte) []byte) []byte {
	f.wireOnce.Do(func() { f.wire = prepare(f.payload) })
	return f.wire
}
