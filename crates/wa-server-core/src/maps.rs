//! The hash maps of the hub, the budgets and the connections: keyed by accounts, devices,
//! connections and message numbers, looked up several times for every message.
//!
//! They hash with foldhash's [`RandomState`](foldhash::fast::RandomState) instead of the
//! standard library's SipHash-1-3: a fraction of the instructions for a short key, and still
//! seeded at random (per process, and per map), so that nobody who cannot see the hashes can
//! choose keys that collide. The keys are the server's own (connection ids, message numbers)
//! or those of accounts and devices that have logged in.

/// A hash map with foldhash's seeded hasher.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set with foldhash's seeded hasher.
pub(crate) type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
