package presence

import (
	"slices"
	"testing"
	"time"
)

// TestAgentLifetime covers when a Site keeps or drops an agent: it is
// dropped once it has neither a stored record nor a device lease.
func TestAgentLifetime(t *testing.T) {
	tests := []struct {
		name        string
		ops         func(*Site)
		wantPresent bool
		wantStatus  Status // when present
		wantGroups  []string
		wantEff     Status
	}{
		{
			name:        "device-only agent, last device removed",
			ops:         func(s *Site) { s.SetDevice("a", live("d1")); s.RemoveDevice("a", "d1") },
			wantPresent: false,
		},
		{
			name: "device-only agent, one of two devices removed",
			ops: func(s *Site) {
				s.SetDevice("a", live("d1"))
				s.SetDevice("a", lingering("d2"))
				s.RemoveDevice("a", "d1")
			},
			wantPresent: true, wantStatus: Online, wantEff: Online,
		},
		{
			name:        "stored agent, no devices, record removed",
			ops:         func(s *Site) { s.SetAgent("a", Busy, []string{"g"}); s.RemoveAgent("a") },
			wantPresent: false,
		},
		{
			name: "stored agent, last device removed, kept",
			ops: func(s *Site) {
				s.SetAgent("a", Busy, []string{"g"})
				s.SetDevice("a", live("d1"))
				s.RemoveDevice("a", "d1")
			},
			wantPresent: true, wantStatus: Busy, wantGroups: []string{"g"}, wantEff: Offline,
		},
		{
			name: "record removed while a device holds a lease: kept with defaults",
			ops: func(s *Site) {
				s.SetAgent("a", Busy, []string{"g"})
				s.SetDevice("a", lingering("d1"))
				s.RemoveAgent("a")
			},
			wantPresent: true, wantStatus: Online, wantEff: Online,
		},
		{
			name: "record removed, then last lease goes",
			ops: func(s *Site) {
				s.SetAgent("a", Busy, []string{"g"})
				s.SetDevice("a", live("d1"))
				s.RemoveAgent("a")
				s.RemoveDevice("a", "d1")
			},
			wantPresent: false,
		},
		{
			name:        "remove unknown agent",
			ops:         func(s *Site) { s.RemoveAgent("a") },
			wantPresent: false,
		},
		{
			name:        "remove device of unknown agent",
			ops:         func(s *Site) { s.RemoveDevice("a", "d1") },
			wantPresent: false,
		},
		{
			name: "device-only agent, unknown device removed",
			ops: func(s *Site) {
				s.SetDevice("a", live("d1"))
				s.RemoveDevice("a", "d2")
			},
			wantPresent: true, wantStatus: Online, wantEff: Online,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			tt.ops(s)
			checkTallies(t, s)
			a, ok := s.Agent("a")
			if ok != tt.wantPresent {
				t.Fatalf("agent present: got %v, want %v", ok, tt.wantPresent)
			}
			if got := s.Empty(); got == tt.wantPresent {
				t.Errorf("Empty(): got %v, want %v", got, !tt.wantPresent)
			}
			if got := len(s.Agents()); got != map[bool]int{false: 0, true: 1}[tt.wantPresent] {
				t.Errorf("len(Agents()): got %d, want %d", got, map[bool]int{false: 0, true: 1}[tt.wantPresent])
			}
			if !ok {
				for _, g := range []string{"", "g"} {
					wantWidget(t, s, g, widgetOffline)
				}
				return
			}
			if a.Status != tt.wantStatus {
				t.Errorf("Status: got %q, want %q", a.Status, tt.wantStatus)
			}
			if !slices.Equal(a.Groups, tt.wantGroups) {
				t.Errorf("Groups: got %#v, want %#v", a.Groups, tt.wantGroups)
			}
			if got := a.Effective(); got != tt.wantEff {
				t.Errorf("Effective(): got %q, want %q", got, tt.wantEff)
			}
		})
	}
}

