// Package wsconn is the server side of RFC 6455 WebSockets for the hub:
// after the HTTP request it is the only code that touches a socket's
// connection, and it runs, on Linux, one epoll goroutine for all sockets
// and a few worker goroutines only while sockets have bytes to read
// (elsewhere, or with Options.Poller goroutine, a reader goroutine per
// socket), plus a writer goroutine per socket only while the kernel is
// behind.
//
// # What it owns
//
// Accept checks the opening handshake (GET, Connection: upgrade, Upgrade:
// websocket, version 13, a 16-byte key, the Origin), hijacks the connection
// from net/http and answers 101; no subprotocol or extension is negotiated.
// From then on a Conn owns every byte in both directions: reading and
// parsing frames, writing data frames, answering pings, sending pings and
// closing peers that stop answering, the close handshake, and the checks
// RFC 6455 asks of a server (masked frames, no RSV bits, no reserved
// opcodes, control frame rules, fragmentation rules, valid close codes,
// UTF-8 in text messages and close reasons, a size limit). Callers see whole
// messages, a type and bytes, and send messages; they never see frames or
// the connection.
//
// Nothing is written after our close frame: one mutex guards the state of
// closing and every write, data or control, and the close frame is the last
// thing ever queued. When the peer closes first, its code is echoed and the
// connection closed once the echo is written; when we close first, the peer
// has CloseTimeout to answer before the connection is closed anyway. After
// a protocol error (1002), invalid UTF-8 (1007) or an oversized message
// (1009), what the peer sends next is read and dropped until it closes or
// the close timeout passes.
//
// # Goroutines
//
// On Linux, by default (Options.Poller epoll), an idle connection has no
// goroutine: its socket is in an epoll instance shared by every connection,
// whose one goroutine (epoll_linux.go, running while any socket is
// registered) queues a connection when its socket has bytes; a worker
// goroutine (at most 4 per CPU, 16 at least) then reads them from a pooled
// buffer, without blocking, feeds the parser and calls the handler until
// the kernel has nothing more, and takes the next connection queued, or
// ends after 50 ms without one (so a few workers, their stacks grown,
// serve steady traffic and bursts alike, and none runs without traffic).
// Pings and close timeouts of these connections are deadlines in one heap
// per epoll (deadlines.go), behind one timer, whose goroutine runs while
// deadlines are due. With Options.Poller goroutine, and on other systems (build
// tags), a Conn has one goroutine for as long as it is open, its reader,
// blocked in read(2) through Go's poller, and one timer for its deadlines.
//
// Writes cost no goroutine on either path while the peer keeps up: a frame
// sent to a connection with nothing queued is written at once by the
// caller, with one non-blocking write(2). Only what the kernel does not
// take is queued, and a writer goroutine runs while the queue is not empty,
// writing with a deadline through Go's poller (a socket in our epoll stays
// in Go's as well: an fd may be in several epoll sets).
//
// # Why its own epoll, and not a library
//
// Servers that read on readiness in Go take the socket away from Go's
// poller: github.com/lesismal/nbio (dupStdConn) dups the descriptor with
// RawConn.Control and closes the net.Conn, then does all its I/O itself;
// github.com/mailru/easygo's netpoll, as used with github.com/gobwas/ws,
// holds a dup from File(), a second descriptor per socket. Both also
// bring an event loop and buffers of their own. This package needs only to
// know when to read: its socket stays a net.Conn (the writer's deadlines,
// Close, TLS connections that keep a reader goroutine), the same
// descriptor is added to one more epoll set through golang.org/x/sys/unix,
// already a dependency, and a read is RawConn.Read with a function that
// never waits. That is about 550 lines with the deadline heap, with no
// descriptor more per socket (a replica runs near its limit of
// descriptors) and no library to follow.
//
// # Why not github.com/coder/websocket on the server
//
// The hub used coder/websocket for the handshake and reading, and wrote its
// own frames with write(2). That made two owners of one connection: on a
// protocol error the library wrote a close frame through its own buffered
// writer while the hub's fan-out could still write a text frame after it,
// with no lock in common (RFC 6455 section 5.5.1 forbids data after a close
// frame). Taking the protocol over entirely, as nats-server's websocket.go
// does, gives one owner of the bytes, and with it:
//
//   - frames prepared once: a server's frames are not masked, so a message
//     fanned out to ten thousand sockets is framed once (TextFrame) and the
//     same bytes are handed to each (SendFrame), with no copy per socket
//     and no library buffer in between;
//   - writes without a goroutine, as above, where the library's Write blocks
//     the caller and needs a context;
//   - strict checks of what clients send, where the library accepted invalid
//     UTF-8 and echoed any close reason;
//   - a way to poller readiness: the frame parser is a state machine fed
//     bytes, separate from the goroutine that reads, so the poller's
//     goroutines feed the same parser as a reader goroutine, and nothing
//     above this package changes.
//
// coder/websocket remains the client of the tests and of cmd/presence-load.
package wsconn
