package transport

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix // nil: the defaults
		remote  string
		xff     []string // X-Forwarded-For lines, in order
		want    string
	}{
		{name: "no XFF, public peer", remote: "203.0.113.7:5555", want: "203.0.113.7"},
		{name: "no XFF, trusted peer", remote: "10.1.2.3:5555", want: "10.1.2.3"},
		{name: "trusted peer with XFF", remote: "10.1.2.3:5555", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "chain of trusted proxies", remote: "127.0.0.1:5555", xff: []string{"198.51.100.9, 192.168.1.4, 10.0.0.2"}, want: "198.51.100.9"},
		{name: "client-supplied entries left of the client are ignored", remote: "10.1.2.3:5555", xff: []string{"1.1.1.1, 2.2.2.2, 198.51.100.9"}, want: "198.51.100.9"},
		{name: "untrusted peer with XFF is spoofing", remote: "203.0.113.7:5555", xff: []string{"198.51.100.9"}, want: "203.0.113.7"},
		{name: "all trusted: the leftmost", remote: "10.1.2.3:5555", xff: []string{"192.168.0.1, 10.0.0.9, 127.0.0.1"}, want: "192.168.0.1"},
		{name: "several header lines are one list", remote: "10.1.2.3:5555", xff: []string{"1.1.1.1, 198.51.100.9", "10.0.0.2"}, want: "198.51.100.9"},
		{name: "malformed rightmost entry: the peer", remote: "10.1.2.3:5555", xff: []string{"198.51.100.9, unknown"}, want: "10.1.2.3"},
		{name: "malformed entry after trusted ones: the last good one", remote: "10.1.2.3:5555", xff: []string{"garbage, 10.0.0.5, 10.0.0.6"}, want: "10.0.0.5"},
		{name: "empty entry is malformed", remote: "10.1.2.3:5555", xff: []string{"198.51.100.9, "}, want: "10.1.2.3"},
		{name: "entry with a port", remote: "10.1.2.3:5555", xff: []string{"198.51.100.9:41000"}, want: "198.51.100.9"},
		{name: "IPv6 peer and entry", remote: "[fd00::1]:5555", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "bracketed IPv6 entry with a port", remote: "[::1]:5555", xff: []string{"[2001:db8::7]:443"}, want: "2001:db8::7"},
		{name: "IPv6 peer with a zone", remote: "[fe80::1%eth0]:5555", want: "fe80::1"},
		{name: "IPv4-mapped peer is trusted as IPv4", remote: "[::ffff:10.1.2.3]:5555", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "IPv4-mapped entry is unmapped", remote: "10.1.2.3:5555", xff: []string{"::ffff:198.51.100.9"}, want: "198.51.100.9"},
		{name: "IPv4-mapped trusted prefix", trusted: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, remote: "10.1.2.3:5555", xff: []string{"198.51.100.9"}, want: "198.51.100.9"},
		{name: "empty trusted list trusts nobody", trusted: []netip.Prefix{}, remote: "127.0.0.1:5555", xff: []string{"198.51.100.9"}, want: "127.0.0.1"},
		{name: "explicit list: loopback is not trusted", trusted: lb, remote: "127.0.0.1:5555", xff: []string{"198.51.100.9"}, want: "127.0.0.1"},
		{name: "explicit list: its proxy is", trusted: lb, remote: "10.9.9.9:5555", xff: []string{"192.168.5.5"}, want: "192.168.5.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trusted := tt.trusted
			if trusted == nil {
				trusted = DefaultTrustedProxies()
			}
			r := httptest.NewRequest("GET", "/v1/widget?site=acme", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := newTrustedProxies(trusted).clientAddr(r).String(); got != tt.want {
				t.Errorf("got client %s for peer %s and X-Forwarded-For %q, want %s", got, tt.remote, tt.xff, tt.want)
			}
		})
	}
}

func TestClientSlots(t *testing.T) {
	a, b := netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("2001:db8::7")
	acquire := func(t *testing.T, c *clientSlots, addr netip.Addr, want bool) {
		t.Helper()
		if got := c.acquire(addr); got != want {
			t.Fatalf("got acquire(%s) %v, want %v", addr, got, want)
		}
	}
	t.Run("capped per address", func(t *testing.T) {
		c := newClientSlots(2)
		acquire(t, c, a, true)
		acquire(t, c, a, true)
		acquire(t, c, a, false)
		acquire(t, c, b, true)
		c.release(a)
		acquire(t, c, a, true)
		c.release(a)
		c.release(a)
		c.release(b)
		// Addresses with no socket left are forgotten, so the map does not
		// grow with every visitor ever seen.
		if got := len(c.open); got != 0 {
			t.Fatalf("got %d addresses held after every release, want 0", got)
		}
	})
	t.Run("an IPv6 client is its /64", func(t *testing.T) {
		c := newClientSlots(2)
		same1, same2 := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:fffe")
		other := netip.MustParseAddr("2001:db8:1:3::1")
		acquire(t, c, same1, true)
		acquire(t, c, same2, true)
		acquire(t, c, netip.MustParseAddr("2001:db8:1:2:abcd::9"), false) // a third address of the same /64
		acquire(t, c, other, true)                                        // the next /64 is another client
		c.release(same2)
		acquire(t, c, same1, true)
		c.release(same1)
		c.release(same1)
		c.release(other)
		if got := len(c.open); got != 0 {
			t.Fatalf("got %d clients held after every release, want 0", got)
		}
	})
	t.Run("negative is no limit", func(t *testing.T) {
		c := newClientSlots(-1)
		for range 1000 {
			acquire(t, c, a, true)
		}
		if got := len(c.open); got != 0 {
			t.Fatalf("got %d addresses counted without a limit, want 0", got)
		}
	})
}
