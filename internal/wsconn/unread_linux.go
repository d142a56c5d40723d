package wsconn

import "golang.org/x/sys/unix"

// unreadBytes is how many bytes the kernel holds for the connection that
// the reader has not read yet; 0 when it cannot tell.
func (c *Conn) unreadBytes() int {
	if c.fd == nil {
		return 0
	}
	var n int
	if err := c.fd.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		return 0
	}
	return n
}
