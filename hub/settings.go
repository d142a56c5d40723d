package hub

import (
	"encoding/json"
	"fmt"

	"github.com/presencehub/presencehub/presence"
)

// Site settings: their types, bounds and meaning are package presence's
// (presence.Settings); the view holds each site's as the bucket stores
// them (s.<site>).

func decodeSettings(b []byte) (presence.Settings, error) {
	var s presence.Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("failed to decode site settings: %w", err)
	}
	return s, nil
}
