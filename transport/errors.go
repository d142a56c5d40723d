package transport

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/presencehub/presencehub/protocol"
)

// Every error the HTTP side answers, but for the operations endpoints'
// plain text (/healthz, /readyz), is JSON in the API's words:
// {"error":{"code":"..","message":".."}}, with a code of package protocol.

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type httpError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var e httpError
	e.Error.Code, e.Error.Message = code, message
	writeJSON(w, status, e)
}

// refuseHandshake answers a request to a socket endpoint that is not a
// WebSocket handshake (wsconn.Options.Refuse): 426 for a plain request,
// 400 for a broken handshake, 403 for an Origin not allowed; the headers
// that say what is needed are set already.
func refuseHandshake(w http.ResponseWriter, status int, err error) {
	code, message := protocol.CodeBadRequest, err.Error()
	switch status {
	case http.StatusUpgradeRequired:
		code = protocol.CodeUpgradeRequired
		message = "this endpoint is a WebSocket: " + message
	case http.StatusForbidden:
		code = protocol.CodeForbidden
	case http.StatusMethodNotAllowed:
		code = protocol.CodeMethodNotAllowed
	case http.StatusInternalServerError:
		code, message = protocol.CodeInternal, "failed to open the socket"
	}
	writeError(w, status, code, message)
}

// unmatched is the writer of a request no route takes: it replaces the
// mux's plain-text 404 and 405 with JSON errors, keeping the headers the
// mux set (Allow), and passes anything else (a redirect to the cleaned
// path) through.
type unmatched struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (u *unmatched) WriteHeader(status int) {
	switch status {
	case http.StatusNotFound:
		u.replaced = true
		writeError(u.ResponseWriter, status, protocol.CodeNotFound, fmt.Sprintf("no such path: %s", protocol.Truncate(u.r.URL.Path, 200)))
	case http.StatusMethodNotAllowed:
		u.replaced = true
		writeError(u.ResponseWriter, status, protocol.CodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", protocol.Truncate(u.r.Method, 20), protocol.Truncate(u.r.URL.Path, 200), u.Header().Get("Allow")))
	default:
		u.ResponseWriter.WriteHeader(status)
	}
}

func (u *unmatched) Write(b []byte) (int, error) {
	if u.replaced {
		return len(b), nil // the mux's plain text, replaced
	}
	return u.ResponseWriter.Write(b)
}
