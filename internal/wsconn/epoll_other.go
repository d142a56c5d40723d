//go:build !linux

package wsconn

// DefaultPoller is the poller used when Options.Poller is empty: a reader
// goroutine per connection, the only one on systems other than Linux.
const DefaultPoller = PollerGoroutine

const epollAvailable = false

// startPolled reports false: there is no epoll here, and every connection
// has a reader goroutine.
func (c *Conn) startPolled(func(MessageType, []byte), func()) bool { return false }

// unpollLocked has nothing to do without a poller.
func (c *Conn) unpollLocked() {}

// epoll is not used here: Conn.poll stays nil.
type epoll struct{}

// readable is never called without a poller.
func (c *Conn) readable() {}
