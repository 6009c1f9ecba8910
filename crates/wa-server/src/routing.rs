//! The switchboard: the core's [`Hub`] (who is online, as data) next to each connection's push
//! queue, behind one lock. Routing a push takes the lock, asks the hub which connections the
//! target names, and queues the push on each; queueing never blocks, so no lock is held long
//! and none across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wa_server_core::{ConnId, Hub, Push, Target};
use wa_wire::Jid;

use crate::push::{PushQueue, Pushed};

#[derive(Debug, Default)]
struct Inner {
    hub: Hub,
    queues: HashMap<ConnId, Arc<PushQueue>>,
}

/// Routing between connections.
#[derive(Debug, Default)]
pub(crate) struct Switchboard {
    inner: Mutex<Inner>,
    next: AtomicU64,
    /// Pushes that closed a lagging connection.
    pub(crate) lagged: AtomicU64,
}

impl Switchboard {
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

    /// Delivers `push` to whatever `target` names (nobody: dropped).
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

    /// `conn` is `device` of `number` now (see [`Hub::register`]).
    pub(crate) fn register(&self, conn: ConnId, number: &str, device: &Jid) {
        let pushes = self.lock().hub.register(conn, number, device);
        self.deliver_all(pushes);
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
        let (pushes, queue) = {
            let mut inner = self.lock();
            let pushes = inner.hub.unregister(conn);
            (pushes, inner.queues.remove(&conn))
        };
        if let Some(queue) = queue {
            queue.close();
        }
        self.deliver_all(pushes);
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
