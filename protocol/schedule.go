package protocol

import (
	"encoding/json"
	"fmt"

	"github.com/presencehub/presencehub/internal/strictjson"
	"github.com/presencehub/presencehub/presence"
)

// ParseSchedule decodes a JSON schedule (presence.Schedule: the admin API's
// body, and the bucket's value of working hours) strictly (unknown fields,
// keys in another case than the field's, duplicate keys and trailing data
// are errors) and validates it.
func ParseSchedule(data []byte) (*presence.Schedule, error) {
	// Decode in steps so that a type error names the weekday or the
	// exception it is in: encoding/json leaves out map keys and indexes.
	var raw struct {
		Timezone   string                     `json:"timezone"`
		Weekly     map[string]json.RawMessage `json:"weekly"`
		Exceptions []json.RawMessage          `json:"exceptions"`
	}
	if err := strictjson.Decode(data, &raw); err != nil {
		return nil, fmt.Errorf("invalid schedule JSON: %w", err)
	}
	s := presence.Schedule{Timezone: raw.Timezone}
	if raw.Weekly != nil {
		s.Weekly = make(map[string][]presence.Interval, len(raw.Weekly))
	}
	for day, msg := range raw.Weekly {
		var ivs []presence.Interval
		if err := strictjson.Decode(msg, &ivs); err != nil {
			return nil, fmt.Errorf("invalid schedule JSON: weekly.%s: %w", Truncate(day, 70), err)
		}
		s.Weekly[day] = ivs
	}
	if raw.Exceptions != nil {
		s.Exceptions = make([]presence.Exception, len(raw.Exceptions))
	}
	for i, msg := range raw.Exceptions {
		if err := strictjson.Decode(msg, &s.Exceptions[i]); err != nil {
			return nil, fmt.Errorf("invalid schedule JSON: exceptions[%d]: %w", i, err)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
