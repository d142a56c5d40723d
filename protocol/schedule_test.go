package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/presence"
)

// exampleSchedule is presence's example of a schedule (hours_test.go).
const exampleSchedule = `{
  "timezone": "Europe/Prague",
  "weekly": {
    "monday": [{"from": "09:00", "to": "12:00"}, {"from": "13:00", "to": "17:00"}],
    "friday": [{"from": "22:00", "to": "06:00"}],
    "sunday": [{"from": "18:00", "to": "24:00"}]
  },
  "exceptions": [
    {"date": "2026-12-24", "closed": true},
    {"date": "2026-12-31", "hours": [{"from": "09:00", "to": "12:00"}]}
  ]
}`

// mustSchedule parses js and fails the test if it is not a valid schedule.
func mustSchedule(t *testing.T, js string) *presence.Schedule {
	t.Helper()
	s, err := ParseSchedule([]byte(js))
	if err != nil {
		t.Fatalf("ParseSchedule(%s): got error %v, want none", js, err)
	}
	return s
}

func TestParseScheduleValid(t *testing.T) {
	s := mustSchedule(t, exampleSchedule)
	want := &presence.Schedule{
		Timezone: "Europe/Prague",
		Weekly: map[string][]presence.Interval{
			"monday": {{From: "09:00", To: "12:00"}, {From: "13:00", To: "17:00"}},
			"friday": {{From: "22:00", To: "06:00"}},
			"sunday": {{From: "18:00", To: "24:00"}},
		},
		Exceptions: []presence.Exception{
			{Date: "2026-12-24", Closed: true},
			{Date: "2026-12-31", Hours: []presence.Interval{{From: "09:00", To: "12:00"}}},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("ParseSchedule: got %+v, want %+v", s, want)
	}
	// The admin API returns what it stored: encoding and parsing again
	// gives the same schedule.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if again := mustSchedule(t, string(b)); !reflect.DeepEqual(again, want) {
		t.Errorf("round trip through %s: got %+v, want %+v", b, again, want)
	}
}

