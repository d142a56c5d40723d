package wsconn

import "time"

// keepAliveLocked runs at the keepalive's deadline (pingAt): it sends a
// ping every PingInterval, whatever the pong timeout, and closes the
// connection with 1008 once the oldest ping not answered is PongTimeout old
// and nothing else says the peer is there. Every pong answers all the pings
// before it (they carry no payload). It sets pingAt to whichever comes
// first, the next ping or the next pong deadline; the caller re-arms.
func (c *Conn) keepAliveLocked(now int64) {
	c.pingAt = 0
	if c.closing {
		return // the close timeout governs from now on
	}
	pongTimeout := int64(c.opts.pongTimeout())
	if c.unanswered != 0 && c.ponged.Load() < c.unanswered && now-c.unanswered >= pongTimeout {
		if c.silentSince(c.unanswered) {
			c.closeLocked(StatusPolicyViolation, "no pong in time", false)
			return
		}
		// Not silent: judged again from the next ping.
		c.unanswered = 0
	}
	if now >= c.nextPing {
		if c.unanswered == 0 || c.ponged.Load() >= c.unanswered {
			c.unanswered = now
		}
		c.writeLocked(appendFrame(nil, opPing, nil))
		c.nextPing = now + int64(c.opts.PingInterval)
		if c.closing {
			return // the write failed
		}
	}
	next := c.nextPing
	if c.unanswered != 0 && c.ponged.Load() < c.unanswered {
		next = min(next, c.unanswered+pongTimeout)
	}
	c.pingAt = max(next, now+int64(time.Millisecond))
}

// silentSince reports whether the peer is to be taken for gone after a ping
// sent at sent (unix nanoseconds): no pong read since, and nothing waiting
// to be read. Bytes waiting in the kernel mean the peer is still sending
// while this process is slow to read (a starved process), which is no
// reason to drop the peer. A reader held up by its handler is not allowed
// for: handlers do not wait (see Run).
func (c *Conn) silentSince(sent int64) bool {
	if c.ponged.Load() >= sent {
		return false
	}
	return c.unreadBytes() == 0
}
