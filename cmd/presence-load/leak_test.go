package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/presencehub/presencehub/internal/proctest"
)

// TestMain fails the package's tests if any goroutine they started is still
// running when they end, and removes the presencehub binary the replicas
// test built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		proctest.RemoveBinary()
		os.Exit(code)
	}))
}
