package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	err := run(os.Args[1:])
	var usage *usageError
	switch {
	case err == nil:
	case errors.As(err, &usage):
		// One line and where to read more: the whole usage would bury the
		// mistake.
		fmt.Fprintf(os.Stderr, "%s\nRun '%s' for usage.\n", usage.msg, usage.help)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "presencehub:", err)
		os.Exit(1)
	}
}

// usageError is a command line that cannot run: main prints msg and the
// command that shows the usage, and exits 2.
type usageError struct {
	msg  string
	help string // e.g. "presencehub serve --help"
}

func (e *usageError) Error() string { return e.msg }

// errHelpShown reports that help was asked for and printed: the command ends
// there, successfully.
var errHelpShown = errors.New("help shown")

// commands are the subcommands, with the line that describes each in the
// help.
var commands = []struct{ name, summary string }{
	{"serve", "run the hub (the default command)"},
	{"token", "print a signed token for an agent or an admin"},
	{"version", "print the version"},
}

func summary(cmd string) string {
	for _, c := range commands {
		if c.name == cmd {
			return c.summary
		}
	}
	return ""
}

// printHelp writes the list of commands.
func printHelp(w io.Writer) {
	fmt.Fprintln(w, "presencehub is a real-time presence hub: agents' statuses, followed by their devices and chat widgets.")
	fmt.Fprintln(w, "\nUsage:\n  presencehub [command] [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'presencehub <command> --help' for a command's flags; each can also be set in the")
	fmt.Fprintln(w, "environment as PRESENCE_<FLAG> (dashes as underscores).")
}

// buildVersion is set at link time (-ldflags "-X main.buildVersion=v1.2.3"),
// as the Dockerfile does with its VERSION build argument.
var buildVersion = ""

// version is the link-time version; else the module version and the VCS
// revision and commit time the binary was built from (go build in a git
// checkout stamps them; `go install module@version` gives the version);
// "(devel)" alone when nothing was stamped (see unstampedHint).
func version() string {
	info, ok := debug.ReadBuildInfo()
	return versionOf(buildVersion, info, ok)
}

// unstampedHint is what `presencehub version` adds to a bare "(devel)".
const unstampedHint = "no version stamped: go run, and go build with -buildvcs=false or outside a git checkout, record none;\n" +
	`build with go build in the repository for its commit and time, or with -ldflags "-X main.buildVersion=v1.2.3"`

func versionOf(linked string, info *debug.BuildInfo, ok bool) string {
	if linked != "" {
		return linked
	}
	if !ok {
		return "unknown (built without module information)"
	}
	v := info.Main.Version
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	v += " " + rev
	if at != "" {
		v += " " + at
	}
	if modified {
		v += " (modified)"
	}
	return v
}

func run(args []string) error {
	err := runCommand(args)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func runCommand(args []string) error {
	// serve is the default command: a first argument that is a flag is
	// serve's, except the ones asking for the version or the help.
	cmd := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			cmd, args = "help", args[1:]
		case a == "-version" || a == "--version" || !strings.HasPrefix(a, "-"):
			cmd, args = a, args[1:]
		}
	}
	switch cmd {
	case "help":
		if len(args) == 0 {
			printHelp(os.Stdout)
			return nil
		}
		if summary(args[0]) == "" {
			return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), help: "presencehub help"}
		}
		return runCommand([]string{args[0], "--help"}) // help serve is serve --help
	case "version", "--version", "-version":
		if err := parseFlags(flag.NewFlagSet("presencehub version", flag.ContinueOnError), args); err != nil {
			return err
		}
		v := version()
		fmt.Println("presencehub", v)
		if v == "(devel)" {
			fmt.Println(unstampedHint)
		}
		return nil
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, stop, args)
	case "token":
		return token(args)
	default:
		return &usageError{msg: fmt.Sprintf("unknown command %q", cmd), help: "presencehub help"}
	}
}
