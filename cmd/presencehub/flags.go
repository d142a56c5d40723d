package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// parseFlags parses args into fs; every flag not given on the command line
// is read from the environment as PRESENCE_<NAME> (dashes as underscores).
// -h or --help prints the command's usage to stdout and returns
// errHelpShown; a bad command line is a *usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, envName(f.Name))
	})
	// The flag package prints the error and the whole usage itself; main
	// prints one line and a hint instead, so both are silenced here.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	help := fs.Name() + " --help"
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, os.Stdout)
			return errHelpShown
		}
		return &usageError{msg: err.Error(), help: help}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q (flags start with -)", fs.Arg(0)), help: help}
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("invalid %s: %w", envName(f.Name), e)
			}
		}
	})
	return err
}

// printUsage writes a command's usage: what it does and its flags.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	cmd := strings.TrimPrefix(fs.Name(), "presencehub ")
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		fmt.Fprintf(w, "Usage: %s\n\n%s.\n", fs.Name(), upperFirst(summary(cmd)))
		return
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\n%s.\n", fs.Name(), upperFirst(summary(cmd)))
	fmt.Fprintln(w, "\nFlags (each also read from the environment variable shown):")
	fs.SetOutput(w)
	defer fs.SetOutput(io.Discard)
	fs.PrintDefaults()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func envName(flagName string) string {
	return "PRESENCE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// splitList splits a comma list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseTrustedProxies parses --trusted-proxies: a comma list of CIDRs or
// single addresses. "none" or an empty list trusts nobody, which is a
// non-nil empty slice: transport.Config reads nil as "the defaults".
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	if strings.TrimSpace(s) == "none" {
		return out, nil
	}
	for _, item := range splitList(s) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, addrErr := netip.ParseAddr(item)
			if addrErr != nil {
				return nil, fmt.Errorf("invalid --trusted-proxies entry %q (want a CIDR such as 10.0.0.0/8, or an address): %w", item, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// prefixList is the --trusted-proxies form of prefixes.
func prefixList(prefixes []netip.Prefix) string {
	items := make([]string, len(prefixes))
	for i, p := range prefixes {
		items[i] = p.String()
	}
	return strings.Join(items, ",")
}
