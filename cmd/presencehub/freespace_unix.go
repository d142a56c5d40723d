//go:build unix

package main

import "golang.org/x/sys/unix"

// freeBytes is the space free for an unprivileged writer on the
// filesystem that holds dir; ok is false when the system does not say.
func freeBytes(dir string) (free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
