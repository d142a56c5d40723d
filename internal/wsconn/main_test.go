package wsconn

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the package's tests once with each poller this system has
// (epoll and a goroutine per connection on Linux): every test of a socket
// holds on both paths. Options whose Poller is empty get the one of the
// run. It fails them if any goroutine they started is still running when
// they end. Fuzzing runs once, with the default.
func TestMain(m *testing.M) {
	flag.Parse()
	pollers := []Poller{PollerGoroutine}
	if epollAvailable {
		pollers = append(pollers, PollerEpoll)
	}
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			pollers = []Poller{DefaultPoller}
		}
	}
	code := 0
	for _, p := range pollers {
		defaultPoller = p
		fmt.Printf("wsconn: tests with poller %s\n", p)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	defaultPoller = DefaultPoller
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
