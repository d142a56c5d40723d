package wsconn

import (
	"fmt"
	"sync"
)

// Poller says how a connection learns that it has bytes to read.
type Poller string

// The pollers. PollerEpoll exists only on Linux; elsewhere a connection
// asked for it gets a reader goroutine (PollerGoroutine), today's path on
// every system.
const (
	// PollerEpoll serves a connection from an epoll instance shared by all
	// of them: an idle connection has no goroutine, and one runs only while
	// there are bytes to parse (epoll_linux.go).
	PollerEpoll Poller = "epoll"
	// PollerGoroutine gives each connection a reader goroutine blocked in
	// read(2) through Go's own poller.
	PollerGoroutine Poller = "goroutine"
)

// defaultPoller is the poller of Options whose Poller is empty: epoll where
// it exists. The package's tests run their whole suite once with each
// (main_test.go).
var defaultPoller = DefaultPoller

// ParsePoller parses a --poller flag's value: "epoll" (Linux only) or
// "goroutine"; "" is DefaultPoller.
func ParsePoller(s string) (Poller, error) {
	switch p := Poller(s); p {
	case "":
		return DefaultPoller, nil
	case PollerGoroutine:
		return p, nil
	case PollerEpoll:
		if !epollAvailable {
			return "", fmt.Errorf("failed to parse poller %q: epoll exists only on Linux", s)
		}
		return p, nil
	}
	return "", fmt.Errorf("failed to parse poller %q: want %q or %q", s, PollerEpoll, PollerGoroutine)
}

func (o *Options) poller() Poller {
	if o.Poller == "" {
		return defaultPoller
	}
	return o.Poller
}

// readBufs holds the read buffers of connections served by the poller: a
// connection holds one only while it reads, so an idle one holds none.
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, pooledReadBufSize)
	return &b
}}

// pooledReadBufSize is the size of a pooled read buffer, larger than a
// reader goroutine's own (readBufSize): it is shared, so one read takes
// what a client sent at once, whatever its size.
const pooledReadBufSize = 4 << 10
