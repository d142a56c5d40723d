package protocol

import "time"

// TimeFormat is RFC 3339 with milliseconds, the format of every time on the
// wire.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Time is a time.Time that encodes in TimeFormat, in UTC.
type Time time.Time

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(TimeFormat) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var tt time.Time
	if err := tt.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = Time(tt)
	return nil
}

// OptionalTime returns t as a *Time, nil for the zero time.
func OptionalTime(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	tt := Time(t)
	return &tt
}
