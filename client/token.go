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

// tokenTimes reads the iat and exp claims of a JWT without verifying it
// (only the hub can): the client needs them to replace a token before it
// expires. Either is zero when absent or unreadable.
func tokenTimes(token string) (iat, exp time.Time) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, time.Time{}
	}
	var claims struct {
		IAT json.Number `json:"iat"`
		EXP json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, time.Time{}
	}
	return numericDate(claims.IAT), numericDate(claims.EXP)
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
