package history_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestMain fails the package's tests if any goroutine they started is still
// running when they end, and removes the nats-server binary the benchmarks
// built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		natstest.RemoveBinary()
		os.Exit(code)
	}))
}