// TestRemoveDeviceUnknownAgentChange checks the Change reported for a lease
// that vanishes for an agent the site never saw.
func TestRemoveDeviceUnknownAgentChange(t *testing.T) {
	s := NewSite()
	ch := s.RemoveDevice("ghost", "d1")
	want := Change{Agent: "ghost", Before: Offline, After: Offline}
	if ch.Agent != want.Agent || ch.Before != want.Before || ch.After != want.After ||
		ch.BeforeGroups != nil || ch.AfterGroups != nil || ch.DevicesChanged {
		t.Errorf("RemoveDevice on unknown agent: got %+v, want %+v", ch, want)
	}
	if !s.Empty() {
		t.Errorf("Empty(): got false, want true")
	}
}

func TestLiveDevicesOrder(t *testing.T) {
	dev := func(id string, sec int, st DeviceState) Device {
		return Device{ID: id, Kind: Web, Since: at(sec), Session: "s-" + id, State: st}
	}
	tests := []struct {
		name    string
		devices []Device
		want    []string
	}{
		{name: "none", want: nil},
		{name: "only lingering", devices: []Device{dev("a", 1, Lingering)}, want: nil},
		{name: "one", devices: []Device{dev("a", 1, Live)}, want: []string{"a"}},
		{
			name:    "by Since, oldest first",
			devices: []Device{dev("a", 30, Live), dev("b", 10, Live), dev("c", 20, Live)},
			want:    []string{"b", "c", "a"},
		},
		{
			name:    "Since ties broken by ID",
			devices: []Device{dev("zz", 5, Live), dev("aa", 5, Live), dev("mm", 5, Live), dev("early", 1, Live)},
			want:    []string{"early", "aa", "mm", "zz"},
		},
		{
			name: "lingering devices left out",
			devices: []Device{
				dev("a", 1, Lingering), dev("b", 2, Live), dev("c", 0, Lingering), dev("d", 3, Live),
			},
			want: []string{"b", "d"},
		},
		{
			name: "Since compared as instants, not by location",
			devices: []Device{
				{ID: "a", Since: at(10).In(time.FixedZone("X", 5*3600)), State: Live},
				{ID: "b", Since: at(5), State: Live},
			},
			want: []string{"b", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Insert in both orders: the result must not depend on it.
			for _, reversed := range []bool{false, true} {
				s := NewSite()
				ds := slices.Clone(tt.devices)
				if reversed {
					slices.Reverse(ds)
				}
				for _, d := range ds {
					s.SetDevice("ann", d)
				}
				var got []string
				if a, ok := s.Agent("ann"); ok {
					for _, d := range a.LiveDevices() {
						got = append(got, d.ID)
						if d.State != Live {
							t.Errorf("LiveDevices() returned %q in state %q, want %q", d.ID, d.State, Live)
						}
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("LiveDevices() (reversed=%v): got %v, want %v", reversed, got, tt.want)
				}
			}
		})
	}
}

func TestAgentDevice(t *testing.T) {
	s := NewSite()
	d1 := Device{ID: "d1", Kind: Mobile, Since: at(3), Session: "sess-1", State: Live}
	s.SetDevice("ann", d1)
	a := mustAgent(t, s, "ann")
	tests := []struct {
		id     string
		want   Device
		wantOK bool
	}{
		{"d1", d1, true},
		{"d2", Device{}, false},
		{"", Device{}, false},
	}
	for _, tt := range tests {
		got, ok := a.Device(tt.id)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Device(%q): got %+v, %v, want %+v, %v", tt.id, got, ok, tt.want, tt.wantOK)
		}
	}
	// Replacing the device replaces what Device returns.
	d1b := d1
	d1b.State, d1b.Session = Lingering, "sess-1"
	s.SetDevice("ann", d1b)
	if got, _ := a.Device("d1"); got != d1b {
		t.Errorf("Device(%q) after replace: got %+v, want %+v", "d1", got, d1b)
	}
}

