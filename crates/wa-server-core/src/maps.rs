//! The hash maps of the hub and the connections that are looked up several times for every
//! message: keyed by connections, message numbers, refs, and the accounts and devices that
//! have logged in.
//!
//! They hash with foldhash's [`RandomState`](foldhash::fast::RandomState) instead of the
//! standard library's SipHash-1-3: a fraction of the instructions for a short key (SipHash
//! cost some 300 per lookup of a device's JID), still seeded at random per process and per
//! map. foldhash is only "minimally" resistant to chosen collisions (an attacker who can
//! observe hashes, or time lookups at length, could learn its seed), so it is used only where
//! the server chose the keys (connection ids, message numbers, refs) or authenticated them
//! (a logged-in device, its account). Maps keyed by what any client names (the budgets by
//! address and claimed number, the presence subscriptions by JID) keep SipHash.

/// A hash map with foldhash's seeded hasher.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set with foldhash's seeded hasher.
pub(crate) type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
