// Package archtest holds no code, only a test: that the module's packages
// import each other in one direction, cmd -> transport and web -> hub ->
// protocol -> presence (client, the Go SDK, beside transport on protocol
// alone), and that presence, the product's rules, stays pure Go with no
// network, NATS or other third-party package underneath it. Packages under
// internal/ have no layer: what they import counts against whoever imports
// them. The layers are the map in arch_test.go.
//
// Goroutines: none; the test runs `go list -deps -json ./...` once.
package archtest
