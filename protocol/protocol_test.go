package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/presence"
)

func TestTimeEncodesMillisecondsUTC(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 45, 16, 444022588, time.FixedZone("CET", 3600))
	b, err := json.Marshal(Time(at))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `"2026-12-07T09:45:16.444Z"`; got != want {
		t.Fatalf("Time encodes as %s, want %s", got, want)
	}
	var back Time
	if err := json.Unmarshal(b, &back); err != nil || !time.Time(back).Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("Time decodes %s as %v (%v)", b, time.Time(back), err)
	}
	if OptionalTime(time.Time{}) != nil {
		t.Fatal("the zero time is not omitted")
	}
}

func TestEncodeError(t *testing.T) {
	got := string(EncodeError(CodeRateLimited, "slow down", "r1"))
	if want := `{"type":"error","code":"rate_limited","message":"slow down","ref":"r1"}`; got != want {
		t.Fatalf("EncodeError = %s, want %s", got, want)
	}
	if got := string(EncodeError(CodeBadRequest, "bad", "")); strings.Contains(got, "ref") {
		t.Fatalf("an error without a ref names one: %s", got)
	}
}

func TestDecodeClientMessage(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{in: `{"type":"set_status","status":"busy","ref":"r1"}`},
		{in: `{"type":"set_status","newer_field":1}`},
		{in: `{}`, err: "missing type"},
		{in: `{"type":"x","Type":"y"}`, err: "not a valid JSON message"},
		{in: `{"type":"x","ref":"` + strings.Repeat("a", MaxRefLen+1) + `"}`, err: "ref longer"},
		{in: `[]`, err: "not a valid JSON message"},
	} {
		_, err := DecodeClientMessage([]byte(tc.in))
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("DecodeClientMessage(%.40s) = %v, want an error containing %q", tc.in, err, tc.err)
		}
	}
}

func TestEmptyListsEncodeAsArrays(t *testing.T) {
	b, _ := json.Marshal(DevicesFrame{Type: "devices", Devices: DeviceInfos(nil)})
	if got, want := string(b), `{"type":"devices","devices":[]}`; got != want {
		t.Fatalf("devices frame = %s, want %s", got, want)
	}
	b, _ = json.Marshal(AgentFrame{Type: "agent", ID: "a", Status: presence.Busy, Groups: NonNil(nil)})
	if !strings.Contains(string(b), `"groups":[]`) {
		t.Fatalf("agent frame = %s, want groups []", b)
	}
}
