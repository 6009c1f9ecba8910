//! Connection caps that cannot race: permits taken when a TCP connection is accepted, before a
//! byte of its request is read, and owned by whatever serves it; a WebSocket's permits move into
//! its task with the upgrade, so they are released exactly when the connection ends.
//!
//! Three caps: all connections (a [`Semaphore`]), connections per client IP address, and
//! connections that have not logged in yet (HTTP requests, WebSockets before their login: a
//! second [`Semaphore`], whose permit a WebSocket gives back when it logs in).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` are open.
    Full,
    /// The client's address has `max_connections_per_address` open.
    Address,
    /// `max_unauthenticated` connections have not logged in yet.
    Unauthenticated,
}

/// The caps of a group of listeners.
#[derive(Debug)]
pub(crate) struct Caps {
    all: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
    max_all: usize,
    max_unauthenticated: usize,
    /// Connections refused, by cap (full, per address, unauthenticated).
    refused: [AtomicU64; 3],
}

impl Caps {
    pub(crate) fn new(max_all: usize, max_per_address: usize, max_unauthenticated: usize) -> Caps {
        Caps {
            all: Arc::new(Semaphore::new(max_all)),
            unauthenticated: Arc::new(Semaphore::new(max_unauthenticated)),
            per_address: Arc::new(Mutex::new(HashMap::new())),
            max_per_address,
            max_all,
            max_unauthenticated,
            refused: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Permits for a new connection from `ip`, or why not.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Permits, Refused> {
        let refuse = |why: Refused| {
            let index = match why {
                Refused::Full => 0,
                Refused::Address => 1,
                Refused::Unauthenticated => 2,
            };
            if let Some(counter) = self.refused.get(index) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(why)
        };
        let Ok(all) = Arc::clone(&self.all).try_acquire_owned() else {
            return refuse(Refused::Full);
        };
        let address = {
            let mut map = self
                .per_address
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = map.entry(ip).or_insert(0);
            if *count >= self.max_per_address {
                drop(map);
                return refuse(Refused::Address);
            }
            *count += 1;
            AddressPermit {
                map: Arc::clone(&self.per_address),
                ip,
            }
        };
        let Ok(unauthenticated) = Arc::clone(&self.unauthenticated).try_acquire_owned() else {
            return refuse(Refused::Unauthenticated);
        };
        Ok(Permits {
            _all: all,
            _address: address,
            unauthenticated: Some(unauthenticated),
        })
    }

    /// Connections open.
    pub(crate) fn open(&self) -> usize {
        self.max_all.saturating_sub(self.all.available_permits())
    }

    /// Connections open that have not logged in.
    pub(crate) fn unauthenticated(&self) -> usize {
        self.max_unauthenticated
            .saturating_sub(self.unauthenticated.available_permits())
    }

    /// Refusals so far: (full, per address, unauthenticated).
    pub(crate) fn refusals(&self) -> [u64; 3] {
        let [full, address, unauthenticated] = &self.refused;
        [full, address, unauthenticated].map(|c| c.load(Ordering::Relaxed))
    }
}

/// One client address's share of the per-address cap; given back on drop.
#[derive(Debug)]
struct AddressPermit {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What one connection holds: released on drop.
#[derive(Debug)]
pub(crate) struct Permits {
    _all: OwnedSemaphorePermit,
    _address: AddressPermit,
    unauthenticated: Option<OwnedSemaphorePermit>,
}

impl Permits {
    /// The client's address.
    pub(crate) fn peer(&self) -> IpAddr {
        self._address.ip
    }

    /// The connection logged in: it no longer counts as unauthenticated.
    pub(crate) fn logged_in(&mut self) {
        self.unauthenticated = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_release() {
        let caps = Caps::new(3, 2, 2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let mut first = caps.admit(a).unwrap();
        let _second = caps.admit(a).unwrap();
        assert_eq!(caps.admit(a).unwrap_err(), Refused::Address);
        assert_eq!(caps.admit(b).unwrap_err(), Refused::Unauthenticated);
        first.logged_in();
        assert_eq!(caps.unauthenticated(), 1);
        let mut third = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).unwrap_err(), Refused::Full);
        assert_eq!(caps.open(), 3);
        drop(first);
        assert_eq!(caps.open(), 2);
        // Room again, but the two open ones have not logged in.
        assert_eq!(caps.admit(a).unwrap_err(), Refused::Unauthenticated);
        third.logged_in();
        let _fourth = caps.admit(a).unwrap();
        assert_eq!(caps.refusals(), [1, 1, 2]);
    }
}
