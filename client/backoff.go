package client

import (
	"math/rand/v2"
	"time"
)

// Backoff bounds, as the console and widget.js have them: full jitter,
// random(0, min(cap, base * 2^attempt)).
const (
	defaultMinBackoff = 500 * time.Millisecond
	defaultMaxBackoff = 30 * time.Second
)

// backoff is exponential backoff with full jitter.
type backoff struct {
	base, cap time.Duration
	attempt   int
}

// next returns the delay before the next attempt.
func (b *backoff) next() time.Duration {
	ceil := b.cap
	if b.attempt < 30 {
		ceil = min(b.cap, b.base<<b.attempt)
	}
	b.attempt++
	return rand.N(ceil + 1)
}

func (b *backoff) reset() { b.attempt = 0 }

// atLeast makes the next delays start from attempt n: after a close that
// says the client should not hammer (1008, 4001).
func (b *backoff) atLeast(n int) { b.attempt = max(b.attempt, n) }

// jitter returns d give or take a quarter.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}
