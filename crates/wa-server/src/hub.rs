//! Who is online: the in-memory registry of connections, by device and by account, with the
//! QR refs waiting for a scan, presence subscriptions and media upload auth.
//!
//! Connections get [`Push`]es through a bounded channel each. A push never blocks the sender:
//! when a connection's channel is full it is marked lagged and closes itself; what it missed
//! is still queued in the store and comes again when it reconnects.
//!
//! **Architecture Invariant:** the hub holds nothing that must survive a restart; the store
//! holds everything that must. A lock on the hub is never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::jid::DeviceKey;
use crate::model::{AccountRecord, DeviceRecord};

/// Identifies one connection.
pub(crate) type ConnId = u64;

/// Something for a connection to send to its client.
#[derive(Debug)]
pub(crate) enum Push {
    /// A message for this device.
    Deliver(Arc<Delivery>),
    /// Ticks for messages this account sent.
    Ack(Arc<AckNote>),
    /// A contact's presence.
    Presence(Arc<PresenceNote>),
    /// A group changed.
    Group(Arc<GroupNote>),
    /// The phone approved this (web) connection's QR code.
    Linked(Box<Grant>),
    /// A text frame answering one of this connection's requests (sent from another task).
    Reply(String),
    /// The account's phone went away (`false`) or came back (`true`).
    PhoneReachable(bool),
    /// Close the connection, telling the client why.
    Disconnect(DisconnectKind),
}

/// Why a connection is closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisconnectKind {
    /// Another connection logged in as the same device.
    Replaced,
    /// The device was unlinked (by the phone, by logging out, or evicted by a newer link).
    Unlinked,
    /// The server is shutting down.
    Shutdown,
}

/// A message pushed to a device.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The queue entry, for messages the device must acknowledge; `None` for copies of the
    /// account's own messages sent to its other devices.
    pub(crate) seq: Option<u64>,
    /// The `WebMessageInfo` bytes as this device sees it.
    pub(crate) info: Arc<Vec<u8>>,
}

/// An ack (tick) for a sender's devices.
#[derive(Debug, Clone)]
pub(crate) struct AckNote {
    pub(crate) id: String,
    pub(crate) level: u8,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) participant: Option<String>,
    pub(crate) t: u64,
}

/// A presence update.
#[derive(Debug, Clone)]
pub(crate) struct PresenceNote {
    /// Whose (`n@c.us`).
    pub(crate) jid: String,
    pub(crate) kind: String,
    pub(crate) t: u64,
    /// For typing in a group: the group.
    pub(crate) chat: Option<String>,
}

/// A group change.
#[derive(Debug, Clone)]
pub(crate) struct GroupNote {
    pub(crate) jid: String,
    pub(crate) op: String,
    pub(crate) author: String,
    pub(crate) participants: Vec<String>,
    pub(crate) subject: Option<String>,
}

/// The fresh tokens of a link or login, in clear (the store keeps their hashes).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Tokens {
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) browser: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// What a web connection gets when it is linked or logged in.
pub(crate) struct Grant {
    pub(crate) account: AccountRecord,
    pub(crate) device: DeviceRecord,
    pub(crate) tokens: Tokens,
    /// The `secret` of §2.3, after a QR scan.
    pub(crate) secret: Option<String>,
    /// The ref that was scanned.
    pub(crate) scanned_ref: Option<String>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("number", &self.account.number)
            .field("client_id", &self.device.client_id)
            .finish_non_exhaustive()
    }
}

/// A connection's end of its push channel.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) id: ConnId,
    tx: mpsc::Sender<Push>,
    lagged: Arc<AtomicBool>,
}

impl Outbox {
    /// A new outbox with room for `capacity` pushes, and its receiving end.
    pub(crate) fn new(id: ConnId, capacity: usize) -> (Outbox, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Outbox {
                id,
                tx,
                lagged: Arc::new(AtomicBool::new(false)),
            },
            rx,
        )
    }

    /// Queues a push; `false` if the connection is gone or lagging (then it will close).
    pub(crate) fn push(&self, push: Push) -> bool {
        match self.tx.try_send(push) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether a push was dropped because the connection did not keep up.
    pub(crate) fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Relaxed)
    }
}

/// A QR ref waiting for a scan.
#[derive(Debug, Clone)]
pub(crate) struct RefEntry {
    pub(crate) client_id: String,
    pub(crate) browser: String,
    pub(crate) expires: Instant,
    pub(crate) outbox: Outbox,
}

#[derive(Debug)]
struct Online {
    number: String,
    outbox: Outbox,
}

#[derive(Debug, Default)]
struct Inner {
    devices: HashMap<DeviceKey, Online>,
    by_number: HashMap<String, HashSet<DeviceKey>>,
    refs: HashMap<String, RefEntry>,
    subs: HashMap<String, HashMap<ConnId, Outbox>>,
    subs_by_conn: HashMap<ConnId, HashSet<String>>,
    media_auth: HashMap<String, (String, Instant)>,
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    inner: Mutex<Inner>,
    next_conn: AtomicU64,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole registry would: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `device` of account `number` is online on `outbox`; returns the connection it
    /// replaces, if any.
    pub(crate) fn register(
        &self,
        device: &DeviceKey,
        number: &str,
        outbox: Outbox,
    ) -> Option<Outbox> {
        let mut inner = self.lock();
        inner
            .by_number
            .entry(number.to_owned())
            .or_default()
            .insert(device.clone());
        let new_id = outbox.id;
        let online = Online {
            number: number.to_owned(),
            outbox,
        };
        // Registering the same connection twice replaces nothing.
        inner
            .devices
            .insert(device.clone(), online)
            .map(|old| old.outbox)
            .filter(|old| old.id != new_id)
    }

