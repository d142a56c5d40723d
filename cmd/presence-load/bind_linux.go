package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindAddressNoPort lets a socket bound to a source address (--src) pick its
// port at connect(2), not at bind(2). A bind to port 0 searches the host's
// ephemeral ports for one no socket on that address holds; with tens of
// thousands held, that search took most of the generator's CPU while
// connecting (57% of it in a 16,700-socket run), enough to starve it into
// missing the hub's pings. connect(2) can reuse a port for different
// destinations and looks it up by the whole address pair.
// It is an optimisation only: a kernel without it still binds the old way.
func bindAddressNoPort(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}
