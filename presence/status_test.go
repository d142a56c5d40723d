package presence

import (
	"fmt"
	"strings"
	"testing"
)

// TestWireValues pins the string values of the exported enums: they travel
// over the wire and are stored, so renaming one is a breaking change.
func TestWireValues(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"Online", string(Online), "online"},
		{"Busy", string(Busy), "busy"},
		{"Offline", string(Offline), "offline"},
		{"Desktop", string(Desktop), "desktop"},
		{"Mobile", string(Mobile), "mobile"},
		{"Web", string(Web), "web"},
		{"ReasonAgentsOnline", string(ReasonAgentsOnline), "agents_online"},
		{"ReasonAllBusy", string(ReasonAllBusy), "all_busy"},
		{"ReasonNoAgents", string(ReasonNoAgents), "no_agents"},
		{"ReasonOutsideHours", string(ReasonOutsideHours), "outside_hours"},
		{"Live", string(Live), "live"},
		{"Lingering", string(Lingering), "grace"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in      string
		want    Status
		wantErr bool
	}{
		{in: "online", want: Online},
		{in: "busy", want: Busy},
		{in: "offline", want: Offline},
		{in: "", wantErr: true},
		{in: "Online", wantErr: true},
		{in: "BUSY", wantErr: true},
		{in: " online", wantErr: true},
		{in: "online ", wantErr: true},
		{in: "online\n", wantErr: true},
		{in: "away", wantErr: true},
		{in: "invisible", wantErr: true},
		{in: "live", wantErr: true},
		{in: "grace", wantErr: true},
		{in: "agents_online", wantErr: true},
		{in: "desktop", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseStatus(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseStatus(%q) = %q, nil; got no error, want one", tt.in, got)
				}
				if got != "" {
					t.Errorf("ParseStatus(%q) status: got %q, want empty on error", tt.in, got)
				}
				if q := fmt.Sprintf("%q", tt.in); !strings.Contains(err.Error(), q) {
					t.Errorf("ParseStatus(%q) error: got %q, want it to name the value %s", tt.in, err, q)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStatus(%q) error: got %v, want nil", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseStatus(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDeviceKind(t *testing.T) {
	tests := []struct {
		in      string
		want    DeviceKind
		wantErr bool
	}{
		{in: "desktop", want: Desktop},
		{in: "mobile", want: Mobile},
		{in: "web", want: Web},
		{in: "", wantErr: true},
		{in: "Desktop", wantErr: true},
		{in: "WEB", wantErr: true},
		{in: " web", wantErr: true},
		{in: "web ", wantErr: true},
		{in: "tablet", wantErr: true},
		{in: "ios", wantErr: true},
		{in: "online", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseDeviceKind(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDeviceKind(%q) = %q, nil; got no error, want one", tt.in, got)
				}
				if got != "" {
					t.Errorf("ParseDeviceKind(%q) kind: got %q, want empty on error", tt.in, got)
				}
				if q := fmt.Sprintf("%q", tt.in); !strings.Contains(err.Error(), q) {
					t.Errorf("ParseDeviceKind(%q) error: got %q, want it to name the value %s", tt.in, err, q)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDeviceKind(%q) error: got %v, want nil", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDeviceKind(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// natsUnsafe lists characters that must never appear in an id, because ids
// become NATS subject tokens (and key-value keys): the token separator, the
// two wildcards, and whitespace.
const natsUnsafe = ".*> \t\r\n"

func TestValidateID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr bool
	}{
		{name: "single letter", id: "a"},
		{name: "single upper", id: "Z"},
		{name: "single digit", id: "0"},
		{name: "single underscore", id: "_"},
		{name: "single dash", id: "-"},
		{name: "mixed", id: "Site_01-eu"},
		{name: "uuid-like", id: "123e4567-e89b-12d3-a456-426614174000"},
		{name: "64 chars", id: strings.Repeat("a", 64)},
		{name: "64 mixed chars", id: strings.Repeat("aZ9_-Q0x", 8)},

		{name: "empty", id: "", wantErr: true},
		{name: "65 chars", id: strings.Repeat("a", 65), wantErr: true},
		{name: "200 chars", id: strings.Repeat("b", 200), wantErr: true},
		{name: "dot", id: "a.b", wantErr: true},
		{name: "lone dot", id: ".", wantErr: true},
		{name: "leading dot", id: ".a", wantErr: true},
		{name: "trailing dot", id: "a.", wantErr: true},
		{name: "space", id: "a b", wantErr: true},
		{name: "tab", id: "a\tb", wantErr: true},
		{name: "trailing newline", id: "a\n", wantErr: true},
		{name: "leading newline", id: "\na", wantErr: true},
		{name: "carriage return", id: "a\r", wantErr: true},
		{name: "NUL", id: "a\x00", wantErr: true},
		{name: "umlaut", id: "ä", wantErr: true},
		{name: "umlaut in word", id: "männer", wantErr: true},
		{name: "accented", id: "café", wantErr: true},
		{name: "fullwidth letter", id: "ａ", wantErr: true},
		{name: "star", id: "*", wantErr: true},
		{name: "star suffix", id: "a*", wantErr: true},
		{name: "gt", id: ">", wantErr: true},
		{name: "gt suffix", id: "a>", wantErr: true},
		{name: "full wildcard subject", id: "a.>", wantErr: true},
		{name: "slash", id: "a/b", wantErr: true},
		{name: "colon", id: "a:b", wantErr: true},
		{name: "equals", id: "a=b", wantErr: true},
		{name: "dollar", id: "$SYS", wantErr: true},
		{name: "plus", id: "a+b", wantErr: true},
		{name: "64 chars then dot", id: strings.Repeat("a", 63) + ".", wantErr: true},
		{name: "invalid utf8", id: "a\xff", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateID("agent", tt.id)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("ValidateID(%q): got %v, want nil", tt.id, err)
				}
				if strings.ContainsAny(tt.id, natsUnsafe) {
					t.Fatalf("ValidateID(%q) accepted an id with a NATS-unsafe character", tt.id)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateID(%q): got nil, want an error", tt.id)
			}
			if !strings.Contains(err.Error(), "agent id") {
				t.Errorf("ValidateID(%q) error: got %q, want it to say %q", tt.id, err, "agent id")
			}
		})
	}
}

func TestValidateIDErrorNamesWhat(t *testing.T) {
	tests := []struct {
		what string
		want string
	}{
		{"site", "invalid site id"},
		{"agent", "invalid agent id"},
		{"group", "invalid group id"},
	}
	for _, tt := range tests {
		err := ValidateID(tt.what, "a.b")
		if err == nil {
			t.Fatalf("ValidateID(%q, %q): got nil, want an error", tt.what, "a.b")
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateID(%q, %q) error: got %q, want it to contain %q", tt.what, "a.b", err, tt.want)
		}
		if !strings.Contains(err.Error(), `"a.b"`) {
			t.Errorf("ValidateID(%q, %q) error: got %q, want it to quote the id", tt.what, "a.b", err)
		}
	}
}

// TestValidateIDErrorTruncates checks that a huge bad id does not end up
// whole in the error message.
func TestValidateIDErrorTruncates(t *testing.T) {
	tests := []struct {
		name      string
		id        string
		wantWhole bool
	}{
		{name: "65 chars kept whole", id: strings.Repeat("x", 65), wantWhole: true},
		{name: "70 chars kept whole", id: strings.Repeat("x", 70), wantWhole: true},
		{name: "71 chars cut", id: strings.Repeat("x", 71)},
		{name: "10k chars cut", id: strings.Repeat("y", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateID("site", tt.id)
			if err == nil {
				t.Fatalf("ValidateID(%d chars): got nil, want an error", len(tt.id))
			}
			msg := err.Error()
			if got := strings.Contains(msg, tt.id); got != tt.wantWhole {
				t.Errorf("error contains whole id: got %v, want %v (error %q)", got, tt.wantWhole, msg)
			}
			if !tt.wantWhole {
				if !strings.Contains(msg, tt.id[:70]+"...") {
					t.Errorf("error: got %q, want the first 70 characters followed by ...", msg)
				}
				if len(msg) > 200 {
					t.Errorf("error length: got %d, want at most 200", len(msg))
				}
			}
		})
	}
}

// validIDByHand is an independent statement of the id rule.
func validIDByHand(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{
		"", "a", "a.b", "a b", "ä", "*", ">", "a\n", "a-b_C9",
		strings.Repeat("a", 64), strings.Repeat("a", 65),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID("agent", id)
		if want := validIDByHand(id); (err == nil) != want {
			t.Fatalf("ValidateID(%q) valid: got %v, want %v (err %v)", id, err == nil, want, err)
		}
		if err == nil && strings.ContainsAny(id, natsUnsafe) {
			t.Fatalf("ValidateID(%q) accepted an id with a NATS-unsafe character", id)
		}
	})
}