func TestParseScheduleAccepts(t *testing.T) {
	for _, js := range []string{
		`{"timezone":"UTC"}`,
		`{"timezone":"UTC","weekly":{},"exceptions":[]}`,
		`{"timezone":"America/New_York","weekly":{"monday":[]}}`,
		`{"timezone":"Asia/Kolkata","weekly":{"monday":[{"from":"00:00","to":"24:00"}]}}`,
		`{"timezone":"UTC","weekly":{"monday":[{"from":"22:00","to":"00:00"}]}}`,
		`{"timezone":"UTC","weekly":{"monday":[{"from":"23:59","to":"23:58"}]}}`,
		// Touching intervals are fine, on one day and across midnight.
		`{"timezone":"UTC","weekly":{"monday":[{"from":"12:00","to":"17:00"},{"from":"09:00","to":"12:00"}],
		  "tuesday":[{"from":"20:00","to":"24:00"}],"wednesday":[{"from":"00:00","to":"02:00"}],
		  "friday":[{"from":"22:00","to":"06:00"}],"saturday":[{"from":"06:00","to":"08:00"}]}}`,
		// A closed exception with an empty hours list is still just closed.
		`{"timezone":"UTC","exceptions":[{"date":"2026-01-01","closed":true,"hours":[]}]}`,
		// A Saturday exception may start when Friday's night shift ends.
		`{"timezone":"UTC","weekly":{"friday":[{"from":"22:00","to":"06:00"}]},
		  "exceptions":[{"date":"2026-12-26","hours":[{"from":"06:00","to":"09:00"}]}]}`,
		"  {\"timezone\":\"UTC\"}\n",
	} {
		if _, err := ParseSchedule([]byte(js)); err != nil {
			t.Errorf("ParseSchedule(%s): got error %v, want none", js, err)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	tests := []struct {
		name string
		js   string
		want string // the error starts with this
	}{
		{"bad from", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"17:00"},{"from":"25:00","to":"26:00"}]}}`,
			`weekly.monday[1].from: invalid time "25:00"`},
		{"bad to", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"24:30"}]}}`,
			`weekly.monday[0].to: invalid time "24:30"`},
		{"24:00 as from", `{"timezone":"UTC","weekly":{"monday":[{"from":"24:00","to":"02:00"}]}}`,
			`weekly.monday[0].from: invalid time "24:00"`},
		{"one-digit hour", `{"timezone":"UTC","weekly":{"sunday":[{"from":"9:00","to":"17:00"}]}}`,
			`weekly.sunday[0].from: invalid time "9:00"`},
		{"minute 60", `{"timezone":"UTC","weekly":{"sunday":[{"from":"09:60","to":"17:00"}]}}`,
			`weekly.sunday[0].from: invalid time "09:60"`},
		{"seconds", `{"timezone":"UTC","weekly":{"sunday":[{"from":"09:00","to":"17:00:00"}]}}`,
			`weekly.sunday[0].to: invalid time "17:00:00"`},
		{"letters", `{"timezone":"UTC","weekly":{"sunday":[{"from":"ab:cd","to":"17:00"}]}}`,
			`weekly.sunday[0].from: invalid time "ab:cd"`},
		{"missing from", `{"timezone":"UTC","weekly":{"sunday":[{"to":"17:00"}]}}`,
			`weekly.sunday[0].from: invalid time ""`},
		{"unknown zone", `{"timezone":"Mars/Olympus"}`,
			`timezone: unknown time zone "Mars/Olympus"`},
		{"no zone", `{"weekly":{}}`, `timezone: required`},
		{"Local zone", `{"timezone":"Local"}`, `timezone: "Local" is not allowed`},
		{"null", `null`, `timezone: required`},
		{"capitalised weekday", `{"timezone":"UTC","weekly":{"Monday":[]}}`,
			`weekly: unknown weekday "Monday"`},
		{"short weekday", `{"timezone":"UTC","weekly":{"monday":[],"tue":[]}}`,
			`weekly: unknown weekday "tue"`},
		{"from equals to", `{"timezone":"UTC","weekly":{"tuesday":[{"from":"10:00","to":"10:00"}]}}`,
			`weekly.tuesday[0]: from and to are both "10:00"`},
		{"overlap", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"17:00"},{"from":"10:00","to":"12:00"}]}}`,
			`weekly.monday[1]: 10:00-12:00 overlaps weekly.monday[0] (09:00-17:00)`},
		{"overlap listed backwards", `{"timezone":"UTC","weekly":{"monday":[{"from":"10:00","to":"12:00"},{"from":"09:00","to":"17:00"}]}}`,
			`weekly.monday[1]: 09:00-17:00 overlaps weekly.monday[0] (10:00-12:00)`},
		{"overlap with overnight on the same day", `{"timezone":"UTC","weekly":{"monday":[{"from":"22:00","to":"02:00"},{"from":"23:00","to":"23:30"}]}}`,
			`weekly.monday[1]: 23:00-23:30 overlaps weekly.monday[0] (22:00-02:00)`},
		{"spill overlaps next day", `{"timezone":"UTC","weekly":{"friday":[{"from":"22:00","to":"06:00"}],"saturday":[{"from":"05:00","to":"08:00"}]}}`,
			`weekly.saturday[0]: 05:00-08:00 overlaps weekly.friday[0] (22:00-06:00) running past midnight into saturday`},
		{"spill wraps Sunday to Monday", `{"timezone":"UTC","weekly":{"sunday":[{"from":"23:00","to":"01:00"}],"monday":[{"from":"00:30","to":"02:00"}]}}`,
			`weekly.monday[0]: 00:30-02:00 overlaps weekly.sunday[0] (23:00-01:00) running past midnight into monday`},
		{"24:00 spill", `{"timezone":"UTC","weekly":{"sunday":[{"from":"23:00","to":"00:30"}],"monday":[{"from":"00:00","to":"24:00"}]}}`,
			`weekly.monday[0]: 00:00-24:00 overlaps weekly.sunday[0] (23:00-00:30) running past midnight into monday`},
		{"duplicate date", `{"timezone":"UTC","exceptions":[{"date":"2026-12-24","closed":true},{"date":"2026-12-31","closed":true},{"date":"2026-12-24","closed":true}]}`,
			`exceptions[2].date: duplicate date "2026-12-24" (also exceptions[0])`},
		{"month 13", `{"timezone":"UTC","exceptions":[{"date":"2026-13-01","closed":true}]}`,
			`exceptions[0].date: invalid date "2026-13-01"`},
		{"February 30", `{"timezone":"UTC","exceptions":[{"date":"2026-02-30","closed":true}]}`,
			`exceptions[0].date: invalid date "2026-02-30"`},
		{"European date", `{"timezone":"UTC","exceptions":[{"date":"24.12.2026","closed":true}]}`,
			`exceptions[0].date: invalid date "24.12.2026"`},
		{"unpadded date", `{"timezone":"UTC","exceptions":[{"date":"2026-1-5","closed":true}]}`,
			`exceptions[0].date: invalid date "2026-1-5"`},
		{"missing date", `{"timezone":"UTC","exceptions":[{"closed":true}]}`,
			`exceptions[0].date: invalid date ""`},
		{"closed and hours", `{"timezone":"UTC","exceptions":[{"date":"2026-12-24","closed":true,"hours":[{"from":"09:00","to":"12:00"}]}]}`,
			`exceptions[0]: both closed and hours given`},
		{"neither closed nor hours", `{"timezone":"UTC","exceptions":[{"date":"2026-12-24"}]}`,
			`exceptions[0]: want "closed": true or non-empty "hours"`},
		{"exception bad time", `{"timezone":"UTC","exceptions":[{"date":"2026-12-24","closed":true},{"date":"2026-12-31","hours":[{"from":"09:00","to":"17:0"}]}]}`,
			`exceptions[1].hours[0].to: invalid time "17:0"`},
		{"exception hours overlap", `{"timezone":"UTC","exceptions":[{"date":"2026-12-31","hours":[{"from":"09:00","to":"12:00"},{"from":"11:00","to":"13:00"}]}]}`,
			`exceptions[0].hours[1]: 11:00-13:00 overlaps exceptions[0].hours[0] (09:00-12:00)`},
		{"exception overlaps weekly spill", `{"timezone":"UTC","weekly":{"friday":[{"from":"22:00","to":"06:00"}]},"exceptions":[{"date":"2026-12-26","hours":[{"from":"05:00","to":"09:00"}]}]}`,
			`exceptions[0].hours[0]: 05:00-09:00 overlaps weekly.friday[0] (22:00-06:00) running past midnight into 2026-12-26`},
		{"exception spills into weekly", `{"timezone":"UTC","weekly":{"friday":[{"from":"09:00","to":"17:00"}]},"exceptions":[{"date":"2026-12-24","hours":[{"from":"20:00","to":"10:00"}]}]}`,
			`weekly.friday[0]: 09:00-17:00 overlaps exceptions[0].hours[0] (20:00-10:00) running past midnight into 2026-12-25`},
		{"exception spills into exception", `{"timezone":"UTC","exceptions":[{"date":"2026-12-25","hours":[{"from":"09:00","to":"12:00"}]},{"date":"2026-12-24","hours":[{"from":"20:00","to":"10:00"}]}]}`,
			`exceptions[0].hours[0]: 09:00-12:00 overlaps exceptions[1].hours[0] (20:00-10:00) running past midnight into 2026-12-25`},
		{"unknown field", `{"timezone":"UTC","timezon":"UTC"}`, `invalid schedule JSON: json: unknown field "timezon"`},
		{"unknown interval field", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","until":"17:00"}]}}`,
			`invalid schedule JSON: json: unknown field "until" in weekly.monday[0]`},
		{"unknown exception field", `{"timezone":"UTC","exceptions":[{"date":"2026-12-24","close":true}]}`,
			`invalid schedule JSON: json: unknown field "close" in exceptions[0]`},
		{"trailing data", `{"timezone":"UTC"} {}`, `invalid schedule JSON: unexpected data after the JSON value`},
		// encoding/json alone would take these keys for the field spelled
		// otherwise, or keep the last of two.
		{"field in another case", `{"timezone":"Mars/Olympus","Timezone":"UTC"}`,
			`invalid schedule JSON: json: field "Timezone" must be spelled "timezone"`},
		{"field twice", `{"timezone":"UTC","timezone":"Europe/Prague"}`, `invalid schedule JSON: json: duplicate key "timezone"`},
		{"weekly in another case", `{"timezone":"UTC","WEEKLY":{"monday":[{"from":"09:00","to":"17:00"}]}}`,
			`invalid schedule JSON: json: field "WEEKLY" must be spelled "weekly"`},
		{"weekday twice", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"17:00"}],"monday":[]}}`,
			`invalid schedule JSON: json: duplicate key "monday" in weekly`},
		{"interval field in another case", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"17:00","TO":"10:00"}]}}`,
			`invalid schedule JSON: json: field "TO" in weekly.monday[0] must be spelled "to"`},
		{"interval field twice", `{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","from":"10:00","to":"17:00"}]}}`,
			`invalid schedule JSON: json: duplicate key "from" in weekly.monday[0]`},
		{"exception field in another case", `{"timezone":"UTC","exceptions":[{"date":"2026-12-24","Closed":true}]}`,
			`invalid schedule JSON: json: field "Closed" in exceptions[0] must be spelled "closed"`},
		{"exception interval field in another case", `{"timezone":"UTC","exceptions":[{"date":"2026-12-31","hours":[{"FROM":"09:00","to":"12:00"}]}]}`,
			`invalid schedule JSON: json: field "FROM" in exceptions[0].hours[0] must be spelled "from"`},
		{"exceptions in another case", `{"timezone":"UTC","Exceptions":[{"date":"2026-12-24","closed":true}]}`,
			`invalid schedule JSON: json: field "Exceptions" must be spelled "exceptions"`},
		{"wrong type", `{"timezone":"UTC","weekly":{"monday":{"from":"09:00"}}}`,
			`invalid schedule JSON: weekly.monday: want an array of objects, got an object`},
		{"weekly not an object", `{"timezone":"UTC","weekly":[]}`, `invalid schedule JSON: weekly: want an object, got an array`},
		// What `PUT .../hours` with `[]` answered with Go's struct type.
		{"not an object", `[]`, `invalid schedule JSON: want an object, got an array`},
		{"not JSON", `{`, `invalid schedule JSON: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule([]byte(tt.js))
			if err == nil {
				t.Fatalf("ParseSchedule(%s): got %+v, want error %q", tt.js, s, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseSchedule(%s): got error %q, want one starting %q", tt.js, err, tt.want)
			}
		})
	}
}

// TestParseScheduleWrongTypeNamesField: a value of the wrong type is named
// by its full path, in JSON's words; no Go type shows.
func TestParseScheduleWrongTypeNamesField(t *testing.T) {
	for js, want := range map[string]string{
		`{"timezone":"UTC","weekly":{"monday":[{"from":"09:00","to":"17:00"},{"from":900,"to":"17:00"}]}}`:           "invalid schedule JSON: weekly.monday[1].from: want a string, got a number",
		`{"timezone":"UTC","exceptions":[{"date":"2026-12-24","closed":true},{"date":"2026-12-31","closed":"yes"}]}`: "invalid schedule JSON: exceptions[1].closed: want true or false, got a string",
		`{"timezone":["UTC"]}`: "invalid schedule JSON: timezone: want a string, got an array",
	} {
		_, err := ParseSchedule([]byte(js))
		if err == nil || err.Error() != want {
			t.Errorf("ParseSchedule(%s): got error %v, want %q", js, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "Go ") {
			t.Errorf("ParseSchedule(%s): %v shows a Go type", js, err)
		}
	}
}
