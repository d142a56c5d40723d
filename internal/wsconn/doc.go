// Package wsconn is the server side of RFC 6455 WebSockets for the hub:
// after the HTTP request, it is the only code that touches a socket's
// connection.
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
// A Conn has one goroutine for as long as it is open, its reader, which
// parses what it reads and calls the handler with each message. Writes
// cost no goroutine while the peer keeps up: a frame sent to a connection
// with nothing queued is written at once by the caller, with one
// non-blocking write(2). Only what the kernel does not take is queued, and a
// writer goroutine runs while the queue is not empty, writing with a
// deadline. Pings and the close timeout run on timers.
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
//     bytes, separate from the goroutine that reads. A later version can
//     serve an idle socket without a goroutine (and without its stack and
//     read buffer) by reading only when the poller says the socket is
//     readable, and feed the same parser; nothing above this package
//     changes.
//
// coder/websocket remains the client of the tests and of cmd/presence-load.
package wsconn
