//go:build unix && !linux

package natstest

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere
// the test's cleanup is what kills the nodes.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// waitStopped: elsewhere there is no /proc to read; SIGSTOP's delivery is
// trusted.
func waitStopped(int) {}
