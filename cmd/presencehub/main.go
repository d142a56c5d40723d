// Command presencehub runs the presence hub: agent and widget sockets over
// a NATS JetStream key-value bucket, with an embedded nats-server by default.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "presencehub:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// buildVersion is set at link time (-ldflags "-X main.buildVersion=v1.2.3").
var buildVersion = ""

// version is the link-time version, else the module version and VCS
// revision the binary was built from.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "serve"
	if len(args) > 0 && (len(args[0]) > 0 && args[0][0] != '-' || args[0] == "--version" || args[0] == "-version") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version", "--version", "-version":
		fmt.Println("presencehub", version())
		return nil
	case "serve":
		return serve(ctx, stop, args)
	case "token":
		return token(args)
	default:
		fmt.Fprintf(os.Stderr, "presencehub: unknown command %q\n\nCommands:\n  serve     run the hub (default); serve --help lists its flags\n  token     print a signed token; token --help lists its flags\n  version   print the version (also --version)\n", cmd)
		return errUsage
	}
}
