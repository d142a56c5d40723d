package protocol

import (
	"fmt"

	"github.com/presencehub/presencehub/internal/strictjson"
	"github.com/presencehub/presencehub/presence"
)

// ParseSchedule decodes a JSON schedule (presence.Schedule: the admin API's
// body, and the bucket's value of working hours) strictly (unknown fields,
// keys in another case than the field's, duplicate keys and trailing data
// are errors) and validates it.
func ParseSchedule(data []byte) (*presence.Schedule, error) {
	// strictjson names a bad value's place, weekday and index included
	// (weekly.monday[1].from).
	var s presence.Schedule
	if err := strictjson.Decode(data, &s); err != nil {
		return nil, fmt.Errorf("invalid schedule JSON: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
