package transport

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/presencehub/presencehub/internal/strictjson"
	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// Admin control of a site's agents: setting an agent's status and revoking
// one of its devices (docs/protocol.md, Admin API).

// agentStatusBody is the body of PUT .../agents/{agent}/status.
type agentStatusBody struct {
	Status *string `json:"status"`
}

func (a *adminAPI) putAgentStatus(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	agent := r.PathValue("agent")
	if err := presence.ValidateID("agent", agent); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req agentStatusBody
	if err := strictjson.Decode(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid status JSON: "+err.Error())
		return
	}
	if req.Status == nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "status: required")
		return
	}
	status, err := presence.ParseStatus(*req.Status)
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "status: "+err.Error())
		return
	}
	state, ok, err := s.hub.SetAgentStatus(r.Context(), t.site, agent, status, t.admin)
	switch {
	case err != nil:
		a.adminFailed(w, "failed to set the agent's status", err)
	case !ok:
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, fmt.Sprintf("agent %q: the site has never seen it", agent))
	default:
		s.log.Info("agent status set by an admin", "site", t.site, "agent", agent, "status", status, "admin", t.admin)
		writeJSON(w, http.StatusOK, state)
	}
}

func (a *adminAPI) revokeDevice(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	agent := r.PathValue("agent")
	if err := presence.ValidateID("agent", agent); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		return
	}
	id, err := uuid.Parse(r.PathValue("device"))
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, fmt.Sprintf("invalid device id %q: want a UUID", protocol.Truncate(r.PathValue("device"), 70)))
		return
	}
	device := id.String()
	found, err := s.hub.RevokeDevice(r.Context(), t.site, agent, device)
	switch {
	case err != nil:
		a.adminFailed(w, "failed to revoke the device", err)
	case !found:
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, fmt.Sprintf("device %q of agent %q: no session and no grace", device, agent))
	default:
		s.log.Info("device revoked", "site", t.site, "agent", agent, "device", device, "admin", t.admin)
		w.WriteHeader(http.StatusNoContent)
	}
}
