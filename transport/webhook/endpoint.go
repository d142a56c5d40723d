package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/presencehub/presencehub/hub/events"
	"github.com/presencehub/presencehub/protocol"
)

// Endpoint is a registered webhook endpoint as stored. Secret is set only
// where it is needed (signing) or shown once (the answer to a
// registration); Public returns the endpoint without it.
type Endpoint struct {
	ID     string   `json:"id"`
	Site   string   `json:"site"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret,omitempty"`
	// CreatedAt is when the endpoint was registered.
	CreatedAt time.Time `json:"created_at"`
	// DisabledAt and DisabledReason are set once deliveries stopped for
	// good (the endpoint answered 410 Gone).
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
}

// Public returns the endpoint without its secret.
func (e Endpoint) Public() Endpoint {
	e.Secret = ""
	return e
}

// Registration is what an admin asks to register.
type Registration struct {
	URL string `json:"url"`
	// Events are event types ("agent.status") or prefixes ("widget.*");
	// empty means every event. "*" means every event too.
	Events []string `json:"events"`
}

// FieldError is a registration refused because of one of its fields.
type FieldError struct {
	Field string // "url", "events[1]"
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// eventTypes are the types an endpoint may ask for, and prefixes the
// prefixes they have, as in docs/events.md.
var (
	eventTypes = []string{
		events.TypeAgentStatus, events.TypeAgentAvailability,
		events.TypeDeviceConnected, events.TypeDeviceDropped, events.TypeDeviceResumed, events.TypeDeviceEnded,
		events.TypeWidgetStatus,
		events.TypeCoverageLost, events.TypeCoverageRestored,
	}
	eventPrefixes = []string{"agent", "device", "widget", "coverage"}
)

// maxURLBytes bounds an endpoint URL.
const maxURLBytes = 2048

// normalizeEvents checks the events of a registration and returns them
// without repeats and without types that a prefix of the list covers,
// sorted; every event is ["*"]. JetStream refuses overlapping filter
// subjects, so the list must have none.
func normalizeEvents(events []string) ([]string, error) {
	if len(events) == 0 || slices.Contains(events, "*") {
		return []string{"*"}, nil
	}
	var prefixes, types []string
	for i, ev := range events {
		if p, ok := strings.CutSuffix(ev, ".*"); ok && slices.Contains(eventPrefixes, p) {
			prefixes = append(prefixes, p)
			continue
		}
		if !slices.Contains(eventTypes, ev) {
			return nil, &FieldError{Field: fmt.Sprintf("events[%d]", i), Msg: fmt.Sprintf("unknown event type %q: want one of %s, a prefix followed by .* (%s), or *",
				ev, strings.Join(eventTypes, ", "), strings.Join(eventPrefixes, ", "))}
		}
		types = append(types, ev)
	}
	out := make([]string, 0, len(events))
	for _, p := range prefixes {
		out = append(out, p+".*")
	}
	for _, t := range types {
		p, _, _ := strings.Cut(t, ".")
		if !slices.Contains(prefixes, p) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// filterSubjects returns the event-stream subjects of site that events
// select.
func filterSubjects(site string, types []string) []string {
	base := events.SubjectPrefix + site + "."
	if len(types) == 1 && types[0] == "*" {
		return []string{base + ">"}
	}
	subjects := make([]string, len(types))
	for i, ev := range types {
		if p, ok := strings.CutSuffix(ev, ".*"); ok {
			subjects[i] = base + p + ".>"
		} else {
			subjects[i] = base + ev
		}
	}
	return subjects
}

// parseURL checks an endpoint URL's form: absolute, https (or http when
// private addresses are allowed, as inside a private network), no user
// information (it would be a credential in every listing).
func parseURL(raw string, allowPrivate bool) (*url.URL, error) {
	if raw == "" {
		return nil, &FieldError{Field: "url", Msg: "missing"}
	}
	if len(raw) > maxURLBytes {
		return nil, &FieldError{Field: "url", Msg: fmt.Sprintf("longer than %d bytes", maxURLBytes)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &FieldError{Field: "url", Msg: "not a URL"}
	}
	switch {
	case u.Scheme == "http" && !allowPrivate:
		return nil, &FieldError{Field: "url", Msg: "must be https (http is allowed only with --webhook-allow-private)"}
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, &FieldError{Field: "url", Msg: "must be an https URL"}
	case u.Host == "" || u.Hostname() == "":
		return nil, &FieldError{Field: "url", Msg: "has no host"}
	case u.User != nil:
		return nil, &FieldError{Field: "url", Msg: "must not carry user information; put credentials in the path or check the signature instead"}
	case u.Fragment != "":
		return nil, &FieldError{Field: "url", Msg: "must not have a fragment"}
	}
	return u, nil
}

// validID reports whether id can be an endpoint's id (a UUID in its usual
// form), before it goes into a key or a consumer name.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// ErrNotFound is returned for an endpoint the site does not have.
var ErrNotFound = errors.New("no such webhook")

// ErrTooMany is returned when the site has as many endpoints as allowed.
var ErrTooMany = errors.New("the site has the most webhooks allowed")

// consumerName is the durable consumer holding an endpoint's deliveries.
func consumerName(id string) string { return "webhook-" + id }

// endpointKey is the key of an endpoint in the registrations bucket.
func endpointKey(site, id string) string { return site + "." + id }

// MarshalJSON writes the times in protocol.TimeFormat (milliseconds, UTC),
// as every time of the API.
func (e Endpoint) MarshalJSON() ([]byte, error) {
	type plain Endpoint // without this method
	return json.Marshal(struct {
		plain
		CreatedAt  protocol.Time  `json:"created_at"`
		DisabledAt *protocol.Time `json:"disabled_at,omitempty"`
	}{plain(e), protocol.Time(e.CreatedAt), optionalTime(e.DisabledAt)})
}

// optionalTime is t as a *protocol.Time, nil for nil.
func optionalTime(t *time.Time) *protocol.Time {
	if t == nil {
		return nil
	}
	pt := protocol.Time(*t)
	return &pt
}
