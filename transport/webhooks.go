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

func (a *adminAPI) routeWebhooks() {
	s := a.s
	s.handleFunc("POST /v1/admin/sites/{site}/webhooks", a.admin(a.createWebhook))
	s.handleFunc("GET /v1/admin/sites/{site}/webhooks", a.admin(a.listWebhooks))
	s.handleFunc("GET /v1/admin/sites/{site}/webhooks/{id}", a.admin(a.getWebhook))
	s.handleFunc("DELETE /v1/admin/sites/{site}/webhooks/{id}", a.admin(a.deleteWebhook))
	s.handleFunc("GET /v1/admin/sites/{site}/webhooks/{id}/deliveries", a.admin(a.webhookDeliveries))
}

// webhooksOff answers when the hub runs without webhooks, and reports
// whether it did.
func (a *adminAPI) webhooksOff(w http.ResponseWriter) bool {
	s := a.s
	if s.cfg.Webhooks != nil {
		return false
	}
	writeError(w, http.StatusNotFound, protocol.CodeNotFound, "webhooks are off on this hub: they need the event stream (--events-stream)")
	return true
}

func (a *adminAPI) createWebhook(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.webhooksOff(w) {
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
		a.webhookFailed(w, "failed to register webhook", err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+ep.ID)
	writeJSON(w, http.StatusCreated, ep)
}

func (a *adminAPI) listWebhooks(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.webhooksOff(w) {
		return
	}
	eps, err := s.cfg.Webhooks.List(r.Context(), t.site)
	if err != nil {
		a.webhookFailed(w, "failed to list webhooks", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]webhook.Endpoint{"webhooks": eps})
}

func (a *adminAPI) getWebhook(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.webhooksOff(w) {
		return
	}
	ep, err := s.cfg.Webhooks.Get(r.Context(), t.site, r.PathValue("id"))
	if err != nil {
		a.webhookFailed(w, "failed to read webhook", err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (a *adminAPI) deleteWebhook(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.webhooksOff(w) {
		return
	}
	if err := s.cfg.Webhooks.Delete(r.Context(), t.site, r.PathValue("id")); err != nil {
		a.webhookFailed(w, "failed to remove webhook", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *adminAPI) webhookDeliveries(w http.ResponseWriter, r *http.Request, t adminTarget) {
	s := a.s
	if a.webhooksOff(w) {
		return
	}
	ds, err := s.cfg.Webhooks.Deliveries(r.Context(), t.site, r.PathValue("id"))
	if err != nil {
		a.webhookFailed(w, "failed to read webhook deliveries", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]webhook.Delivery{"deliveries": ds})
}

func (a *adminAPI) webhookFailed(w http.ResponseWriter, what string, err error) {
	var field *webhook.FieldError
	switch {
	case errors.As(err, &field):
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, field.Error())
	case errors.Is(err, webhook.ErrNotFound):
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, "no such webhook")
	case errors.Is(err, webhook.ErrTooMany):
		writeError(w, http.StatusConflict, "limit_reached", err.Error())
	default:
		a.adminFailed(w, what, err)
	}
}
