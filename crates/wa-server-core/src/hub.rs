//! Who is online, as plain data: connections by device and by account, the QR refs connections
//! wait on, and presence subscriptions. The driver keeps one (behind a lock, next to each
//! connection's channel); the in-memory test harness keeps one too. It performs no IO: it says
//! which connections a push goes to, and which pushes a change of registration causes.
//!
//! **Architecture Invariant:** the hub holds nothing that must survive a restart; the store
//! holds everything that must. Every map is bounded by the connections that exist (and
//! subscriptions by [`MAX_SUBSCRIPTIONS`] per connection).

use std::collections::{BTreeSet, HashMap, HashSet};

use wa_wire::Jid;
use wa_wire::ids::device_of;

use crate::action::{DisconnectKind, Push, Target};

/// Identifies a connection within one hub.
pub type ConnId = u64;

/// Presence subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 1024;

/// The registry.
#[derive(Debug, Default)]
pub struct Hub {
    devices: HashMap<Jid, ConnId>,
    accounts: HashMap<String, BTreeSet<Jid>>,
    conns: HashMap<ConnId, (String, Jid)>,
    refs: HashMap<String, ConnId>,
    conn_refs: HashMap<ConnId, HashSet<String>>,
    subscribers: HashMap<Jid, HashSet<ConnId>>,
    conn_subs: HashMap<ConnId, HashSet<Jid>>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Connection `conn` is now `device` of account `number`. Returns the pushes this causes:
    /// `Replaced` for an older connection of the same device, whether the phone is online for a
    /// web device, and "phone back" for the account's web devices when it is the phone.
    pub fn register(&mut self, conn: ConnId, number: &str, device: &Jid) -> Vec<(ConnId, Push)> {
        let mut out = Vec::new();
        if let Some(old) = self.devices.insert(device.clone(), conn)
            && old != conn
        {
            self.conns.remove(&old);
            out.push((old, Push::Disconnect(DisconnectKind::Replaced)));
        }
        self.conns.insert(conn, (number.to_owned(), device.clone()));
        self.accounts
            .entry(number.to_owned())
            .or_default()
            .insert(device.clone());
        if device_of(device) == 0 {
            for (web, _) in self.web_conns(number) {
                out.push((web, Push::PhoneReachable(true)));
            }
        } else {
            out.push((conn, Push::PhoneReachable(self.phone_online(number))));
        }
        out
    }

    /// Connection `conn` is gone. Returns the pushes this causes (the phone left: its web
    /// devices hear it).
    pub fn unregister(&mut self, conn: ConnId) -> Vec<(ConnId, Push)> {
        if let Some(refs) = self.conn_refs.remove(&conn) {
            for r in refs {
                self.refs.remove(&r);
            }
        }
        if let Some(subs) = self.conn_subs.remove(&conn) {
            for jid in subs {
                if let Some(set) = self.subscribers.get_mut(&jid) {
                    set.remove(&conn);
                    if set.is_empty() {
                        self.subscribers.remove(&jid);
                    }
                }
            }
        }
        let Some((number, device)) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        if self.devices.get(&device) == Some(&conn) {
            self.devices.remove(&device);
            if let Some(set) = self.accounts.get_mut(&number) {
                set.remove(&device);
                if set.is_empty() {
                    self.accounts.remove(&number);
                }
            }
        }
        if device_of(&device) == 0 && !self.phone_online(&number) {
            return self
                .web_conns(&number)
                .into_iter()
                .map(|(web, _)| (web, Push::PhoneReachable(false)))
                .collect();
        }
        Vec::new()
    }

    /// Connection `conn` waits on QR ref `r`.
    pub fn register_ref(&mut self, conn: ConnId, r: &str) {
        self.refs.insert(r.to_owned(), conn);
        self.conn_refs.entry(conn).or_default().insert(r.to_owned());
    }

    /// Connection `conn` no longer waits on `r`.
    pub fn forget_ref(&mut self, conn: ConnId, r: &str) {
        if self.refs.get(r) == Some(&conn) {
            self.refs.remove(r);
        }
        if let Some(set) = self.conn_refs.get_mut(&conn) {
            set.remove(r);
        }
    }

