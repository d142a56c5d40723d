package jsretry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrNoResponders, true},
		{fmt.Errorf("failed to put: %w", context.DeadlineExceeded), true},
		{&jetstream.APIError{Code: http.StatusServiceUnavailable}, true},
		{&jetstream.APIError{Code: http.StatusBadRequest, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{jetstream.ErrKeyExists, false},
		{errors.New("other"), false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestOpenStopsAtAnErrorThatDoesNotPass(t *testing.T) {
	calls := 0
	bad := errors.New("bad config")
	err := Open(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return nats.ErrNoResponders
		}
		return bad
	})
	if !errors.Is(err, bad) || calls != 3 {
		t.Fatalf("Open = %v after %d calls, want %v after 3", err, calls, bad)
	}
}
