package client

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// maxRefreshLead is how long before its expiry a token is replaced at most;
// a short-lived token is replaced after three quarters of its life.
const maxRefreshLead = time.Minute

// tokenClaims are what the client reads of a JWT, without verifying it
// (only the hub can): its times, to replace it before it expires, and its
// site, which the client names in the socket's URL (agentURL).
type tokenClaims struct {
	iat, exp time.Time // zero when absent or unreadable
	site     string    // "" when absent or unreadable
}

// readToken reads a JWT's iat, exp and site claims without verifying it.
func readToken(token string) tokenClaims {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return tokenClaims{}
	}
	var claims struct {
		IAT  json.Number `json:"iat"`
		EXP  json.Number `json:"exp"`
		Site any         `json:"site"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return tokenClaims{}
	}
	site, _ := claims.Site.(string)
	return tokenClaims{iat: numericDate(claims.IAT), exp: numericDate(claims.EXP), site: site}
}

// numericDate reads a JWT NumericDate: seconds since the epoch, possibly
// with a fraction.
func numericDate(n json.Number) time.Time {
	f, err := n.Float64()
	if err != nil || f <= 0 {
		return time.Time{}
	}
	return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second)))
}

// refreshAt returns when a token issued at iat (zero: unknown, taken as
// now) that expires at exp should be replaced: a quarter of its life before
// exp, at most maxRefreshLead before. It returns the zero time for a token
// without exp.
func refreshAt(iat, exp, now time.Time) time.Time {
	if exp.IsZero() {
		return time.Time{}
	}
	if iat.IsZero() || iat.After(now) {
		iat = now
	}
	lead := min(maxRefreshLead, exp.Sub(iat)/4)
	return exp.Add(-max(lead, 0))
}
