package transport

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// DefaultTrustedProxies returns the networks whose X-Forwarded-For is
// believed when Config.TrustedProxies is nil: loopback and the private
// ranges, as Rails' RemoteIp does. A hub behind an in-cluster load balancer
// then sees its visitors' addresses without configuration, while a client
// on the internet cannot pose as another by sending the header itself: its
// own address is public, so the header is ignored.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("fc00::/7"),
	}
}

// trustedProxies resolves a request's client address: the TCP peer, or,
// when the peer is a trusted proxy, the address that proxy says it forwarded
// for.
type trustedProxies []netip.Prefix

// newTrustedProxies normalises prefixes so that they match unmapped
// addresses: an IPv4-mapped IPv6 prefix becomes the IPv4 prefix it covers.
func newTrustedProxies(prefixes []netip.Prefix) trustedProxies {
	out := make(trustedProxies, 0, len(prefixes))
	for _, p := range prefixes {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

func (tp trustedProxies) trusted(a netip.Addr) bool {
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the client address of r. It is the peer's address
// unless the peer is a trusted proxy; then X-Forwarded-For is walked from
// the right (each proxy appends the address it received from), and the
// first address that is not a trusted proxy is the client. Entries to its
// left were written by the client or by proxies nobody vouches for, so they
// are never read. If every entry is trusted, the leftmost is the client; a
// malformed entry ends the walk at the last good address. The zero Addr
// means the peer address could not be parsed.
func (tp trustedProxies) clientAddr(r *http.Request) netip.Addr {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok || !tp.trusted(peer) {
		return peer
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	// Several header lines form one list, in order.
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for {
			entry := list
			j := strings.LastIndexByte(list, ',')
			if j >= 0 {
				entry, list = list[j+1:], list[:j]
			}
			a, ok := parseAddr(strings.TrimSpace(entry))
			if !ok {
				return client
			}
			client = a
			if !tp.trusted(a) {
				return a
			}
			if j < 0 {
				break
			}
		}
	}
	return client
}

// parseAddr parses an address with or without a port ("1.2.3.4",
// "1.2.3.4:5678", "[::1]:80"; some proxies add the port), without its zone,
// IPv4-mapped IPv6 addresses unmapped so that one client has one key.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// clientSlots counts the connections (widget sockets, or HTTP connections)
// open per client, so that one client cannot hold all of a replica's file
// descriptors. A client is an IPv4 address, or an IPv6 /64: one IPv6 host
// is routinely given a whole /64 and may pick any address of it, so
// counting each address would let it open 2^64 times the cap.
type clientSlots struct {
	limit int // < 0: no limit
	mu    sync.Mutex
	// open is the number of sockets per client (clientKey); a client whose
	// count reaches 0 is removed, so the map holds only clients with
	// sockets. Guarded by mu.
	open map[netip.Addr]int
}

func newClientSlots(limit int) *clientSlots {
	return &clientSlots{limit: limit, open: make(map[netip.Addr]int)}
}

// acquire takes a slot for a and reports whether there was one; every
// successful acquire needs one release.
func (c *clientSlots) acquire(a netip.Addr) bool {
	if c.limit < 0 {
		return true
	}
	k := clientKey(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[k] >= c.limit {
		return false
	}
	c.open[k]++
	return true
}

// clientKey is what a client's connections are counted by: its IPv4
// address, or the /64 its IPv6 address is in.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// release gives back a slot acquire took for a.
func (c *clientSlots) release(a netip.Addr) {
	if c.limit < 0 {
		return
	}
	k := clientKey(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.open[k]; n > 1 {
		c.open[k] = n - 1
	} else {
		delete(c.open, k)
	}
}
