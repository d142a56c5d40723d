package transport

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzVerifyToken: no token panics Verify; a refusal never repeats the
// token; an accepted token has valid ids and a role.
func FuzzVerifyToken(f *testing.F) {
	auth, err := NewAuth([]byte("fuzz-secret"))
	if err != nil {
		f.Fatal(err)
	}
	good, err := auth.Mint(TokenRequest{Site: "acme", Agent: "alice", Groups: []string{"sales"}, Role: RoleAgent, TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwic2l0ZSI6ImIifQ.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := auth.Verify(token)
		if err != nil {
			if len(token) >= 12 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q repeats the token", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q is not valid UTF-8", err)
			}
			return
		}
		if claims.Site == "" || claims.Subject == "" || (claims.Role != RoleAgent && claims.Role != RoleAdmin) {
			t.Fatalf("accepted claims %+v", claims)
		}
	})
}
