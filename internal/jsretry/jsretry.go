// Package jsretry tells NATS JetStream errors that pass (no stream leader,
// a timeout, a connection moving to another server) from those that do
// not, and retries opening a stream through them. It is shared by the store
// (hub/store), the event stream (hub/events) and the history's summaries
// (hub/history); it runs no goroutines.
package jsretry

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Retryable reports whether err means NATS could not take a request now but
// may soon: no stream leader (no responders, a 503 from JetStream), a
// timeout, or a connection between servers.
func Retryable(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		MaybeStored(err) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.Code == http.StatusServiceUnavailable ||
		apiErr.Code == http.StatusRequestTimeout || apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled)
}

// MaybeStored reports whether err is a timeout: the write was sent and may
// have been stored although no acknowledgement came.
func MaybeStored(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.Canceled)
}

// Open runs open, which creates or updates a stream, until it succeeds,
// fails for good, or ctx ends. A cluster that is still forming (routes
// reconnecting, a meta leader just elected) can drop a JetStream API
// request without an answer, and one attempt would then wait out the whole
// of ctx; so each attempt gets OpenAttemptTimeout, and a failure that
// passes is tried again.
func Open(ctx context.Context, open func(ctx context.Context) error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, OpenAttemptTimeout)
		err := open(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !Retryable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// OpenStream creates the stream of cfg, or updates an existing one to it,
// retrying as Open does.
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := Open(ctx, func(ctx context.Context) (err error) {
		s, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	return s, err
}

// OpenAttemptTimeout bounds one attempt to create or update a stream.
const OpenAttemptTimeout = 5 * time.Second

// Backoff between attempts of a write or publish: short first, since an
// election ends all at once.
const (
	FirstWait = 50 * time.Millisecond
	MaxWait   = time.Second
)
