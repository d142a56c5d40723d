package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTokenTimes(t *testing.T) {
	enc := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	for _, tt := range []struct {
		token    string
		iat, exp int64
	}{
		{enc(`{"sub":"a","iat":1700000000,"exp":1700003600}`), 1700000000, 1700003600},
		{enc(`{"exp":1700003600.5}`), 0, 1700003600},
		{enc(`{"sub":"a"}`), 0, 0},
		{"not.a.token!", 0, 0},
		{"two.parts", 0, 0},
		{enc(`[]`), 0, 0},
	} {
		iat, exp := tokenTimes(tt.token)
		if iat.Unix() != tt.iat && !(tt.iat == 0 && iat.IsZero()) || exp.Unix() != tt.exp && !(tt.exp == 0 && exp.IsZero()) {
			t.Errorf("tokenTimes(%s) = %v, %v; want %d, %d", tt.token, iat, exp, tt.iat, tt.exp)
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
