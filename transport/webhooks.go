package transport

import (
	"errors"
	"net/http"

	"github.com/presencehub/presencehub/internal/strictjson"
	"github.com/presencehub/presencehub/protocol"
	"github.com/presencehub/presencehub/transport/webhook"
)

// The webhooks API (docs/events.md): an admin of a site registers, lists
// and removes the site's endpoints and reads their recent attempts.

func (s *Server) routeWebhooks() {
	s.handleFunc("POST /v1/admin/sites/{site}/webhooks", s.admin(s.createWebhook))
	s.handleFunc("GET /v1/admin/sites/{site}/webhooks", s.admin(s.listWebhooks))
	s.handleFunc("GET /v1/admin/sites/{site}/webhooks/{id}", s.admin(s.getWebhook))
	s.handleFunc("DELETE /v1/admin/sites/{site}/webhooks/{id}", s.admin(s.deleteWebhook))
	s.handleFunc("GET /v1/admin/sites/{site}/webhooks/{id}/deliveries", s.admin(s.webhookDeliveries))
}

// webhooksOff answers when the hub runs without webhooks, and reports
// whether it did.
func (s *Server) webhooksOff(w http.ResponseWriter) bool {
	if s.cfg.Webhooks != nil {
		return false
	}
	writeError(w, http.StatusNotFound, "not_found", "webhooks are off on this hub: they need the event stream (--events-stream)")
	return true
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, t adminTarget) {
	if s.webhooksOff(w) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var reg webhook.Registration
	if err := strictjson.Decode(body, &reg); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid webhook JSON: "+err.Error())
		return
	}
	ep, err := s.cfg.Webhooks.Create(r.Context(), t.site, reg)
	if err != nil {
		s.webhookFailed(w, "failed to register webhook", err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+ep.ID)
	writeJSON(w, http.StatusCreated, ep)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, t adminTarget) {
	if s.webhooksOff(w) {
		return
	}
	eps, err := s.cfg.Webhooks.List(r.Context(), t.site)
	if err != nil {
		s.webhookFailed(w, "failed to list webhooks", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]webhook.Endpoint{"webhooks": eps})
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, t adminTarget) {
	if s.webhooksOff(w) {
		return
	}
	ep, err := s.cfg.Webhooks.Get(r.Context(), t.site, r.PathValue("id"))
	if err != nil {
		s.webhookFailed(w, "failed to read webhook", err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, t adminTarget) {
	if s.webhooksOff(w) {
		return
	}
	if err := s.cfg.Webhooks.Delete(r.Context(), t.site, r.PathValue("id")); err != nil {
		s.webhookFailed(w, "failed to remove webhook", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request, t adminTarget) {
	if s.webhooksOff(w) {
		return
	}
	ds, err := s.cfg.Webhooks.Deliveries(r.Context(), t.site, r.PathValue("id"))
	if err != nil {
		s.webhookFailed(w, "failed to read webhook deliveries", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]webhook.Delivery{"deliveries": ds})
}

func (s *Server) webhookFailed(w http.ResponseWriter, what string, err error) {
	var field *webhook.FieldError
	switch {
	case errors.As(err, &field):
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, field.Error())
	case errors.Is(err, webhook.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such webhook")
	case errors.Is(err, webhook.ErrTooMany):
		writeError(w, http.StatusConflict, "limit_reached", err.Error())
	default:
		s.adminFailed(w, what, err)
	}
}