    /// Connection `conn` wants `jid`'s presence. False when it holds too many subscriptions.
    pub fn subscribe(&mut self, conn: ConnId, jid: &Jid) -> bool {
        let subs = self.conn_subs.entry(conn).or_default();
        if subs.len() >= MAX_SUBSCRIPTIONS && !subs.contains(jid) {
            return false;
        }
        subs.insert(jid.clone());
        self.subscribers
            .entry(jid.clone())
            .or_default()
            .insert(conn);
        true
    }

    /// The connections a push to `target` goes to.
    pub fn route(&self, target: &Target) -> Vec<ConnId> {
        match target {
            Target::Device(device) => self.devices.get(device).copied().into_iter().collect(),
            Target::Account { number, except } => self
                .accounts
                .get(number)
                .into_iter()
                .flatten()
                .filter(|d| Some(*d) != except.as_ref())
                .filter_map(|d| self.devices.get(d).copied())
                .collect(),
            Target::Ref(r) => self.refs.get(r).copied().into_iter().collect(),
            Target::Subscribers(jid) => self
                .subscribers
                .get(jid)
                .into_iter()
                .flatten()
                .copied()
                .collect(),
        }
    }

    /// Whether the phone of `number` is connected.
    pub fn phone_online(&self, number: &str) -> bool {
        self.accounts
            .get(number)
            .is_some_and(|devices| devices.iter().any(|d| device_of(d) == 0))
    }

    /// Devices online, all accounts.
    pub fn online(&self) -> usize {
        self.devices.len()
    }

    fn web_conns(&self, number: &str) -> Vec<(ConnId, Jid)> {
        self.accounts
            .get(number)
            .into_iter()
            .flatten()
            .filter(|d| device_of(d) != 0)
            .filter_map(|d| self.devices.get(d).map(|c| (*c, d.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wa_wire::ids::{device_jid, user_jid};

    #[test]
    fn takeover_phone_presence_and_routes() {
        let mut hub = Hub::new();
        let user = user_jid("15551234567").unwrap();
        let web = device_jid(&user, 2);
        assert_eq!(
            hub.register(1, "15551234567", &web),
            vec![(1, Push::PhoneReachable(false))]
        );
        assert_eq!(
            hub.register(2, "15551234567", &user),
            vec![(1, Push::PhoneReachable(true))]
        );
        // The same device again: the older connection is replaced.
        assert_eq!(
            hub.register(3, "15551234567", &web),
            vec![
                (1, Push::Disconnect(DisconnectKind::Replaced)),
                (3, Push::PhoneReachable(true))
            ]
        );
        assert_eq!(hub.route(&Target::Device(web.clone())), vec![3]);
        let mut all = hub.route(&Target::Account {
            number: "15551234567".into(),
            except: None,
        });
        all.sort_unstable();
        assert_eq!(all, vec![2, 3]);
        // The replaced connection going away changes nothing for the new one.
        assert!(hub.unregister(1).is_empty());
        assert_eq!(hub.route(&Target::Device(web)), vec![3]);
        // The phone leaves: its web device hears it.
        assert_eq!(hub.unregister(2), vec![(3, Push::PhoneReachable(false))]);
        hub.register_ref(3, "1@r");
        assert_eq!(hub.route(&Target::Ref("1@r".into())), vec![3]);
        hub.unregister(3);
        assert!(hub.route(&Target::Ref("1@r".into())).is_empty());
        assert_eq!(hub.online(), 0);
    }

    #[test]
    fn subscriptions_are_bounded() {
        let mut hub = Hub::new();
        for n in 0..MAX_SUBSCRIPTIONS {
            assert!(hub.subscribe(1, &user_jid(&format!("1555{n:07}")).unwrap()));
        }
        assert!(!hub.subscribe(1, &user_jid("19999999999").unwrap()));
        hub.unregister(1);
        assert!(hub.subscribers.is_empty());
    }
}
