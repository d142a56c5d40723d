package strictjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/internal/strictjson"
)

type interval struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type body struct {
	Name     string                `json:"name"`
	Count    int                   `json:"count,omitempty"`
	Hours    []interval            `json:"hours"`
	ByDay    map[string][]interval `json:"by_day"`
	Ptr      *interval             `json:"ptr"`
	Raw      json.RawMessage       `json:"raw"`
	Any      any                   `json:"any"`
	Untagged string
	Ignored  string `json:"-"`
	embedded
}

type embedded struct {
	Promoted string `json:"promoted"`
}

func TestDecodeAccepts(t *testing.T) {
	tests := []string{
		`{}`,
		` {"name":"a","count":1} `,
		`{"hours":[{"from":"09:00","to":"17:00"},{"from":"18:00","to":"19:00"}]}`,
		`{"by_day":{"monday":[{"from":"09:00","to":"17:00"}],"Monday":[]}}`, // map keys are data: any case
		`{"ptr":{"from":"a","to":"b"}}`,
		`{"raw":{"FROM":1,"x":[{"a":1}]}}`, // decoded later, by whoever reads it
		`{"any":{"a":{"A":1}}}`,
		`{"Untagged":"u","promoted":"p"}`,
		`null`,
	}
	for _, js := range tests {
		var b body
		if err := strictjson.Decode([]byte(js), &b); err != nil {
			t.Errorf("Decode(%s): got error %v, want none", js, err)
		}
	}
	var b body
	if err := strictjson.Decode([]byte(`{"name":"a","hours":[{"from":"1","to":"2"}],"promoted":"p"}`), &b); err != nil {
		t.Fatal(err)
	}
	if b.Name != "a" || len(b.Hours) != 1 || b.Hours[0].To != "2" || b.Promoted != "p" {
		t.Fatalf("got %+v, want the body decoded", b)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name, js, want string
	}{
		{"a field in another case", `{"NAME":"a"}`, `json: field "NAME" must be spelled "name"`},
		{"a field twice, in two cases", `{"name":"a","Name":"b"}`, `json: field "Name" must be spelled "name"`},
		{"a field twice", `{"name":"a","name":"b"}`, `json: duplicate key "name"`},
		{"in a slice element", `{"hours":[{"from":"1","to":"2"},{"from":"1","TO":"2"}]}`, `json: field "TO" in hours[1] must be spelled "to"`},
		{"in a map value", `{"by_day":{"monday":[{"From":"1"}]}}`, `json: field "From" in by_day.monday[0] must be spelled "from"`},
		{"a map key twice", `{"by_day":{"monday":[],"monday":[]}}`, `json: duplicate key "monday" in by_day`},
		{"through a pointer", `{"ptr":{"from":"1","from":"2"}}`, `json: duplicate key "from" in ptr`},
		{"a promoted field", `{"Promoted":"p"}`, `json: field "Promoted" must be spelled "promoted"`},
		{"a Go name in another case", `{"untagged":"u"}`, `json: field "untagged" must be spelled "Untagged"`},
		{"Unicode folding (long s)", `{"hour\u017f":[]}`, `json: field "hourſ" must be spelled "hours"`},
		{"a duplicate inside raw JSON", `{"raw":{"a":1,"a":2}}`, `json: duplicate key "a" in raw`},
		{"a duplicate inside any", `{"any":[{"a":1,"a":2}]}`, `json: duplicate key "a" in any[0]`},
		{"an unknown field", `{"nme":"a"}`, `json: unknown field "nme"`},
		{"trailing data", `{"name":"a"} {}`, strictjson.ErrTrailingData.Error()},
		{"not JSON", `{"name":`, `unexpected EOF`},
		{"an unknown field in a slice element", `{"hours":[{"from":"1","until":"2"}]}`, `json: unknown field "until" in hours[0]`},
		{"a wrong type", `{"count":"1"}`, `count: want an integer, got a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b body
			err := strictjson.Decode([]byte(tt.js), &b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode(%s): got error %v, want one containing %q", tt.js, err, tt.want)
			}
		})
	}
}

// TestDecodeTypeErrors: a value of the wrong type is named by its path,
// map keys and indexes included, and described in JSON's words, never in
// Go's.
func TestDecodeTypeErrors(t *testing.T) {
	type settings struct {
		Origins []string            `json:"allowed_origins"`
		Flag    bool                `json:"flag"`
		Ratio   float64             `json:"ratio"`
		Small   uint8               `json:"small"`
		Nested  map[string][]string `json:"nested"`
	}
	tests := []struct {
		js   string
		v    any
		want string
	}{
		{`[]`, &body{}, `want an object, got an array`},
		{`"x"`, &[]interval{}, `want an array of objects, got a string`},
		{`{"hours":{"from":"1"}}`, &body{}, `hours: want an array of objects, got an object`},
		{`{"hours":[{"from":"1","to":"2"}, {"from":9}]}`, &body{}, `hours[1].from: want a string, got a number`},
		{`{"by_day":{"monday":[],"tuesday":[{"to":["x"]}]}}`, &body{}, `by_day.tuesday[0].to: want a string, got an array`},
		{`{"ptr":[1]}`, &body{}, `ptr: want an object, got an array`},
		{`{"count":1.5}`, &body{}, `count: want an integer, got 1.5`},
		{` { "name" : true } `, &body{}, `name: want a string, got true or false`},
		{`{"allowed_origins":"https://a.example"}`, &settings{}, `allowed_origins: want an array of strings, got a string`},
		{`{"allowed_origins":["https://a.example", 3]}`, &settings{}, `allowed_origins[1]: want a string, got a number`},
		{`{"flag":"yes"}`, &settings{}, `flag: want true or false, got a string`},
		{`{"ratio":{}}`, &settings{}, `ratio: want a number, got an object`},
		{`{"small":-1}`, &settings{}, `small: want an integer, 0 or more, got -1`},
		{`{"nested":{"a":{}}}`, &settings{}, `nested.a: want an array of strings, got an object`},
	}
	for _, tt := range tests {
		err := strictjson.Decode([]byte(tt.js), tt.v)
		var typeErr *strictjson.TypeError
		if !errors.As(err, &typeErr) || err.Error() != tt.want {
			t.Errorf("Decode(%s): got %v, want the TypeError %q", tt.js, err, tt.want)
		}
	}
}

func TestDecodeTrailingDataIsErrTrailingData(t *testing.T) {
	var v map[string]int
	if err := strictjson.Decode([]byte(`{"a":1}]`), &v); !errors.Is(err, strictjson.ErrTrailingData) {
		t.Fatalf("got %v, want ErrTrailingData", err)
	}
}

// FuzzDecode: whatever Decode accepts, encoding/json reads the same way;
// Decode only ever refuses more.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","hours":[{"from":"1","to":"2"}],"by_day":{"mon":[]}}`,
		`{"NAME":"a"}`, `{"name":"a","name":"b"}`, `{"raw":{"a":1,"a":2}}`, `{"any":[{"x":null}]}`,
		`{"ptr":{"from":"1"}}`, `{"promoted":"p","Untagged":"u"}`, `null`, `{} {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict body
		if err := strictjson.Decode(data, &strict); err != nil {
			return
		}
		var lax body
		if err := json.Unmarshal(data, &lax); err != nil {
			t.Fatalf("Decode accepted %q, which encoding/json refuses: %v", data, err)
		}
		a, _ := json.Marshal(strict)
		b, _ := json.Marshal(lax)
		if string(a) != string(b) {
			t.Fatalf("Decode read %q as %s, encoding/json as %s", data, a, b)
		}
	})
}

// DecodeMessage lets a newer sender add fields, but refuses the keys that
// would read one way to the sender and another to the receiver.
func TestDecodeMessage(t *testing.T) {
	var v body
	if err := strictjson.DecodeMessage([]byte(`{"name":"a","new_field":{"x":[1]},"hours":[{"from":"1","to":"2","extra":true}]}`), &v); err != nil {
		t.Fatalf("got %v for unknown fields, want them ignored", err)
	}
	if v.Name != "a" || len(v.Hours) != 1 || v.Hours[0].To != "2" {
		t.Fatalf("got %+v, want the known fields decoded", v)
	}
	for _, tt := range []struct{ in, want string }{
		{`{"name":"a","NAME":"b"}`, `field "NAME" must be spelled "name"`},
		{`{"hours":[{"from":"1","From":"2"}]}`, `field "From" in hours[0] must be spelled "from"`},
		{`{"name":"a","name":"b"}`, `duplicate key "name"`},
		{`{"new":1,"new":2}`, `duplicate key "new"`},
		{`{"name":"a"} x`, `unexpected data after the JSON value`},
	} {
		err := strictjson.DecodeMessage([]byte(tt.in), &body{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeMessage(%s): got %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}
