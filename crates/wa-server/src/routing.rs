//! The switchboard: the core's [`Hub`] (who is online, as data) next to each connection's push
//! queue, behind one lock. Routing a push takes the lock, asks the hub which connections the
//! target names, and queues the push on each; queueing never blocks, so no lock is held long
//! and none across an `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wa_server_core::{ConnId, Hub, Push, Target};
use wa_wire::Jid;

use crate::bus::{Bus, registration_time};
use crate::push::{PushQueue, Pushed};

/// A hash map with foldhash's seeded hasher (as the core's hub: connection ids are looked up
/// for every push).
type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Inner {
    hub: Hub,
    queues: Map<ConnId, Arc<PushQueue>>,
    /// When each registered connection logged in (ms since the epoch), to tell which of two
    /// logins of one device on two nodes is the newer.
    since: Map<ConnId, u64>,
    /// The account each connection that logged in holds an interest in the bus's account
    /// subject for (until it closes, replaced or not).
    interests: Map<ConnId, String>,
}

/// Routing between connections.
#[derive(Debug, Default)]
pub(crate) struct Switchboard {
    inner: Mutex<Inner>,
    next: AtomicU64,
    /// Pushes that closed a lagging connection.
    pub(crate) lagged: AtomicU64,
    /// The cluster's bus (`None` on a server alone).
    bus: Option<Arc<Bus>>,
}

