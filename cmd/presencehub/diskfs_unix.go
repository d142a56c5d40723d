//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// freeBytes is the space free for an unprivileged writer on the
// filesystem that holds dir; ok is false when the system does not say.
func freeBytes(dir string) (free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}

// syncDisk writes to disk what the operating system holds of the files
// under dir (sync(2): syncfs is Linux's alone, and the store is small).
func syncDisk(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	unix.Sync()
	return nil
}
