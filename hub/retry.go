package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Writes ride out an election: while the bucket's stream elects a new
// leader (5-10s after its leader dies, see docs/operations.md), or while
// the NATS connection moves to another server, every write fails. Such a
// write is retried with a short backoff until it is stored, until
// Config.WriteRetry has passed, or until its caller's context ends, so the
// person who clicked "busy" waits a few seconds instead of seeing an error.
//
// A write whose acknowledgement did not come may still land (a frozen
// server flushes what it buffered when it resumes). Retrying it is safe:
// plain writes write the same value again, and compare-and-set writes that
// find their own earlier write in place treat it as done (see updateAgent,
// writeOwnLease, Bye). Giving up after such a timeout returns an error
// wrapping ErrOutcomeUnknown.

// DefaultWriteRetry is the default Config.WriteRetry: above the longest
// stream leader election measured on a three-node cluster (about 5s after
// a SIGKILL of the leader; the raft election timeout is 4-9s).
const DefaultWriteRetry = 15 * time.Second

// ErrOutcomeUnknown is wrapped by a write error when a write was sent but
// not acknowledged before giving up: it may still be applied later.
var ErrOutcomeUnknown = errors.New("hub: outcome unknown: the change may still apply")

// writeAttemptTimeout bounds one attempt, so that an attempt sent to a
// server that froze is abandoned in time to try again through another.
const writeAttemptTimeout = 2 * time.Second

// Backoff between attempts: short first, since an election ends all at once.
const (
	retryFirstWait = 50 * time.Millisecond
	retryMaxWait   = time.Second
)

// WriteRetry returns how long a write is retried through an election or a
// NATS reconnect (Config.WriteRetry); a caller that wants the write stored
// should allow at least this long.
func (h *Hub) WriteRetry() time.Duration { return max(h.cfg.WriteRetry, 0) }

// retry runs write until it succeeds, fails for a reason a retry cannot
// cure, ctx ends or Config.WriteRetry has passed. Each attempt gets at most
// writeAttemptTimeout.
func (h *Hub) retry(ctx context.Context, write func(ctx context.Context) error) error {
	return h.retryFor(ctx, h.cfg.WriteRetry, write)
}

// retryFor is retry with its own bound.
func (h *Hub) retryFor(ctx context.Context, bound time.Duration, write func(ctx context.Context) error) error {
	if bound <= 0 {
		return write(ctx)
	}
	deadline := time.Now().Add(bound)
	wait := retryFirstWait
	unknown, retried := false, false
	for {
		actx, cancel := context.WithTimeout(ctx, writeAttemptTimeout)
		err := write(actx)
		cancel()
		if err == nil {
			if retried {
				h.metrics.writeRetries.WithLabelValues("stored").Inc()
			}
			return nil
		}
		if !retryable(err) {
			if unknown && !errors.Is(err, ErrReplaced) && !isConflict(err) {
				return fmt.Errorf("%w (%w)", err, ErrOutcomeUnknown)
			}
			return err
		}
		unknown = unknown || maybeStored(err)
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			if retried || unknown {
				outcome := "failed"
				if unknown {
					outcome = "unknown"
				}
				h.metrics.writeRetries.WithLabelValues(outcome).Inc()
			}
			if unknown {
				return fmt.Errorf("%w (%w)", err, ErrOutcomeUnknown)
			}
			return err
		}
		retried = true
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, retryMaxWait)
	}
}

// retryable reports whether err means NATS could not take a write now but
// may soon: no stream leader (no responders, a 503 from JetStream), a
// timeout, or a connection between servers.
func retryable(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		maybeStored(err) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.Code == http.StatusServiceUnavailable ||
		apiErr.Code == http.StatusRequestTimeout || apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled)
}

// maybeStored reports whether err is a timeout: the write was sent and may
// have been stored although no acknowledgement came.
func maybeStored(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.Canceled)
}
