package store

import "strings"

// Kind is the kind of a key, its first token. The tokens are one letter,
// as the bucket has always stored them: existing deployments' buckets keep
// their keys, and a new layout is a migration of its own (issue 21, the
// keys laid out over several buckets). In code they go by these names.
type Kind string

// The key layout of the bucket. Ids are 1-64 characters of A-Za-z0-9_-
// (device ids are UUIDs), so they are always valid single subject tokens.
//
//	a.<site>.<agent>           KindAgent: the agent's record, no TTL
//	d.<site>.<agent>.<device>  KindLease: a device's lease, TTL = grace, refreshed while live
//	h.<site>[.<group>]         KindHours: working hours (presence.Schedule)
//	s.<site>                   KindSettings: the site's settings
//	i.<site>.<agent>           KindActivity: the agent's last activity, TTL = the idle rule's after
//	u.<site>[.<group>]         KindUncovered: a widget not online since, TTL = the site's uncovered_alert
//	c.<site>[.<group>]         KindCoverageLost: a widget's coverage lost (coverage.lost published), no TTL
//	x.<site>.<replica>.<agent>.<device>
//	                           KindIndex: a live device's lease is held by replica (value: the session), no TTL
//
// A live session's lease has no TTL: its replica's liveness key stands for
// all of them (package cluster). The index lists, by replica, the leases
// to hand over to their grace when that replica's liveness runs out.
const (
	KindAgent        Kind = "a"
	KindLease        Kind = "d"
	KindHours        Kind = "h"
	KindSettings     Kind = "s"
	KindActivity     Kind = "i"
	KindUncovered    Kind = "u"
	KindCoverageLost Kind = "c"
	KindIndex        Kind = "x"
)

// Key is a bucket key split into its parts.
type Key struct {
	Kind                Kind
	Site, Agent, Device string
	// Group is the group of an hours or coverage key; "" for the site's.
	Group string
	// Replica is the replica of an index key.
	Replica string
}

// String returns the key as the bucket stores it.
func (k Key) String() string {
	s := string(k.Kind) + "." + k.Site
	switch k.Kind {
	case KindAgent, KindActivity:
		return s + "." + k.Agent
	case KindLease:
		return s + "." + k.Agent + "." + k.Device
	case KindIndex:
		return s + "." + k.Replica + "." + k.Agent + "." + k.Device
	case KindHours, KindUncovered, KindCoverageLost:
		if k.Group != "" {
			return s + "." + k.Group
		}
	}
	return s
}

// AgentKey is the key of an agent's record.
func AgentKey(site, agent string) Key { return Key{Kind: KindAgent, Site: site, Agent: agent} }

// LeaseKey is the key of a device's lease.
func LeaseKey(site, agent, device string) Key {
	return Key{Kind: KindLease, Site: site, Agent: agent, Device: device}
}

// IndexKey is the key that says replica holds the live lease of device.
func IndexKey(site, replica, agent, device string) Key {
	return Key{Kind: KindIndex, Site: site, Replica: replica, Agent: agent, Device: device}
}

// Lease returns the lease key an index key stands for.
func (k Key) Lease() Key { return LeaseKey(k.Site, k.Agent, k.Device) }

// HoursKey is the key of the working hours of (site, group), group "" for
// the site's own.
func HoursKey(site, group string) Key { return Key{Kind: KindHours, Site: site, Group: group} }

// SettingsKey is the key of a site's settings.
func SettingsKey(site string) Key { return Key{Kind: KindSettings, Site: site} }

// ActivityKey is the key of an agent's last activity.
func ActivityKey(site, agent string) Key { return Key{Kind: KindActivity, Site: site, Agent: agent} }

// CoverageKey is the uncovered (KindUncovered) or coverage-lost
// (KindCoverageLost) key of the widget of (site, group).
func CoverageKey(kind Kind, site, group string) Key { return Key{Kind: kind, Site: site, Group: group} }

// ParseKey splits a bucket key; ok is false for a key of no known kind.
func ParseKey(key string) (k Key, ok bool) {
	parts := strings.Split(key, ".")
	kind := Kind(parts[0])
	switch {
	case len(parts) == 3 && (kind == KindAgent || kind == KindActivity):
		return Key{Kind: kind, Site: parts[1], Agent: parts[2]}, true
	case len(parts) == 4 && kind == KindLease:
		return Key{Kind: kind, Site: parts[1], Agent: parts[2], Device: parts[3]}, true
	case len(parts) == 5 && kind == KindIndex:
		return Key{Kind: kind, Site: parts[1], Replica: parts[2], Agent: parts[3], Device: parts[4]}, true
	case len(parts) == 2 && kind == KindSettings:
		return Key{Kind: kind, Site: parts[1]}, true
	case (len(parts) == 2 || len(parts) == 3) && (kind == KindHours || kind == KindUncovered || kind == KindCoverageLost):
		k := Key{Kind: kind, Site: parts[1]}
		if len(parts) == 3 {
			k.Group = parts[2]
		}
		return k, true
	}
	return Key{}, false
}
