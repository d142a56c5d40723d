package dirlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLock: a second Acquire fails naming the directory and the holder's
// pid; after Release the lock is free again, and the next holder learns
// whether the previous one stopped cleanly.
func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := Acquire(dir, "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Enforced {
		t.Fatal("got a lock that is not enforced on a Unix system")
	}
	if l.PreviousStopClean() {
		t.Error("a new lock file: got PreviousStopClean true, want false")
	}
	_, err = Acquire(dir, "x.lock")
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire: got %v, want a HeldError naming %s and pid %d", err, dir, os.Getpid())
	}
	l.Release() // no clean stop marked: like a crash

	l, err = Acquire(dir, "x.lock")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if l.PreviousStopClean() {
		t.Error("after a holder that marked no clean stop: got PreviousStopClean true, want false")
	}
	if err := l.MarkStopped(); err != nil {
		t.Fatal(err)
	}
	l.Release()

	l, err = Acquire(dir, "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if !l.PreviousStopClean() {
		t.Error("after a clean stop: got PreviousStopClean false, want true")
	}
	b, _ := os.ReadFile(l.Path())
	if got, want := strings.TrimSpace(string(b)), "pid "+strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("lock file holds %q, want %q", got, want)
	}
}
