package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/presencehub/presencehub/hub"
	"github.com/presencehub/presencehub/internal/strictjson"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// adminAPI is the admin API's handlers (this file, admincontrol.go,
// webhooks.go and history.go): the part of the Server behind
// /v1/admin/sites/{site}/..., every request checked by admin.
type adminAPI struct{ s *Server }

// maxAdminBody bounds an admin request body.
const maxAdminBody = 64 << 10

func (a *adminAPI) routeAdmin() {
	s := a.s
	s.handleFunc("GET /v1/admin/sites/{site}/hours", a.admin(a.getHours))
	s.handleFunc("PUT /v1/admin/sites/{site}/hours", a.admin(a.putHours))
	s.handleFunc("DELETE /v1/admin/sites/{site}/hours", a.admin(a.deleteHours))
	s.handleFunc("GET /v1/admin/sites/{site}/groups/{group}/hours", a.admin(a.getHours))
	s.handleFunc("PUT /v1/admin/sites/{site}/groups/{group}/hours", a.admin(a.putHours))
	s.handleFunc("DELETE /v1/admin/sites/{site}/groups/{group}/hours", a.admin(a.deleteHours))
	s.handleFunc("GET /v1/admin/sites/{site}/settings", a.admin(a.getSettings))
	s.handleFunc("PUT /v1/admin/sites/{site}/settings", a.admin(a.putSettings))
	s.handleFunc("GET /v1/admin/sites/{site}/agents", a.admin(a.listAgents))
	s.handleFunc("GET /v1/admin/sites/{site}/agents/{agent}", a.admin(a.getAgent))
	s.handleFunc("PUT /v1/admin/sites/{site}/agents/{agent}/status", a.admin(a.putAgentStatus))
	s.handleFunc("DELETE /v1/admin/sites/{site}/agents/{agent}/devices/{device}", a.admin(a.revokeDevice))
}

// adminTarget is the site and group an admin request names, and the admin
// who asks (the token's subject).
type adminTarget struct{ site, group, admin string }

// admin checks the bearer token (role admin, for the site in the path) and
// the ids in the path before calling h.
func (a *adminAPI) admin(h func(http.ResponseWriter, *http.Request, adminTarget)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := adminTarget{site: r.PathValue("site"), group: r.PathValue("group")}
		claims, status, err := a.adminClaims(r)
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="presencehub"`)
				writeError(w, status, protocol.CodeUnauthorized, err.Error())
			} else {
				writeError(w, status, protocol.CodeForbidden, err.Error())
			}
			return
		}
		if err := presence.ValidateID("site", t.site); err != nil {
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
			return
		}
		if claims.Site != t.site {
			writeError(w, http.StatusForbidden, protocol.CodeForbidden, "the token is for another site")
			return
		}
		if t.group != "" {
			if err := presence.ValidateID("group", t.group); err != nil {
				writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
				return
			}
		}
		t.admin = claims.Subject
		h(w, r, t)
	}
}

func (a *adminAPI) adminClaims(r *http.Request) (*Claims, int, error) {
	s := a.s
	authz := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return nil, http.StatusUnauthorized, errors.New("missing bearer token")
	}
	claims, err := s.auth.Verify(strings.TrimSpace(token))
	if err != nil {
		return nil, http.StatusUnauthorized, err
	}
	if claims.Role != RoleAdmin {
		return nil, http.StatusForbidden, errors.New("the token's role is not admin")
	}
	return claims, 0, nil
}

func (a *adminAPI) getHours(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	sched, ok := s.hub.Schedule(t.site, t.group)
	if !ok {
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, "no working hours set")
		return
	}
	writeJSON(w, http.StatusOK, sched)
}

func (a *adminAPI) putHours(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	sched, err := protocol.ParseSchedule(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	if err := s.hub.PutSchedule(r.Context(), t.site, t.group, sched); err != nil {
		a.adminFailed(w, "failed to store working hours", err)
		return
	}
	writeJSON(w, http.StatusOK, sched)
}

func (a *adminAPI) deleteHours(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	existed, err := s.hub.DeleteSchedule(r.Context(), t.site, t.group)
	if err != nil {
		a.adminFailed(w, "failed to remove working hours", err)
		return
	}
	if !existed {
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, "no working hours set")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *adminAPI) getSettings(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	settings := s.hub.Settings(t.site)
	if settings.AllowedOrigins == nil {
		settings.AllowedOrigins = []string{}
	}
	writeJSON(w, http.StatusOK, settings)
}

func (a *adminAPI) putSettings(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var settings presence.Settings
	if err := strictjson.Decode(body, &settings); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid settings JSON: "+err.Error())
		return
	}
	for i, o := range settings.AllowedOrigins {
		norm, err := normalizeOrigin(o)
		if err != nil {
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, fmt.Sprintf("allowed_origins[%d]: %v", i, err))
			return
		}
		settings.AllowedOrigins[i] = norm
	}
	if err := settings.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	if err := s.hub.PutSettings(r.Context(), t.site, settings); err != nil {
		a.adminFailed(w, "failed to store settings", err)
		return
	}
	writeJSON(w, http.StatusOK, s.hub.Settings(t.site))
}

func (a *adminAPI) listAgents(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	agents, err := s.hub.Agents(t.site)
	if err != nil {
		a.adminFailed(w, "failed to read agents", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]hub.AgentState{"agents": agents})
}

func (a *adminAPI) getAgent(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	id := r.PathValue("agent")
	if err := presence.ValidateID("agent", id); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	agent, ok, err := s.hub.Agent(t.site, id)
	switch {
	case err != nil:
		a.adminFailed(w, "failed to read agent", err)
	case !ok:
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, fmt.Sprintf("agent %q: the site has never seen it", id))
	default:
		writeJSON(w, http.StatusOK, agent)
	}
}

func (a *adminAPI) adminFailed(w http.ResponseWriter, what string, err error) {
	s := a.s
	if errors.Is(err, hub.ErrNotReady) {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the hub is still loading; try again")
		return
	}
	// NATS could not take the change (an election, a full disk): not the
	// client's mistake, and it may work later.
	if errors.Is(err, hub.ErrUnavailable) || s.cfg.Ready() != nil {
		s.log.Warn(what, "err", err)
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, what+": NATS cannot store changes now; try again later")
		return
	}
	s.log.Error(what, "err", err)
	writeError(w, http.StatusInternalServerError, protocol.CodeInternal, what)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, fmt.Sprintf("body over %d bytes (64 KiB)", maxAdminBody))
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The server's read timeout (HTTPLimits.ReadTimeout) ran out
			// while the client was still sending.
			writeError(w, http.StatusRequestTimeout, protocol.CodeBadRequest, "body not received in time")
		default:
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "failed to read body")
		}
		return nil, false
	}
	return body, true
}

// normalizeOrigin checks that o is a web origin (scheme://host[:port], no
// path) and returns it in lower case.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("invalid origin %q: want scheme://host[:port], e.g. https://shop.example", protocol.Truncate(o, 80))
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// originAllowed reports whether a request's Origin may use the site's widget:
// any origin when the site allows all, and requests without Origin (not from
// a browser page) always.
func originAllowed(origin string, allowed []string) bool {
	if origin == "" || len(allowed) == 0 {
		return true
	}
	norm, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	for _, a := range allowed {
		if a == norm {
			return true
		}
	}
	return false
}
