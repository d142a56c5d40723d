package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// The address guard keeps webhooks off the hub's own network: an admin of
// one site must not be able to make the hub POST to its loopback, to the
// NATS servers or other hosts of a private network, or to a cloud
// provider's metadata service. Registration checks what the host resolves
// to; delivery checks again the address each connection is actually made
// to, in the dialer, so a name that later resolves elsewhere (DNS
// rebinding) is refused too.

// blockedPrefixes are the networks, besides what netip's predicates
// recognise, that are not public unicast addresses.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT; Alibaba Cloud's metadata at 100.100.100.200
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits, which is what is checked.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// publicAddr reports why addr is not a public unicast address, or "".
func publicAddr(addr netip.Addr) string {
	addr = addr.Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !addr.IsValid():
		return "not an IP address"
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsPrivate():
		return "a private address"
	case addr.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata services live there)"
	case addr.IsUnspecified():
		return "the unspecified address"
	case addr.IsMulticast():
		return "a multicast address"
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return "a reserved address (" + p.String() + ")"
		}
	}
	return ""
}

// checkHost resolves host and returns an error naming the first address it
// resolves to that is not public.
func checkHost(ctx context.Context, r *net.Resolver, host string) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := publicAddr(addr); why != "" {
			return fmt.Errorf("%s is %s", host, why)
		}
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("failed to resolve %s: %w", host, err)
	}
	for _, addr := range addrs {
		if why := publicAddr(addr); why != "" {
			return fmt.Errorf("%s resolves to %s, %s", host, addr, why)
		}
	}
	return nil
}

// dialControl is the delivery dialer's check of the address it is about to
// connect to.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %s: %w", address, err)
	}
	if why := publicAddr(ap.Addr()); why != "" {
		return fmt.Errorf("refused to connect to %s: %s", ap.Addr(), why)
	}
	return nil
}
