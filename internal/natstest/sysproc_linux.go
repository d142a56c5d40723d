package natstest

import "syscall"

// sysProcAttr makes the kernel kill a node if the test process dies without
// cleaning up (a panic, a timeout), so no nats-server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
