package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

func TestWidgetFrameStatus(t *testing.T) {
	encode := func(t *testing.T, v any) []byte {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	at := protocol.Time(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	tests := []struct {
		name   string
		frame  []byte
		want   string
		wantOK bool
	}{
		{"the hub's widget frame", encode(t, protocol.WidgetStatus{Type: "widget_status", Site: "acme", Status: presence.Busy, Reason: "all_busy", At: at}), "busy", true},
		{"site and group in the way", encode(t, protocol.WidgetStatus{Type: "widget_status", Site: `x","status":"online`, Group: `"status":"online"`, Status: presence.Offline, Reason: "no_agents", At: at}), "offline", true},
		{"an agent's status frame", []byte(`{"type":"status","status":"online","ref":"1"}`), "", false},
		{"an unknown status", []byte(`{"type":"widget_status","site":"acme","status":"away"}`), "", false},
		{"no status", []byte(`{"type":"widget_status","site":"acme"}`), "", false},
		{"cut short", []byte(`{"type":"widget_status","site":"acme","status":"onl`), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := widgetFrameStatus(tt.frame)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %q, %v from %s; want %q, %v", got, ok, tt.frame, tt.want, tt.wantOK)
			}
		})
	}
}
