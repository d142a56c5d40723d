package client_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/presencehub/presencehub/internal/proctest"
)

// TestMain removes the binary and fails the package's tests if any
// goroutine they started, the clients' included, is still running when they
// end.
func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBinary()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
