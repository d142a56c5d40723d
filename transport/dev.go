package transport

import (
	"net/http"
	"strings"
	"time"

	"github.com/presencehub/presencehub/protocol"
)

// DevSite is the site the --dev mode's pages and tokens use, and DevGroups
// its groups.
const DevSite = "demo"

// DevGroups are the demo site's groups.
var DevGroups = []string{"sales", "support"}

// devTokenTTL is how long a dev token lasts.
const devTokenTTL = 12 * time.Hour

// DevTokenHandler mints tokens for the demo site, for the pages in --dev
// mode: GET /dev/token?agent=A[&groups=g1,g2][&role=agent|admin] answers
// {"token":"..","site":"demo"}. It must be mounted only in dev mode; see
// DevTokenRefused.
func DevTokenHandler(auth *Auth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		agent := q.Get("agent")
		if agent == "" {
			agent = "alice"
		}
		role := q.Get("role")
		if role == "" {
			role = RoleAgent
		}
		var groups []string
		for _, g := range strings.Split(q.Get("groups"), ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		tok, err := auth.Mint(TokenRequest{Site: DevSite, Agent: agent, Groups: groups, Role: role, TTL: devTokenTTL})
		if err != nil {
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]string{"token": tok, "site": DevSite})
	})
}

// DevTokenRefused answers /dev/token outside dev mode.
func DevTokenRefused() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, "/dev/token exists only when the hub runs with --dev")
	})
}
