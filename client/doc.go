// Package client is a Go client of presencehub: an agent's device (a
// desktop app, a mobile app, a support bot, a chat backend acting for an
// agent) speaking the agent socket protocol of docs/protocol.md, and a
// watcher of what a chat widget shows.
//
//	c, err := client.Dial(ctx, client.Config{
//		URL:       "https://presence.example.com",
//		TokenFunc: fetchToken, // asked again before the token expires
//		Device:    client.Device{ID: savedDeviceID, Kind: client.Desktop},
//	})
//	if err != nil { ... }
//	defer c.Close()
//	save(c.Welcome().Device) // the same id next time: the grace covers a restart
//	st, err := c.SetStatus(ctx, client.Busy)
//	for ev := range c.Events() {
//		switch ev := ev.(type) {
//		case client.Status:  // the agent's status changed, here or elsewhere
//		case client.State:   // connecting (with why), open, closed (with why)
//		}
//	}
//
// # What the client does for you
//
// Dial says hello and waits for the welcome. From then on the client keeps
// the device connected: when the socket drops (the network, a hub that
// restarts or shuts down: 1001, 1011, 1013, a slow reader: 1008) it
// reconnects with jittered exponential backoff, sending the device id of the
// welcome, so that a reconnect inside the grace continues the same device
// and nobody sees the agent go. It never says the agent's status on a
// reconnect: the status the hub stored wins (it may have been changed on
// another device, by an admin or by a rule meanwhile), and the Welcome that
// follows the reconnect says what it is. It says again what the hub does not
// carry over to a new session: background mode and the roster subscription.
//
// Tokens: with Config.TokenFunc, the client reads the token's exp (without
// verifying it: only the hub can) and gets a new token a quarter of the
// token's life before it expires, at most a minute before. It then opens a
// second socket for the same device with the new token and, once that one
// is welcomed, moves to it; the hub closes the old one (4002, expected
// here), and nobody sees a gap. When the hub refuses a token anyway (4001:
// expired, say, on a clock that runs ahead), the client asks TokenFunc for
// another and reconnects; if a fresh token is refused twice in a row, it
// stops. Without TokenFunc, a refused token stops the client. Each socket's
// URL names the site of the token it says hello with (?site=, read the same
// way), so that a load balancer can keep a site's sockets on one replica
// (docs/routing.md).
//
// Close codes that stop the client (its Err, and the Err of the final State
// event): 4002, the same device id connected again elsewhere (ErrReplaced:
// reconnecting would take the device back from that session); 4005, an
// admin signed the device out (ErrRevoked: show the agent, and let them
// sign in again); 4003, too many devices (ErrTooManyDevices). Bye ends on
// 1000 once the logout is stored, and reconnects to say bye again after a
// 4004 (not stored in time).
//
// Calls that wait for the hub (SetStatus, Background, Foreground,
// SubscribeRoster) match its answer by ref, and return its error frames as
// *Error, which errors.Is matches to ErrUnavailable, ErrRateLimited and the
// other codes. They wait for a connection while the client reconnects, up to
// their context. A change that was sent on a socket that dropped before the
// answer fails with ErrConnectionLost: it may still have applied.
//
// # Goroutines
//
// A Client runs one goroutine from Dial until it stops: it reads the
// socket (coder/websocket answers the hub's pings only while someone reads,
// so it always reads), decodes each frame, answers the waiting calls, and
// sends events; when the socket ends, it sleeps its backoff, calls
// TokenFunc when needed, and connects again on the same goroutine. It never
// waits for the application: the Events channel drops its oldest event when
// full.
//
// A token refresh runs on a goroutine of its own (a time.AfterFunc timer's),
// only while it gets the token and opens and welcomes the new socket; it
// ends there, and the reader moves to the new socket once the hub closed the
// old one (or after 10 s, when a timer closes it). Calls write on the
// caller's goroutine: coder/websocket allows one writer at a time and
// serializes them. coder/websocket itself runs no goroutine per connection.
//
// Close, and the end of the client for any other reason, waits for all of
// these: no goroutine outlives a stopped client.
//
// WatchWidget runs one goroutine per watch, until its context ends: it
// reads the widget socket, and while the socket cannot be opened, polls
// between attempts.
package client
