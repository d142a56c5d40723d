// Package jsclient holds the sources of the JavaScript/TypeScript SDK,
// the npm package @presencehub/client (package.json, README.md and the
// ES modules under src/), for the Go code that serves them: the hub's
// pages import the SDK's modules from /static/, and /widget.js inlines
// src/watch-widget.js (package web).
//
// The SDK's sources live here, once; nothing copies them. Its tests
// (test/, run with node's test runner against a real presencehub
// process) run from this package's Go test, so that `go test ./...` runs
// them too.
package jsclient

import "embed"

// Sources holds the SDK's ES modules, as
// src/NAME.
//
//go:embed src/*.js
var Sources embed.FS
