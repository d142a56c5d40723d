package protocol

import (
	"fmt"

	"github.com/presencehub/presencehub/internal/strictjson"
)

// Types of the messages an agent device sends.
const (
	TypeHello           = "hello"
	TypeSetStatus       = "set_status"
	TypeActivity        = "activity"
	TypeBackground      = "background"
	TypeForeground      = "foreground"
	TypeSubscribeRoster = "subscribe_roster"
	TypeBye             = "bye"
)

// ClientMessage is any message an agent device sends; which fields matter
// depends on Type: hello (Token, Device), set_status (Status, Ref),
// activity, background, foreground, subscribe_roster, bye.
type ClientMessage struct {
	Type   string       `json:"type"`
	Token  string       `json:"token,omitempty"`
	Device *HelloDevice `json:"device,omitempty"`
	Status string       `json:"status,omitempty"`
	Ref    string       `json:"ref,omitempty"`
}

// HelloDevice is what a device says about itself in its hello.
type HelloDevice struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// MaxRefLen bounds the ref a client may attach; it is echoed to every
// device of the agent.
const MaxRefLen = 128

// DecodeClientMessage parses one text message from an agent device. Fields
// it does not know are ignored (a newer client may send more), but a known
// key spelled in another case, or given twice, is refused: the two would
// read differently to the client and to the hub.
func DecodeClientMessage(b []byte) (ClientMessage, error) {
	var m ClientMessage
	if err := strictjson.DecodeMessage(b, &m); err != nil {
		return m, fmt.Errorf("not a valid JSON message: %v", err)
	}
	if m.Type == "" {
		return m, fmt.Errorf("missing type")
	}
	if len(m.Ref) > MaxRefLen {
		return m, fmt.Errorf("ref longer than %d bytes", MaxRefLen)
	}
	return m, nil
}