func TestLingering(t *testing.T) {
	tests := []struct {
		name          string
		devices       []Device
		stored        bool
		wantLingering bool
		wantConnected bool
	}{
		{name: "no devices", stored: true, wantLingering: false, wantConnected: false},
		{name: "one live", devices: []Device{live("a")}, wantLingering: false, wantConnected: true},
		{name: "one lingering", devices: []Device{lingering("a")}, wantLingering: true, wantConnected: true},
		{name: "live and lingering", devices: []Device{live("a"), lingering("b")}, wantLingering: false, wantConnected: true},
		{name: "two lingering", devices: []Device{lingering("a"), lingering("b")}, wantLingering: true, wantConnected: true},
		{name: "three, one live", devices: []Device{lingering("a"), lingering("b"), live("c")}, wantLingering: false, wantConnected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			if tt.stored {
				s.SetAgent("ann", Online, nil)
			}
			for _, d := range tt.devices {
				s.SetDevice("ann", d)
			}
			a := mustAgent(t, s, "ann")
			if got := a.Lingering(); got != tt.wantLingering {
				t.Errorf("Lingering(): got %v, want %v", got, tt.wantLingering)
			}
			if got := a.Connected(); got != tt.wantConnected {
				t.Errorf("Connected(): got %v, want %v", got, tt.wantConnected)
			}
		})
	}
}

func TestAgentsSorted(t *testing.T) {
	s := NewSite()
	for _, id := range []string{"m", "b", "z", "a", "B", "_", "-", "0"} {
		s.SetAgent(id, Online, nil)
	}
	s.SetDevice("c", live("d1"))
	var got []string
	for _, a := range s.Agents() {
		got = append(got, a.ID)
	}
	want := []string{"-", "0", "B", "_", "a", "b", "c", "m", "z"}
	if !slices.Equal(got, want) {
		t.Errorf("Agents() ids: got %v, want %v", got, want)
	}
}

func TestDevicesChanged(t *testing.T) {
	tests := []struct {
		name  string
		setup []Device
		op    func(*Site) Change
		want  bool
	}{
		{"first live device", nil, func(s *Site) Change { return s.SetDevice("a", live("d1")) }, true},
		{"first lingering device", nil, func(s *Site) Change { return s.SetDevice("a", lingering("d1")) }, false},
		{"second live device", []Device{live("d1")}, func(s *Site) Change { return s.SetDevice("a", live("d2")) }, true},
		{"live refreshed", []Device{live("d1")}, func(s *Site) Change {
			d := live("d1")
			d.Session = "new"
			return s.SetDevice("a", d)
		}, false},
		{"live to lingering", []Device{live("d1")}, func(s *Site) Change { return s.SetDevice("a", lingering("d1")) }, true},
		{"lingering to live", []Device{lingering("d1")}, func(s *Site) Change { return s.SetDevice("a", live("d1")) }, true},
		{"lingering refreshed", []Device{lingering("d1")}, func(s *Site) Change { return s.SetDevice("a", lingering("d1")) }, false},
		{"live removed", []Device{live("d1"), live("d2")}, func(s *Site) Change { return s.RemoveDevice("a", "d1") }, true},
		{"lingering removed", []Device{live("d1"), lingering("d2")}, func(s *Site) Change { return s.RemoveDevice("a", "d2") }, false},
		{"unknown removed", []Device{live("d1")}, func(s *Site) Change { return s.RemoveDevice("a", "zz") }, false},
		{"status change", []Device{live("d1")}, func(s *Site) Change { return s.SetAgent("a", Busy, nil) }, false},
		{"group change", []Device{live("d1")}, func(s *Site) Change { return s.SetAgent("a", Online, []string{"g"}) }, false},
		{"record removed", []Device{live("d1")}, func(s *Site) Change { return s.RemoveAgent("a") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSite()
			for _, d := range tt.setup {
				s.SetDevice("a", d)
			}
			if got := tt.op(s).DevicesChanged; got != tt.want {
				t.Errorf("DevicesChanged: got %v, want %v", got, tt.want)
			}
		})
	}
}
