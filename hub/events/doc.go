// Package events owns the event stream (docs/events.md): the events' types
// and payloads, the stream's set-up, and publishing them to JetStream
// exactly once by their ids, riding out an election of the stream's
// leader. The hub derives events from the changes its view applies and
// hands them to a Publisher; history and webhooks read them back through
// this package's types. The Publisher runs one retry goroutine while any
// event waits to be published again, started through the spawn function
// its owner gives it.
package events
