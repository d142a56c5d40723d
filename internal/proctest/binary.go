package proctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The presencehub binary the tests of one package run: built on first use,
// removed by RemoveBinary (from TestMain) when they are done.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Binary builds the presencehub binary on first use and returns its path;
// in -short mode it skips the test instead.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping in -short mode: the test builds and runs the presencehub binary")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "presencehub-proctest-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "presencehub")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/presencehub/presencehub/cmd/presencehub").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("failed to build presencehub: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// RemoveBinary removes the binary Binary built, if it built one.
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}
