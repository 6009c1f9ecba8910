//! Who is online, as plain data: connections by device and by account, the QR refs connections
//! wait on, and presence subscriptions. The driver keeps one (behind a lock, next to each
//! connection's channel); the in-memory test harness keeps one too. It performs no IO: it says
//! which connections a push goes to, and which pushes a change of registration causes.
//!
//! In a cluster each node keeps its own hub of its own connections; the driver tells it what
//! matters of the other nodes: that a device registered elsewhere ([`Hub::evict`]: the local
//! connection is replaced) and which accounts have their phone online on another node
//! ([`Hub::phone_elsewhere`]), so that web clients hear [`Push::PhoneReachable`] whichever node
//! their phone is on.
//!
//! **Architecture Invariant:** the hub holds nothing that must survive a restart; the store
//! holds everything that must. Every map is bounded by the connections that exist (and
//! subscriptions by [`MAX_SUBSCRIPTIONS`] per connection; phones elsewhere by what the driver
//! reports, which it expires).

use std::collections::{BTreeSet, HashMap, HashSet};

use wa_wire::Jid;
use wa_wire::ids::device_of;

use crate::action::{DisconnectKind, Push, Target};
use crate::maps::{Map, Set};

/// Identifies a connection within one hub.
pub type ConnId = u64;

/// Presence subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 1024;

/// The registry.
#[derive(Debug, Default)]
pub struct Hub {
    devices: Map<Jid, ConnId>,
    accounts: Map<String, BTreeSet<Jid>>,
    conns: Map<ConnId, (String, Jid)>,
    refs: Map<String, ConnId>,
    conn_refs: Map<ConnId, Set<String>>,
    // (The JIDs clients subscribe to, as keys here and in each connection's set, are hashed
    // with the standard library's SipHash: see `maps`.)
    subscribers: HashMap<Jid, Set<ConnId>>,
    conn_subs: Map<ConnId, HashSet<Jid>>,
    /// Accounts whose phone is connected to another node of a cluster.
    phones_elsewhere: Set<String>,
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

    /// The device and account `conn` is registered as, if it still is (a connection that was
    /// replaced, or never logged in, is not).
    pub fn registration(&self, conn: ConnId) -> Option<(&str, &Jid)> {
        self.conns
            .get(&conn)
            .map(|(number, device)| (number.as_str(), device))
    }

    /// `device` of account `number` registered on another node of the cluster: the local
    /// connection registered as that device, if any, is out of the hub and gets
    /// [`DisconnectKind::Replaced`] (returned with its id). Its refs and subscriptions stay
    /// until it closes ([`Hub::unregister`]). The phone being online elsewhere is the caller's
    /// to report with [`Hub::phone_elsewhere`], before this call, so that the phone moving
    /// between nodes is no "phone gone" for the account's web clients here.
    pub fn evict(&mut self, number: &str, device: &Jid) -> Vec<(ConnId, Push)> {
        let Some(conn) = self.devices.remove(device) else {
            return Vec::new();
        };
        self.conns.remove(&conn);
        if let Some(set) = self.accounts.get_mut(number) {
            set.remove(device);
            if set.is_empty() {
                self.accounts.remove(number);
            }
        }
        let mut out = vec![(conn, Push::Disconnect(DisconnectKind::Replaced))];
        if device_of(device) == 0 && !self.phone_online(number) {
            out.extend(
                self.web_conns(number)
                    .into_iter()
                    .map(|(web, _)| (web, Push::PhoneReachable(false))),
            );
        }
        out
    }

    /// Whether the phone of `number` is connected to another node of the cluster changed to
    /// `online`. Returns the pushes this causes: the account's web clients here hear when
    /// their phone becomes reachable or unreachable (counting a phone connected here too).
    pub fn phone_elsewhere(&mut self, number: &str, online: bool) -> Vec<(ConnId, Push)> {
        let before = self.phone_online(number);
        if online {
            self.phones_elsewhere.insert(number.to_owned());
        } else {
            self.phones_elsewhere.remove(number);
        }
        let after = self.phone_online(number);
        if before == after {
            return Vec::new();
        }
        self.web_conns(number)
            .into_iter()
            .map(|(web, _)| (web, Push::PhoneReachable(after)))
            .collect()
    }

