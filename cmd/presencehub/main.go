// Command presencehub runs the presence hub: agent and widget sockets over
// a NATS JetStream key-value bucket, with an embedded nats-server by default.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
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

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, stop, args)
	case "token":
		return token(args)
	default:
		fmt.Fprintf(os.Stderr, "presencehub: unknown command %q\n\nCommands:\n  serve   run the hub (default)\n  token   print a signed token\n", cmd)
		return errUsage
	}
}
