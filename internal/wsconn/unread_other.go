//go:build !linux

package wsconn

// unreadBytes cannot tell on this platform, so a pong that arrived but was
// not read yet does not count for the keepalive.
func (c *Conn) unreadBytes() int { return 0 }
