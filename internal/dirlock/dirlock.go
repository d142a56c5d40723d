// Package dirlock keeps a directory to one process at a time: an exclusive
// lock on a file in it, which the operating system releases when the
// process ends, however it ends (flock(2) on Unix, LockFileEx on Windows),
// so a SIGKILL, a crash or a power cut leaves nothing to clean up by hand.
// The file also says who holds it (the holder's pid) and, between two
// holders, whether the last one let go after a clean stop.
//
// On systems with neither call (Plan 9, WebAssembly) Acquire takes no lock
// and says so in Lock.Enforced.
//
// Goroutines: none; a Lock is used by one goroutine.
package dirlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Lock is a held directory lock.
type Lock struct {
	f    *os.File
	path string
	// prevClean: the previous holder marked a clean stop.
	prevClean bool
	// Enforced is false where the system offers no lock that goes with
	// the process: the file is written, but nothing stops a second one.
	Enforced bool
}

// HeldError is Acquire's error when another process holds the lock.
type HeldError struct {
	Dir string
	// PID is the holder's process id, 0 when the file does not say (yet).
	PID int
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is locked by another process (pid %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("%s is locked by another process", e.Dir)
}

// errWouldBlock is what the platform's try-lock returns when the lock is
// held elsewhere.
var errWouldBlock = errors.New("lock held by another process")

// stoppedMark is the file's content after a clean stop; while held it
// reads "pid N".
const stoppedMark = "stopped"

// Acquire creates dir if need be and takes the lock on the file name in
// it, without waiting: a lock held by another process (or by another
// Acquire of this one) is a *HeldError.
func Acquire(dir, name string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock file: %w", err)
	}
	enforced, err := tryLock(f)
	if err != nil {
		held := &HeldError{Dir: dir}
		if errors.Is(err, errWouldBlock) {
			held.PID = holder(f)
			f.Close()
			return nil, held
		}
		f.Close()
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	prev, err := readAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to read lock file %s: %w", path, err)
	}
	l := &Lock{f: f, path: path, prevClean: strings.TrimSpace(prev) == stoppedMark, Enforced: enforced}
	if err := l.write("pid " + strconv.Itoa(os.Getpid())); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// PreviousStopClean reports whether the previous holder marked a clean
// stop (MarkStopped) before it let go. It is false after a crash, a kill
// or a power cut, when the file is new, and when the last holder never
// marked one.
func (l *Lock) PreviousStopClean() bool { return l.prevClean }

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// MarkStopped records in the file, on disk, that this holder stops
// cleanly; the next holder's PreviousStopClean reports it.
func (l *Lock) MarkStopped() error { return l.write(stoppedMark) }

// Release lets go of the lock. Exiting does the same.
func (l *Lock) Release() error { return l.f.Close() }

// write replaces the file's content with line and syncs it to disk.
func (l *Lock) write(line string) error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("failed to write lock file %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt([]byte(line+"\n"), 0); err != nil {
		return fmt.Errorf("failed to write lock file %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("failed to sync lock file %s: %w", l.path, err)
	}
	return nil
}

// holder reads the pid the holder wrote, or 0.
func holder(f *os.File) int {
	s, err := readAll(f)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(s), "pid "))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func readAll(f *os.File) (string, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<10))
	return string(b), err
}
