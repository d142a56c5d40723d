//go:build !unix

package main

// freeBytes does not know the free space here: the store keeper then
// restarts JetStream without waiting for it.
func freeBytes(string) (free uint64, ok bool) { return 0, false }

// syncDisk does nothing here: a clean stop is marked without it.
func syncDisk(string) error { return nil }
