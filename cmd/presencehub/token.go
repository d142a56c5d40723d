package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/transport"
)

// token prints a token signed with the hub's secret.
func token(args []string) error {
	fs := flag.NewFlagSet("presencehub token", flag.ContinueOnError)
	site := fs.String("site", "", "site id (required)")
	agent := fs.String("agent", "", "agent id, the token's sub (required)")
	groups := fs.String("groups", "", "comma list of the agent's groups")
	role := fs.String("role", transport.RoleAgent, "agent or admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	secret := fs.String("jwt-secret", "", "HS256 signing secret; default the one kept in --data-dir")
	dataDir := fs.String("data-dir", "./data", "data directory holding the generated secret")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The flags are checked in the command line's terms before the secret
	// is read: a missing --site is a usage error, not a bad token.
	help := "presencehub token --help"
	for _, f := range []struct{ flag, what, value string }{{"site", "site", *site}, {"agent", "agent", *agent}} {
		if f.value == "" {
			return &usageError{msg: "--" + f.flag + " is required", help: help}
		}
		if err := presence.ValidateID(f.what, f.value); err != nil {
			return &usageError{msg: "--" + f.flag + ": " + err.Error(), help: help}
		}
	}
	for _, g := range splitList(*groups) {
		if err := presence.ValidateID("group", g); err != nil {
			return &usageError{msg: "--groups: " + err.Error(), help: help}
		}
	}
	if *role != transport.RoleAgent && *role != transport.RoleAdmin {
		return &usageError{msg: fmt.Sprintf("--role %q: want agent or admin", *role), help: help}
	}
	if *ttl <= 0 {
		return &usageError{msg: fmt.Sprintf("--ttl %v: want a positive duration, e.g. 24h", *ttl), help: help}
	}
	key, err := loadSecret(*secret, *dataDir, false)
	if err != nil {
		return err
	}
	auth, err := transport.NewAuth(key)
	if err != nil {
		return err
	}
	tok, err := auth.Mint(transport.TokenRequest{Site: *site, Agent: *agent, Groups: splitList(*groups), Role: *role, TTL: *ttl})
	if err != nil {
		return fmt.Errorf("failed to mint token: %w", err)
	}
	fmt.Fprintln(os.Stdout, tok)
	return nil
}
