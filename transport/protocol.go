package transport

import (
	"encoding/json"
	"fmt"
)

// Error codes of error frames and HTTP error bodies.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeRateLimited  = "rate_limited"
	CodeInternal     = "internal"
	// CodeTooManyConnections answers a widget upgrade (HTTP 429) from a
	// client address that already holds Config.MaxWidgetsPerClient sockets.
	CodeTooManyConnections = "too_many_connections"
)

// clientMessage is any message an agent device sends; which fields matter
// depends on Type.
type clientMessage struct {
	Type   string       `json:"type"`
	Token  string       `json:"token,omitempty"`
	Device *helloDevice `json:"device,omitempty"`
	Status string       `json:"status,omitempty"`
	Ref    string       `json:"ref,omitempty"`
}

type helloDevice struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// maxRefLen bounds the ref a client may attach; it is echoed to every device.
const maxRefLen = 128

// decodeClientMessage parses one text frame from an agent device.
func decodeClientMessage(b []byte) (clientMessage, error) {
	var m clientMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("not a JSON object: %v", err)
	}
	if m.Type == "" {
		return m, fmt.Errorf("missing type")
	}
	if len(m.Ref) > maxRefLen {
		return m, fmt.Errorf("ref longer than %d bytes", maxRefLen)
	}
	return m, nil
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

func encodeError(code, message, ref string) []byte {
	b, _ := json.Marshal(errorFrame{Type: "error", Code: code, Message: message, Ref: ref})
	return b
}
