// Package presence holds the product's rules as pure Go: agent statuses,
// device sessions, the widget status of a site or group, and the rules a
// site's settings turn on. It runs no goroutines and imports no network
// package.
//
// The rules, from the vendor help article this product replaces:
//
//  1. Every agent has one status, online, busy or offline, chosen by hand
//     from any device. It belongs to the agent, not to a device. An agent seen
//     for the first time starts online.
//  2. A device that connects adopts the stored status; it never re-asserts an
//     old one.
//  3. An agent is connected while at least one device holds a lease. A device
//     that drops without saying goodbye keeps its lease for a grace period;
//     the agent keeps their status meanwhile, and reconnecting inside it
//     changes nothing anyone outside the agent's own devices can see. The
//     lease's expiry is enforced outside this package (by NATS key TTLs), so
//     no timer lives here: this package only reacts to leases appearing and
//     disappearing.
//  4. A deliberate logout (bye) removes the device's lease at once.
//  5. A widget is online if a relevant agent is effectively online, else busy
//     if one is busy, else offline. For a group widget the relevant agents
//     are the group's members plus every agent in no group at all.
//  6. Every widget status carries a reason.
//  7. Working hours (Schedule, per site or per group, a group's overriding
//     the site's) force the widget offline with reason outside_hours outside
//     them, and say when they next change.
//
// A site's Settings (settings.go, bounds included) turn on three more rules,
// each a pure decision whose deadline and writes are kept outside this
// package:
//
//  8. Idle (idle.go): an online agent none of whose devices showed activity
//     for idle.after gets idle.status; activity brings back an agent the
//     rule set away.
//  9. Sign-off at close (signoff.go): when working hours close, the online
//     and busy agents they govern go offline; a close nobody carried out is
//     caught up on.
//  10. Coverage (coverage.go): a widget uncovered inside its hours for
//     uncovered_alert has lost its coverage until it is online again.
//
// Nothing in this package is safe for concurrent use; its owner (the hub's
// view) serialises access.
package presence