    /// Connection `conn` of `device` went away (if it is still the registered one).
    pub(crate) fn unregister(&self, device: &DeviceKey, conn: ConnId) -> bool {
        let mut inner = self.lock();
        let current = inner.devices.get(device).map(|o| o.outbox.id);
        if current != Some(conn) {
            return false;
        }
        if let Some(online) = inner.devices.remove(device)
            && let Some(set) = inner.by_number.get_mut(&online.number)
        {
            set.remove(device);
            if set.is_empty() {
                inner.by_number.remove(&online.number);
            }
        }
        true
    }

    /// The outbox of an online device.
    pub(crate) fn outbox(&self, device: &DeviceKey) -> Option<Outbox> {
        self.lock().devices.get(device).map(|o| o.outbox.clone())
    }

    /// Whether a device is online.
    pub(crate) fn is_online(&self, device: &DeviceKey) -> bool {
        self.lock().devices.contains_key(device)
    }

    /// The online devices of an account.
    pub(crate) fn outboxes_of(&self, number: &str) -> Vec<(DeviceKey, Outbox)> {
        let inner = self.lock();
        let Some(devices) = inner.by_number.get(number) else {
            return Vec::new();
        };
        devices
            .iter()
            .filter_map(|d| inner.devices.get(d).map(|o| (d.clone(), o.outbox.clone())))
            .collect()
    }

    /// Pushes to every online device of an account (except `skip`); how many took it.
    pub(crate) fn push_account(
        &self,
        number: &str,
        skip: Option<&DeviceKey>,
        make: impl Fn() -> Push,
    ) -> usize {
        self.outboxes_of(number)
            .into_iter()
            .filter(|(d, _)| Some(d) != skip)
            .filter(|(_, o)| o.push(make()))
            .count()
    }

    /// Online connections: (web clients, phones).
    pub(crate) fn online_counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let phones = inner
            .devices
            .keys()
            .filter(|d| d.client_id().is_none())
            .count();
        (inner.devices.len() - phones, phones)
    }

    /// A new QR ref for a connection.
    pub(crate) fn add_ref(&self, r: &str, entry: RefEntry) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.refs.retain(|_, e| e.expires > now);
        inner.refs.insert(r.to_owned(), entry);
    }

    /// Forgets a ref.
    pub(crate) fn remove_ref(&self, r: &str) {
        self.lock().refs.remove(r);
    }

    /// Takes a ref that has not expired.
    pub(crate) fn take_ref(&self, r: &str) -> Option<RefEntry> {
        let entry = self.lock().refs.remove(r)?;
        (entry.expires > Instant::now()).then_some(entry)
    }

    /// `conn` subscribes to the presence of account `target`.
    pub(crate) fn subscribe(&self, target: &str, outbox: &Outbox) {
        let mut inner = self.lock();
        inner
            .subs
            .entry(target.to_owned())
            .or_default()
            .insert(outbox.id, outbox.clone());
        inner
            .subs_by_conn
            .entry(outbox.id)
            .or_default()
            .insert(target.to_owned());
    }

    /// The subscribers to an account's presence.
    pub(crate) fn subscribers(&self, target: &str) -> Vec<Outbox> {
        self.lock()
            .subs
            .get(target)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A connection closed: drops its subscriptions and refs.
    pub(crate) fn drop_conn(&self, conn: ConnId) {
        let mut inner = self.lock();
        if let Some(targets) = inner.subs_by_conn.remove(&conn) {
            for target in targets {
                if let Some(subs) = inner.subs.get_mut(&target) {
                    subs.remove(&conn);
                    if subs.is_empty() {
                        inner.subs.remove(&target);
                    }
                }
            }
        }
        inner.refs.retain(|_, e| e.outbox.id != conn);
    }

    /// Upload auth for account `number`, valid until `expires`.
    pub(crate) fn add_media_auth(&self, auth: &str, number: &str, expires: Instant) {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.media_auth.retain(|_, (_, e)| *e > now);
        inner
            .media_auth
            .insert(auth.to_owned(), (number.to_owned(), expires));
    }

    /// The account an upload auth belongs to, if it is valid.
    pub(crate) fn media_auth(&self, auth: &str) -> Option<String> {
        let inner = self.lock();
        let (number, expires) = inner.media_auth.get(auth)?;
        (*expires > Instant::now()).then(|| number.clone())
    }

    /// Every online outbox (for shutdown).
    pub(crate) fn all_outboxes(&self) -> Vec<Outbox> {
        let inner = self.lock();
        inner
            .devices
            .values()
            .map(|o| o.outbox.clone())
            .chain(inner.refs.values().map(|e| e.outbox.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_replace_unregister() {
        let hub = Hub::default();
        let d = DeviceKey::web("abc");
        let (a, _ra) = Outbox::new(1, 4);
        let (b, _rb) = Outbox::new(2, 4);
        assert!(hub.register(&d, "15550000001", a.clone()).is_none());
        assert!(hub.register(&d, "15550000001", a.clone()).is_none());
        assert_eq!(hub.register(&d, "15550000001", b).map(|o| o.id), Some(1));
        // The replaced connection leaving does not take the new one with it.
        assert!(!hub.unregister(&d, 1));
        assert!(hub.is_online(&d));
        assert_eq!(hub.outboxes_of("15550000001").len(), 1);
        assert!(hub.unregister(&d, 2));
        assert!(hub.outboxes_of("15550000001").is_empty());
    }

    #[test]
    fn a_full_outbox_marks_the_connection_lagged() {
        let (o, _rx) = Outbox::new(1, 1);
        assert!(o.push(Push::PhoneReachable(true)));
        assert!(!o.lagged());
        assert!(!o.push(Push::PhoneReachable(true)));
        assert!(o.lagged());
    }
}