impl Switchboard {
    /// A switchboard whose connections' pushes and logins also go to the other nodes on `bus`.
    pub(crate) fn with_bus(bus: Option<Arc<Bus>>) -> Switchboard {
        Switchboard {
            bus,
            ..Switchboard::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind: keep using them.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new connection with its queue: its id.
    pub(crate) fn open(&self, queue: Arc<PushQueue>) -> ConnId {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().queues.insert(id, queue);
        id
    }

    /// A push from a connection of this node: to the other nodes (in a cluster) and to the
    /// connections here that `target` names.
    pub(crate) fn route(&self, target: Target, push: Push) {
        match &self.bus {
            Some(bus) => {
                self.deliver(&target, push.clone());
                bus.publish_push(target, push);
            }
            None => self.deliver(&target, push),
        }
    }

    /// Delivers `push` to the connections here that `target` names (nobody: dropped).
    pub(crate) fn deliver(&self, target: &Target, push: Push) {
        let inner = self.lock();
        let conns = inner.hub.route(target);
        let mut push = Some(push);
        let last = conns.len().saturating_sub(1);
        for (i, conn) in conns.iter().enumerate() {
            let one = if i == last { push.take() } else { push.clone() };
            if let (Some(queue), Some(one)) = (inner.queues.get(conn), one) {
                self.queue(*conn, queue, one);
            }
        }
    }

    /// Whether a push to `target` would reach a connection here.
    pub(crate) fn reaches(&self, target: &Target) -> bool {
        self.lock().hub.reaches(target)
    }

    /// Delivers `push` to one connection.
    pub(crate) fn deliver_to(&self, conn: ConnId, push: Push) {
        let inner = self.lock();
        if let Some(queue) = inner.queues.get(&conn) {
            self.queue(conn, queue, push);
        }
    }

    /// Delivers pushes the hub produced.
    pub(crate) fn deliver_all(&self, pushes: Vec<(ConnId, Push)>) {
        for (conn, push) in pushes {
            self.deliver_to(conn, push);
        }
    }

    fn queue(&self, conn: ConnId, queue: &PushQueue, push: Push) {
        if queue.push(push) == Pushed::Lagged {
            self.lagged.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(conn, "push queue full: the connection lags and closes");
        }
    }

    /// `conn` is `device` of `number` now (see [`Hub::register`]); in a cluster, the other
    /// nodes hear it (an older connection of the device there is replaced), and the node
    /// subscribes to the account's subject: what it returns is ready once the pushes other
    /// nodes publish for the account reach this node. The connection reads its queue after
    /// that (see [`crate::bus`]).
    pub(crate) fn register(
        &self,
        conn: ConnId,
        number: &str,
        device: &Jid,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let at = registration_time();
        let (pushes, before) = {
            let mut inner = self.lock();
            inner.since.insert(conn, at);
            let before = self
                .bus
                .as_ref()
                .and_then(|_| inner.interests.insert(conn, number.to_owned()));
            (inner.hub.register(conn, number, device), before)
        };
        self.deliver_all(pushes);
        let bus = self.bus.as_ref()?;
        bus.publish_register(number, device, at);
        if before.as_deref() == Some(number) {
            return None;
        }
        // The new interest first: a shard both accounts share stays subscribed.
        let subscribed = bus.interest(number);
        if let Some(before) = before {
            bus.lose_interest(&before);
        }
        Some(subscribed)
    }

    /// `device` of `number` logged in on node `node` at `at`: the connection here registered
    /// as that device is replaced if it logged in before (a tie goes to the greater node id).
    pub(crate) fn evict_if_older(&self, number: &str, device: &Jid, (at, node): (u64, &str)) {
        let pushes = {
            let mut inner = self.lock();
            let Some(conn) = inner
                .hub
                .route(&Target::Device(device.clone()))
                .first()
                .copied()
            else {
                return;
            };
            let mine = inner.since.get(&conn).copied().unwrap_or(0);
            let own_node = self.bus.as_ref().map_or("", |b| b.node());
            if (mine, own_node) >= (at, node) {
                return;
            }
            inner.since.remove(&conn);
            inner.hub.evict(number, device)
        };
        self.deliver_all(pushes);
        // The phone is no longer here: the other nodes forget it at once rather than at the
        // expiry (the node it moved to announced it already).
        if let (Some(bus), 0) = (&self.bus, wa_wire::ids::device_of(device)) {
            bus.publish_phone_gone(number);
        }
    }

    /// Whether the phone of `number` is online on another node changed (see
    /// [`Hub::phone_elsewhere`]).
    pub(crate) fn phone_elsewhere(&self, number: &str, online: bool) {
        let pushes = self.lock().hub.phone_elsewhere(number, online);
        self.deliver_all(pushes);
    }

    /// The accounts whose phone is connected to this node.
    pub(crate) fn local_phones(&self) -> Vec<String> {
        self.lock().hub.local_phones()
    }

    /// `conn` waits on QR ref `r`.
    pub(crate) fn register_ref(&self, conn: ConnId, r: &str) {
        self.lock().hub.register_ref(conn, r);
    }

    /// `conn` no longer waits on `r`.
    pub(crate) fn forget_ref(&self, conn: ConnId, r: &str) {
        self.lock().hub.forget_ref(conn, r);
    }

    /// `conn` wants `jid`'s presence; false when it holds too many subscriptions.
    pub(crate) fn subscribe(&self, conn: ConnId, jid: &Jid) -> bool {
        self.lock().hub.subscribe(conn, jid)
    }

    /// `conn` is gone: out of the hub (delivering what that causes) and its queue closed.
    pub(crate) fn close(&self, conn: ConnId) {
        let (pushes, queue, phone_gone, interest) = {
            let mut inner = self.lock();
            // A phone still registered (not replaced) leaves: the other nodes hear it.
            let phone = inner
                .hub
                .registration(conn)
                .filter(|(_, device)| wa_wire::ids::device_of(device) == 0)
                .map(|(number, _)| number.to_owned());
            inner.since.remove(&conn);
            let pushes = inner.hub.unregister(conn);
            let interest = inner.interests.remove(&conn);
            (pushes, inner.queues.remove(&conn), phone, interest)
        };
        if let Some(queue) = queue {
            queue.close();
        }
        self.deliver_all(pushes);
        if let Some(bus) = &self.bus {
            if let Some(number) = phone_gone {
                bus.publish_phone_gone(&number);
            }
            if let Some(number) = interest {
                bus.lose_interest(&number);
            }
        }
    }

    /// The node's bus, in a cluster.
    pub(crate) fn bus(&self) -> Option<&Arc<Bus>> {
        self.bus.as_ref()
    }

    /// Every connection's queue gets `push`, whatever its caps (shutdown).
    pub(crate) fn broadcast_forced(&self, push: &Push) {
        for queue in self.lock().queues.values() {
            queue.push_forced(push.clone());
        }
    }

    /// Devices online.
    pub(crate) fn online(&self) -> usize {
        self.lock().hub.online()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::Received;
    use wa_wire::ids::{device_jid, user_jid};

    #[tokio::test]
    async fn routes_to_registered_devices_and_forgets_closed_ones() {
        let board = Switchboard::default();
        let phone_q = Arc::new(PushQueue::new(16, 1 << 20));
        let web_q = Arc::new(PushQueue::new(16, 1 << 20));
        let phone = board.open(Arc::clone(&phone_q));
        let web = board.open(Arc::clone(&web_q));
        let user = user_jid("15550000009").unwrap();
        board.register(web, "15550000009", &device_jid(&user, 3));
        // The web device learns at once that its phone is away.
        assert!(matches!(
            web_q.recv().await,
            Received::Push(Push::PhoneReachable(false))
        ));
        board.register(phone, "15550000009", &user);
        assert!(matches!(
            web_q.recv().await,
            Received::Push(Push::PhoneReachable(true))
        ));
        assert_eq!(board.online(), 2);
        board.deliver(
            &Target::Account {
                number: "15550000009".into(),
                except: None,
            },
            Push::PhoneReachable(true),
        );
        assert!(matches!(
            phone_q.recv().await,
            Received::Push(Push::PhoneReachable(true))
        ));
        assert!(matches!(
            web_q.recv().await,
            Received::Push(Push::PhoneReachable(true))
        ));
        board.close(phone);
        assert!(matches!(
            web_q.recv().await,
            Received::Push(Push::PhoneReachable(false))
        ));
        assert_eq!(board.online(), 1);
        board.deliver(&Target::Device(user), Push::PhoneReachable(true));
        assert_eq!(phone_q.push(Push::PhoneReachable(true)), Pushed::Closed);
    }
}
