package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/internal/jsretry"
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
// find their own earlier write in place treat it as done (see UpdateAgent, and
// the session's writeOwnLease and Bye in package hub). Giving up after such a timeout returns an error
// wrapping ErrOutcomeUnknown.

// DefaultWriteRetry, the default Config.WriteRetry, is above the longest
// stream leader election measured on a three-node cluster (about 5s after
// a SIGKILL of the leader; the raft election timeout is 4-9s).

// ErrOutcomeUnknown is wrapped by a write error when a write was sent but
// not acknowledged before giving up: it may still be applied later.
var ErrOutcomeUnknown = errors.New("hub: outcome unknown: the change may still apply")

// ErrUnavailable is wrapped by a write error when NATS could not take the
// write for as long as it was retried: no stream leader, no answer, or a
// store that cannot write (a full disk). It is not the caller's mistake,
// and the same write may succeed later. A write whose outcome is unknown
// wraps both.
var ErrUnavailable = errors.New("hub: JetStream cannot store changes now")

// ErrReplaced is returned by a compare-and-set on a lease that another
// session of the same device holds now.
var ErrReplaced = errors.New("hub: session replaced by a newer one of the same device")

// ErrRevoked is returned by a lease write once an admin revoked the
// device: only a new session may write it again.
var ErrRevoked = errors.New("hub: device revoked by an admin")

// WriteAttemptTimeout bounds one attempt, so that an attempt sent to a
// server that froze is abandoned in time to try again through another.
const WriteAttemptTimeout = 2 * time.Second

// retry runs write until it succeeds, fails for a reason a retry cannot
// cure, ctx ends or Config.WriteRetry has passed. Each attempt gets at most
// WriteAttemptTimeout.
func (s *Store) retry(ctx context.Context, write func(ctx context.Context) error) error {
	return s.retryFor(ctx, s.cfg.WriteRetry, write)
}

// retryFor runs write as the store retries its own writes, with its own
// bound (0 or negative: one attempt).
func (s *Store) retryFor(ctx context.Context, bound time.Duration, write func(ctx context.Context) error) error {
	if bound <= 0 {
		return unavailable(write(ctx))
	}
	deadline := time.Now().Add(bound)
	wait := jsretry.FirstWait
	unknown, retried := false, false
	for {
		actx, cancel := context.WithTimeout(ctx, WriteAttemptTimeout)
		err := write(actx)
		cancel()
		if err == nil {
			if retried {
				s.countRetry("stored")
			}
			return nil
		}
		if !jsretry.Retryable(err) {
			if unknown && !errors.Is(err, ErrReplaced) && !IsConflict(err) {
				return fmt.Errorf("%w (%w)", err, ErrOutcomeUnknown)
			}
			return err
		}
		unknown = unknown || jsretry.MaybeStored(err)
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			if retried || unknown {
				outcome := "failed"
				if unknown {
					outcome = "unknown"
				}
				s.countRetry(outcome)
			}
			if unknown {
				return fmt.Errorf("%w (%w, %w)", err, ErrOutcomeUnknown, ErrUnavailable)
			}
			return fmt.Errorf("%w (%w)", err, ErrUnavailable)
		}
		retried = true
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, jsretry.MaxWait)
	}
}

// unavailable wraps ErrUnavailable (and ErrOutcomeUnknown for a timeout)
// around err when it is one a later attempt may not meet.
func unavailable(err error) error {
	switch {
	case err == nil || !jsretry.Retryable(err):
		return err
	case jsretry.MaybeStored(err):
		return fmt.Errorf("%w (%w, %w)", err, ErrOutcomeUnknown, ErrUnavailable)
	}
	return fmt.Errorf("%w (%w)", err, ErrUnavailable)
}

func (s *Store) countRetry(outcome string) {
	if s.cfg.Metrics.Retries != nil {
		s.cfg.Metrics.Retries.WithLabelValues(outcome).Inc()
	}
}
