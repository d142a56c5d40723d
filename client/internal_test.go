package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// encToken is a JWT with payload, for reading without verifying.
func encToken(payload string) string {
	return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
}

func TestReadToken(t *testing.T) {
	for _, tt := range []struct {
		token    string
		iat, exp int64
		site     string
	}{
		{encToken(`{"sub":"a","site":"acme","iat":1700000000,"exp":1700003600}`), 1700000000, 1700003600, "acme"},
		{encToken(`{"exp":1700003600.5}`), 0, 1700003600, ""},
		{encToken(`{"sub":"a","site":42}`), 0, 0, ""},
		{"not.a.token!", 0, 0, ""},
		{"two.parts", 0, 0, ""},
		{encToken(`[]`), 0, 0, ""},
	} {
		got := readToken(tt.token)
		if got.iat.Unix() != tt.iat && !(tt.iat == 0 && got.iat.IsZero()) || got.exp.Unix() != tt.exp && !(tt.exp == 0 && got.exp.IsZero()) || got.site != tt.site {
			t.Errorf("readToken(%s) = %+v; want iat %d, exp %d, site %q", tt.token, got, tt.iat, tt.exp, tt.site)
		}
	}
}

// The agent socket's URL names the token's site, for load balancers that
// hash on it; a token without a valid site names none.
func TestAgentURL(t *testing.T) {
	const base = "wss://hub.example/v1/agent"
	for _, tt := range []struct{ token, want string }{
		{encToken(`{"sub":"a","site":"acme-1_B"}`), base + "?site=acme-1_B"},
		{encToken(`{"sub":"a"}`), base},
		{encToken(`{"sub":"a","site":"a&b=c"}`), base},
		{encToken(`{"sub":"a","site":""}`), base},
		{"opaque", base},
	} {
		if got := agentURL(base, tt.token); got != tt.want {
			t.Errorf("agentURL(%s) = %s, want %s", tt.token, got, tt.want)
		}
	}
}

func TestRefreshAt(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tt := range []struct {
		iat, exp time.Time
		want     time.Time
	}{
		{now, now.Add(24 * time.Hour), now.Add(24*time.Hour - time.Minute)}, // at most a minute before
		{now, now.Add(8 * time.Second), now.Add(6 * time.Second)},           // a quarter of a short life
		{time.Time{}, now.Add(4 * time.Second), now.Add(3 * time.Second)},   // no iat: from now
		{now, time.Time{}, time.Time{}},                                     // no exp: never
		{now, now.Add(-time.Second), now.Add(-time.Second)},                 // expired: at once
	} {
		if got := refreshAt(tt.iat, tt.exp, now); !got.Equal(tt.want) {
			t.Errorf("refreshAt(%v, %v) = %v, want %v", tt.iat, tt.exp, got, tt.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	for _, tt := range []struct {
		base, path string
		ws         bool
		want, err  string
	}{
		{"http://hub:8080", "/v1/agent", true, "ws://hub:8080/v1/agent", ""},
		{"https://hub.example/presence/", "/v1/agent", true, "wss://hub.example/presence/v1/agent", ""},
		{"wss://hub.example/v1/agent", "/v1/agent", true, "wss://hub.example/v1/agent", ""},
		{"ws://hub:8080?x=1", "/v1/sites/acme/status", false, "http://hub:8080/v1/sites/acme/status", ""},
		{"ftp://hub", "/v1/agent", true, "", "want an http"},
		{"http://", "/v1/agent", true, "", "no host"},
	} {
		u, err := endpoint(tt.base, tt.path, tt.ws)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("endpoint(%q) = %v, %v; want an error containing %q", tt.base, u, err, tt.err)
		case tt.err == "" && (err != nil || u.String() != tt.want):
			t.Errorf("endpoint(%q) = %v, %v; want %s", tt.base, u, err, tt.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	b := backoff{base: 500 * time.Millisecond, cap: 30 * time.Second}
	for i := range 100 {
		ceil := min(30*time.Second, 500*time.Millisecond<<min(i, 20))
		if d := b.next(); d < 0 || d > ceil {
			t.Fatalf("attempt %d: got %v, want 0 to %v", i, d, ceil)
		}
	}
	b.reset()
	if d := b.next(); d > 500*time.Millisecond {
		t.Fatalf("got %v after reset, want at most 500ms", d)
	}
	for range 100 {
		if d := jitter(time.Minute); d < 45*time.Second || d > 75*time.Second {
			t.Fatalf("jitter(1m) = %v, want 45s to 75s", d)
		}
	}
}

func TestErrorsMatch(t *testing.T) {
	err := fmt.Errorf("failed to set status busy: %w", &Error{Code: "unavailable", Message: "x", Ref: "r1"})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited) {
		t.Fatalf("got Is unavailable %v, rate_limited %v; want true, false", errors.Is(err, ErrUnavailable), errors.Is(err, ErrRateLimited))
	}
	ce := fmt.Errorf("failed: %w", &CloseError{Code: 4001, Reason: "bad", Frame: &Error{Code: "unauthorized"}})
	if !errors.Is(ce, ErrTokenRefused) || !errors.Is(ce, ErrUnauthorized) || errors.Is(ce, ErrReplaced) {
		t.Fatalf("a 4001 after unauthorized matches wrongly: %v", ce)
	}
	for code, want := range map[int]error{4002: ErrReplaced, 4003: ErrTooManyDevices, 4005: ErrRevoked} {
		if !errors.Is(&CloseError{Code: code}, want) {
			t.Errorf("close %d does not match %v", code, want)
		}
	}
}
