package wsconn

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// writeLocked writes frame now if nothing is queued before it and the
// kernel takes it; whatever is left is queued for the writer goroutine.
func (c *Conn) writeLocked(frame []byte) {
	if c.tcpClosed {
		return
	}
	if !c.writing && c.sysfd >= 0 {
		n, err := c.writeNowLocked(frame)
		if err != nil {
			c.failLocked(fmt.Errorf("failed to write: %w", err))
			return
		}
		if n == len(frame) {
			return
		}
		frame, c.qTail = frame[n:], n > 0
	}
	c.q = append(c.q, frame)
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.writeQueued()
	}
}

// writeNowLocked writes what of b the kernel takes without blocking, and
// reports how much that was. It calls write(2) on the descriptor itself,
// not through RawConn.Write, whose locking and deadline checks cost about a
// tenth of a fan-out's CPU: the descriptor is open while mu is held and the
// connection not closed (only closeTCPLocked closes it), and no other
// goroutine writes while the writer goroutine does not run (c.writing).
// The socket is non-blocking (Go's poller made it so).
func (c *Conn) writeNowLocked(b []byte) (int, error) {
	for {
		n, err := syscall.Write(c.sysfd, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, nil
		case err != nil:
			return 0, os.NewSyscallError("write", err)
		}
		return max(n, 0), nil
	}
}

// writeQueued is the writer goroutine: it writes the queue until it is
// empty, then ends. When the queue held our close frame, it was last.
func (c *Conn) writeQueued() {
	defer c.writers.Done()
	for {
		c.mu.Lock()
		batch := c.q
		c.q, c.qTail = nil, false
		if len(batch) == 0 || c.tcpClosed {
			c.writing = false
			if c.closing && !c.closeSent && !c.tcpClosed {
				c.closeSentLocked()
			}
			done := c.doneAfterWriterLocked()
			c.mu.Unlock()
			done()
			return
		}
		c.mu.Unlock()
		if err := c.writeBlocking(batch); err != nil {
			c.mu.Lock()
			c.writing = false
			if !errors.Is(err, net.ErrClosed) {
				c.failLocked(fmt.Errorf("failed to write: %w", err))
			}
			c.closeTCPLocked()
			done := c.doneAfterWriterLocked()
			c.mu.Unlock()
			done()
			return
		}
	}
}

// doneAfterWriterLocked is what the writer goroutine calls as it ends: the
// connection's done when the poller's reader ended while it wrote
// (endPolled), else nothing.
func (c *Conn) doneAfterWriterLocked() func() {
	if c.readOver {
		return c.done
	}
	return func() {}
}

// writeBlocking writes frames in one writev, bounded by a deadline on the
// connection (a context would arm a timer per write). The deadline is
// cleared after: it would fail the next write made at once, long after.
func (c *Conn) writeBlocking(frames [][]byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.opts.writeTimeout()))
	bufs := net.Buffers(frames)
	if _, err := bufs.WriteTo(c.nc); err != nil {
		return err
	}
	return c.nc.SetWriteDeadline(time.Time{})
}
