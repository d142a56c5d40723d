package store

import (
	"encoding/json"
	"testing"
	"time"
	"unsafe"

	"github.com/presencehub/presencehub/presence"
	"github.com/presencehub/presencehub/protocol"
)

// TestDecodeSharesStrings checks that records decoded apart share the
// strings that take few values (the view keeps one record per agent and
// per device), and still say what was stored.
func TestDecodeSharesStrings(t *testing.T) {
	lease := DeviceRecord{Kind: presence.Mobile, Since: time.Unix(1, 0).UTC(), Session: "s1", Hub: "replica-1", State: presence.Background}
	v, err := json.Marshal(lease)
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodeDeviceRecord(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeDeviceRecord(v)
	if err != nil {
		t.Fatal(err)
	}
	if a != lease || b != lease {
		t.Fatalf("decoded %+v and %+v, want %+v", a, b, lease)
	}
	for _, p := range [][2]string{{a.Hub, b.Hub}, {string(a.Kind), string(b.Kind)}, {string(a.State), string(b.State)}} {
		if unsafe.StringData(p[0]) != unsafe.StringData(p[1]) {
			t.Errorf("%q decoded twice is two copies", p[0])
		}
	}
	rec := AgentRecord{Status: presence.Busy, By: protocol.ByAdmin, ByID: "boss", At: time.Unix(2, 0).UTC()}
	v, err = json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeAgentRecord(v)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != rec.Status || r.By != rec.By || r.ByID != rec.ByID || !r.At.Equal(rec.At) {
		t.Fatalf("decoded %+v, want %+v", r, rec)
	}
	if unsafe.StringData(string(r.Status)) != unsafe.StringData(string(presence.Busy)) || unsafe.StringData(r.By) != unsafe.StringData(protocol.ByAdmin) {
		t.Errorf("the status and its author's kind are not the constants' strings")
	}
}
