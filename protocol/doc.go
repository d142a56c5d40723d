// Package protocol is the wire protocol of presencehub's sockets and HTTP
// API, mirroring docs/protocol.md: what agent devices send, the frames
// devices, widgets and admins receive, error codes, close codes and the time
// format. It holds types and encoders only; it runs no goroutines and
// imports nothing of the module but the rules' value types (presence).
package protocol
