// Package archtest holds no code, only a test: that the module's packages
// import each other in one direction, cmd -> transport and web -> hub ->
// presence, and that presence, the product's rules, stays pure Go with no
// network, NATS or other third-party package underneath it.
package archtest