    /// The accounts whose phone is connected to this hub (not elsewhere).
    pub fn local_phones(&self) -> Vec<String> {
        self.accounts
            .iter()
            .filter(|(_, devices)| devices.iter().any(|d| device_of(d) == 0))
            .map(|(number, _)| number.clone())
            .collect()
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

    /// Whether a push to `target` would reach any connection here: [`Hub::route`] without the
    /// list (a node of a cluster asks before it decodes a push another node published).
    pub fn reaches(&self, target: &Target) -> bool {
        match target {
            Target::Device(device) => self.devices.contains_key(device),
            Target::Account { number, except } => {
                self.accounts.get(number).is_some_and(|devices| {
                    devices
                        .iter()
                        .any(|d| Some(d) != except.as_ref() && self.devices.contains_key(d))
                })
            }
            Target::Ref(r) => self.refs.contains_key(r),
            Target::Subscribers(jid) => self
                .subscribers
                .get(jid)
                .is_some_and(|conns| !conns.is_empty()),
        }
    }

    /// Whether the phone of `number` is connected (here, or on another node as reported with
    /// [`Hub::phone_elsewhere`]).
    pub fn phone_online(&self, number: &str) -> bool {
        self.phones_elsewhere.contains(number)
            || self
                .accounts
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
    fn phones_on_other_nodes_count_and_evictions_replace() {
        let mut hub = Hub::new();
        let number = "15551234567";
        let user = user_jid(number).unwrap();
        let web = device_jid(&user, 2);
        assert_eq!(
            hub.register(1, number, &web),
            vec![(1, Push::PhoneReachable(false))]
        );
        // The phone comes online on another node: the web client here hears it, once.
        assert_eq!(
            hub.phone_elsewhere(number, true),
            vec![(1, Push::PhoneReachable(true))]
        );
        assert!(hub.phone_elsewhere(number, true).is_empty());
        // It moves here: no change for the web client.
        assert!(
            hub.register(2, number, &user)
                .iter()
                .all(|(_, p)| *p == Push::PhoneReachable(true))
        );
        assert!(hub.phone_elsewhere(number, false).is_empty());
        assert_eq!(hub.local_phones(), vec![number.to_owned()]);
        assert_eq!(hub.registration(2), Some((number, &user)));
        // It logs in on another node again: the connection here is replaced; the phone is
        // online elsewhere, so the web client hears nothing.
        assert!(hub.phone_elsewhere(number, true).is_empty());
        assert_eq!(
            hub.evict(number, &user),
            vec![(2, Push::Disconnect(DisconnectKind::Replaced))]
        );
        assert_eq!(hub.registration(2), None);
        assert!(hub.unregister(2).is_empty());
        assert!(hub.local_phones().is_empty());
        // That node dies: the web client hears its phone is gone.
        assert_eq!(
            hub.phone_elsewhere(number, false),
            vec![(1, Push::PhoneReachable(false))]
        );
        // Evicting a device nobody here has is nothing.
        assert!(hub.evict(number, &user).is_empty());
        // A web device replaced by another node while the phone is away: only it hears.
        assert_eq!(
            hub.evict(number, &web),
            vec![(1, Push::Disconnect(DisconnectKind::Replaced))]
        );
        assert_eq!(hub.online(), 0);
    }

    /// What the hub can be asked to do, on a few accounts, devices and connections.
    #[derive(Debug, Clone)]
    enum Op {
        Register(ConnId, u8, u8),
        Unregister(ConnId),
        Evict(u8, u8),
        Ref(ConnId, u8),
        ForgetRef(ConnId, u8),
        Subscribe(ConnId, u8),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let conn = 1..5_u64;
        prop_oneof![
            (conn.clone(), 0..3_u8, 0..3_u8).prop_map(|(c, a, d)| Op::Register(c, a, d)),
            conn.clone().prop_map(Op::Unregister),
            (0..3_u8, 0..3_u8).prop_map(|(a, d)| Op::Evict(a, d)),
            (conn.clone(), 0..2_u8).prop_map(|(c, r)| Op::Ref(c, r)),
            (conn.clone(), 0..2_u8).prop_map(|(c, r)| Op::ForgetRef(c, r)),
            (conn, 0..3_u8).prop_map(|(c, a)| Op::Subscribe(c, a)),
        ]
    }

    fn number(account: u8) -> String {
        format!("1555000000{account}")
    }

    fn device(account: u8, device: u8) -> Jid {
        device_jid(&user_jid(&number(account)).unwrap(), device)
    }

    proptest::proptest! {
        /// `reaches` is `route` not being empty, for every kind of target, whatever the hub
        /// went through.
        #[test]
        fn reaches_is_whether_route_finds_anyone(ops in proptest::collection::vec(op(), 0..40)) {
            let mut hub = Hub::new();
            for op in ops {
                match op {
                    Op::Register(conn, a, d) => drop(hub.register(conn, &number(a), &device(a, d))),
                    Op::Unregister(conn) => drop(hub.unregister(conn)),
                    Op::Evict(a, d) => drop(hub.evict(&number(a), &device(a, d))),
                    Op::Ref(conn, r) => hub.register_ref(conn, &format!("{r}@r")),
                    Op::ForgetRef(conn, r) => hub.forget_ref(conn, &format!("{r}@r")),
                    Op::Subscribe(conn, a) => drop(hub.subscribe(conn, &user_jid(&number(a)).unwrap())),
                }
                let mut targets = vec![Target::Ref("0@r".into()), Target::Ref("1@r".into())];
                for a in 0..3 {
                    targets.push(Target::Subscribers(user_jid(&number(a)).unwrap()));
                    targets.push(Target::Account { number: number(a), except: None });
                    for d in 0..3 {
                        targets.push(Target::Device(device(a, d)));
                        targets.push(Target::Account { number: number(a), except: Some(device(a, d)) });
                    }
                }
                for target in &targets {
                    proptest::prop_assert_eq!(hub.reaches(target), !hub.route(target).is_empty(), "{:?}", target);
                }
            }
        }
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
