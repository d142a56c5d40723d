package natstest_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/presencehub/presencehub/internal/natstest"
)

// TestMain removes the nats-server binary the tests built, and fails the
// package's tests if any goroutine they started is still running.
func TestMain(m *testing.M) {
	code := m.Run()
	natstest.RemoveBinary()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
