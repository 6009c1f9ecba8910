//! [`Machine`]: one device's end-to-end state (its account, its Olm sessions, its Megolm
//! sessions, the identities it has seen) and its persistence.
//!
//! The pairwise (Olm) operations are in `olm.rs`, the group (Megolm) ones in `group.rs`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use subtle::ConstantTimeEq;
use vodozemac::megolm::{GroupSession, InboundGroupSession};
use vodozemac::olm::{Account, Session};
use vodozemac::{Curve25519PublicKey, KeyId};
use wa_binary::Jid;

use crate::error::PickleError;
use crate::limits::{
    MAX_DEVICES, MAX_IDENTITIES, MAX_INBOUND_GROUP_SESSIONS, MAX_INBOUND_PER_SENDER,
    MAX_OUTBOUND_GROUPS, MAX_SESSIONS_PER_DEVICE, MAX_SHARED_DEVICES,
    MAX_UNPUBLISHED_ONE_TIME_KEYS,
};
use crate::replay::ReplayWindow;
use crate::store::{Changes, Item, Record, Sealer, StateKey};
use crate::types::{IdentityChange, IdentityKeys, OneTimeKey, PickleKey, Signature};
use crate::{canonical_device, user_of};

/// One Olm session with a remote device.
pub(crate) struct OlmEntry {
    pub(crate) id: String,
    pub(crate) session: Session,
    pub(crate) used: u64,
}

/// The sessions with one remote device, most recently used first, and the identity keys they
/// were made with (the Ed25519 key is unknown for sessions the other side started, until the
/// caller encrypts to the device with its full keys).
pub(crate) struct DeviceEntry {
    pub(crate) curve25519: [u8; 32],
    pub(crate) ed25519: Option<[u8; 32]>,
    pub(crate) sessions: Vec<OlmEntry>,
}

impl DeviceEntry {
    pub(crate) fn used(&self) -> u64 {
        self.sessions.iter().map(|s| s.used).max().unwrap_or(0)
    }
}

/// Our outbound Megolm session for one group.
pub(crate) struct OutboundEntry {
    pub(crate) session: GroupSession,
    pub(crate) shared_with: BTreeSet<Jid>,
    pub(crate) used: u64,
}

/// One inbound Megolm session.
pub(crate) struct InboundEntry {
    pub(crate) id: String,
    pub(crate) session: InboundGroupSession,
    pub(crate) window: ReplayWindow,
    pub(crate) used: u64,
}

/// A remembered phone identity.
pub(crate) struct IdentityEntry {
    pub(crate) ed25519: [u8; 32],
    pub(crate) used: u64,
}

/// The end-to-end state machine of one device.
///
/// It does no IO, reads no clock and draws no randomness of its own (vodozemac draws OS
/// randomness for the keys it makes). Its inputs are the caller's: keys claimed from the key
/// directory, ciphertexts received, group membership changes. Its outputs are ciphertexts, keys
/// to publish or share, and [`Changes`] to persist.
///
/// - **Keys**: [`identity_keys`](Self::identity_keys), one-time keys
///   ([`generate_one_time_keys`](Self::generate_one_time_keys),
///   [`mark_keys_as_published`](Self::mark_keys_as_published)), [`sign`](Self::sign).
/// - **Pairwise (Olm)**: [`encrypt`](Self::encrypt) / [`decrypt`](Self::decrypt), one
///   ciphertext per device.
/// - **Groups (Megolm)**: [`group_encrypt`](Self::group_encrypt) once per message,
///   [`group_key`](Self::group_key) to share over Olm with the devices not in
///   [`shared_with`](Self::shared_with), [`rotate_group`](Self::rotate_group) when membership
///   shrinks; [`add_group_key`](Self::add_group_key) and
///   [`group_decrypt`](Self::group_decrypt) on the receiving side.
/// - **Identities**: [`observe_identity`](Self::observe_identity) (trust on first use).
/// - **Persistence**: [`take_changes`](Self::take_changes) after each batch of operations,
///   [`restore`](Self::restore) at start-up.
///
/// `Debug` prints the own device and how many entries each map holds, never key material.
pub struct Machine {
    pub(crate) own: Jid,
    pub(crate) account: Account,
    pub(crate) devices: HashMap<Jid, DeviceEntry>,
    pub(crate) outbound: HashMap<Jid, OutboundEntry>,
    /// Keyed by (group, sender device); each list most recently used first.
    pub(crate) inbound: HashMap<(Jid, Jid), Vec<InboundEntry>>,
    pub(crate) inbound_count: usize,
    pub(crate) identities: HashMap<Jid, IdentityEntry>,
    /// The logical clock for least-recently-used eviction.
    pub(crate) tick: u64,
    /// What changed since the last `take_changes`.
    pub(crate) changed: BTreeSet<Item>,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("own_device", &format_args!("{}", self.own))
            .field("devices", &self.devices.len())
            .field(
                "olm_sessions",
                &self
                    .devices
                    .values()
                    .map(|d| d.sessions.len())
                    .sum::<usize>(),
            )
            .field("outbound_groups", &self.outbound.len())
            .field("inbound_group_sessions", &self.inbound_count)
            .field("identities", &self.identities.len())
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine for `own_device` with a fresh account (new identity keys, no one-time keys).
    ///
    /// A device number of 0 is the same as none (the phone).
    pub fn new(own_device: Jid) -> Machine {
        let mut machine = Machine::empty(canonical_device(&own_device), Account::new());
        machine.changed.insert(Item::Account);
        machine
    }

    fn empty(own: Jid, account: Account) -> Machine {
        Machine {
            own,
            account,
            devices: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            inbound_count: 0,
            identities: HashMap::new(),
            tick: 0,
            changed: BTreeSet::new(),
        }
    }

    /// Sets this machine's device, once it is known (a web client learns its device number
    /// when its link completes; until then the machine may already show its identity keys).
    pub fn set_own_device(&mut self, device: Jid) {
        self.own = canonical_device(&device);
    }

    /// This machine's device.
    pub fn own_device(&self) -> &Jid {
        &self.own
    }

    /// This device's public identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        IdentityKeys {
            curve25519: self.account.curve25519_key().to_bytes(),
            ed25519: *self.account.ed25519_key().as_bytes(),
        }
    }

    /// Signs `message` with this device's Ed25519 identity key (for example a
    /// [`device_attestation_message`](crate::device_attestation_message) on the phone).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.account.sign(message).to_bytes())
    }

    /// The next value of the logical clock.
    pub(crate) fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    // ----- one-time keys -----

    /// Generates up to `count` new one-time keys, keeping at most
    /// [`MAX_UNPUBLISHED_ONE_TIME_KEYS`] unpublished in total, and returns the new ones (in id
    /// order). Publish [`unpublished_one_time_keys`](Self::unpublished_one_time_keys), then call
    /// [`mark_keys_as_published`](Self::mark_keys_as_published) once the server confirmed.
    pub fn generate_one_time_keys(&mut self, count: usize) -> Vec<OneTimeKey> {
        let room = MAX_UNPUBLISHED_ONE_TIME_KEYS.saturating_sub(self.account.one_time_keys().len());
        let count = count.min(room);
        if count == 0 {
            return Vec::new();
        }
        let created: Vec<Curve25519PublicKey> = self.account.generate_one_time_keys(count).created;
        self.changed.insert(Item::Account);
        let mut keys: Vec<(KeyId, Curve25519PublicKey)> = self
            .account
            .one_time_keys()
            .into_iter()
            .filter(|(_, key)| created.contains(key))
            .collect();
        keys.sort_by_key(|(id, _)| *id);
        keys.into_iter().map(one_time_key).collect()
    }

    /// The one-time keys not yet marked published, in id order.
    pub fn unpublished_one_time_keys(&self) -> Vec<OneTimeKey> {
        let mut keys: Vec<(KeyId, Curve25519PublicKey)> =
            self.account.one_time_keys().into_iter().collect();
        keys.sort_by_key(|(id, _)| *id);
        keys.into_iter().map(one_time_key).collect()
    }

    /// The unpublished fallback key, generating a new one if there is none (the first time,
    /// and each time after the previous one was published). Senders use it when the directory
    /// has run out of one-time keys. The previous fallback key stays usable until the next
    /// rotation.
    pub fn fallback_key(&mut self) -> OneTimeKey {
        if self.account.fallback_key().is_empty() {
            self.account.generate_fallback_key();
            self.changed.insert(Item::Account);
        }
        match self.account.fallback_key().into_iter().next() {
            Some(key) => one_time_key(key),
            // vodozemac's `generate_fallback_key` always installs a new, unpublished key.
            None => unreachable!("vodozemac generated no fallback key"),
        }
    }

    /// Marks every unpublished one-time key and the fallback key as published. Call it only
    /// once the server confirmed the upload.
    pub fn mark_keys_as_published(&mut self) {
        self.account.mark_keys_as_published();
        self.changed.insert(Item::Account);
    }

    // ----- identities -----

    /// Records the Ed25519 identity key of `user`'s phone (trust on first use): the first key
    /// seen is remembered; a different key later is reported as [`IdentityChange::Changed`]
    /// and replaces it. The device part of `user` is ignored. Keys compare in constant time.
    pub fn observe_identity(&mut self, user: &Jid, phone_ed25519: &[u8; 32]) -> IdentityChange {
        let user = user_of(user);
        let tick = self.next_tick();
        if let Some(entry) = self.identities.get_mut(&user) {
            entry.used = tick;
            if bool::from(entry.ed25519.ct_eq(phone_ed25519)) {
                return IdentityChange::Same;
            }
            let previous = entry.ed25519;
            entry.ed25519 = *phone_ed25519;
            self.changed.insert(Item::Identity { user });
            return IdentityChange::Changed { previous };
        }
        self.identities.insert(
            user.clone(),
            IdentityEntry {
                ed25519: *phone_ed25519,
                used: tick,
            },
        );
        self.changed.insert(Item::Identity { user: user.clone() });
        self.evict_identities(Some(&user));
        IdentityChange::New
    }

    /// The remembered identity key of `user`'s phone, if any.
    pub fn known_identity(&self, user: &Jid) -> Option<[u8; 32]> {
        self.identities.get(&user_of(user)).map(|e| e.ed25519)
    }

    // ----- eviction -----

    pub(crate) fn evict_identities(&mut self, keep: Option<&Jid>) {
        while self.identities.len() > MAX_IDENTITIES {
            let Some(oldest) = self
                .identities
                .iter()
                .filter(|(user, _)| Some(*user) != keep)
                .min_by_key(|(_, e)| e.used)
                .map(|(user, _)| user.clone())
            else {
                break;
            };
            self.identities.remove(&oldest);
            self.changed.insert(Item::Identity { user: oldest });
        }
    }

    /// Drops all sessions of `device`.
    pub(crate) fn forget_device(&mut self, device: &Jid) {
        if let Some(entry) = self.devices.remove(device) {
            for s in entry.sessions {
                self.changed.insert(Item::Session {
                    device: device.clone(),
                    id: s.id,
                });
            }
        }
    }

    pub(crate) fn evict_devices(&mut self, keep: Option<&Jid>) {
        while self.devices.len() > MAX_DEVICES {
            let Some(oldest) = self
                .devices
                .iter()
                .filter(|(device, _)| Some(*device) != keep)
                .min_by_key(|(_, e)| e.used())
                .map(|(device, _)| device.clone())
            else {
                break;
            };
            self.forget_device(&oldest);
        }
    }

    /// Keeps the `MAX_SESSIONS_PER_DEVICE` most recently used sessions of `device`.
    pub(crate) fn trim_sessions(&mut self, device: &Jid) {
        if let Some(entry) = self.devices.get_mut(device) {
            entry.sessions.sort_by_key(|e| std::cmp::Reverse(e.used));
            while entry.sessions.len() > MAX_SESSIONS_PER_DEVICE {
                if let Some(old) = entry.sessions.pop() {
                    self.changed.insert(Item::Session {
                        device: device.clone(),
                        id: old.id,
                    });
                }
            }
        }
    }

    pub(crate) fn evict_outbound(&mut self, keep: Option<&Jid>) {
        while self.outbound.len() > MAX_OUTBOUND_GROUPS {
            let Some(oldest) = self
                .outbound
                .iter()
                .filter(|(group, _)| Some(*group) != keep)
                .min_by_key(|(_, e)| e.used)
                .map(|(group, _)| group.clone())
            else {
                break;
            };
            self.outbound.remove(&oldest);
            self.changed.insert(Item::Outbound { group: oldest });
        }
    }

    /// Keeps at most `MAX_INBOUND_PER_SENDER` sessions for (group, sender) and at most
    /// `MAX_INBOUND_GROUP_SESSIONS` overall, dropping the least recently used.
    pub(crate) fn evict_inbound(&mut self, slot: Option<&(Jid, Jid)>) {
        if let Some(slot) = slot
            && let Some(list) = self.inbound.get_mut(slot)
        {
            list.sort_by_key(|e| std::cmp::Reverse(e.used));
            while list.len() > MAX_INBOUND_PER_SENDER {
                if let Some(old) = list.pop() {
                    self.inbound_count -= 1;
                    self.changed.insert(Item::Inbound {
                        group: slot.0.clone(),
                        sender: slot.1.clone(),
                        id: old.id,
                    });
                }
            }
        }
        while self.inbound_count > MAX_INBOUND_GROUP_SESSIONS {
            // Each list is sorted most recently used first, so its last entry is its oldest.
            let Some(slot) = self
                .inbound
                .iter()
                .filter_map(|(slot, list)| list.last().map(|e| (slot, e.used)))
                .min_by_key(|(_, used)| *used)
                .map(|(slot, _)| slot.clone())
            else {
                break;
            };
            let Some(list) = self.inbound.get_mut(&slot) else {
                break;
            };
            if let Some(old) = list.pop() {
                self.inbound_count -= 1;
                self.changed.insert(Item::Inbound {
                    group: slot.0.clone(),
                    sender: slot.1.clone(),
                    id: old.id,
                });
            }
            if list.is_empty() {
                self.inbound.remove(&slot);
            }
        }
    }

    // ----- persistence -----

    /// Seals everything that changed since the last call: records to write and keys to delete.
    /// A second call with no activity in between returns nothing.
    ///
    /// Sealing is deterministic (see the crate docs for the envelope).
    pub fn take_changes(&mut self, pickle_key: &PickleKey) -> Changes {
        let sealer = Sealer::new(pickle_key);
        let mut changes = Changes::default();
        let mut unsealed = BTreeSet::new();
        for item in std::mem::take(&mut self.changed) {
            let key = item.state_key();
            match self.record(&item) {
                Some(record) => match sealer.seal(&key, &record) {
                    Some(bytes) => changes.upserts.push((key, bytes)),
                    // Cannot happen (see `Sealer::seal`); if it did, try again next time
                    // rather than lose the change.
                    None => {
                        unsealed.insert(item);
                    }
                },
                None => changes.deletions.push(key),
            }
        }
        self.changed = unsealed;
        changes
    }

    /// The record of `item` as it is now, or `None` if it no longer exists.
    fn record(&self, item: &Item) -> Option<Record> {
        match item {
            Item::Account => Some(Record::Account {
                device: self.own.clone(),
                account: Box::new(self.account.pickle()),
            }),
            Item::Session { device, id } => {
                let entry = self.devices.get(device)?;
                let s = entry.sessions.iter().find(|s| &s.id == id)?;
                Some(Record::Session {
                    device: device.clone(),
                    curve25519: entry.curve25519,
                    ed25519: entry.ed25519,
                    used: s.used,
                    session: Box::new(s.session.pickle()),
                })
            }
            Item::Outbound { group } => {
                let entry = self.outbound.get(group)?;
                Some(Record::Outbound {
                    group: group.clone(),
                    used: entry.used,
                    shared_with: entry.shared_with.iter().cloned().collect(),
                    session: entry.session.pickle(),
                })
            }
            Item::Inbound { group, sender, id } => {
                let list = self.inbound.get(&(group.clone(), sender.clone()))?;
                let e = list.iter().find(|e| &e.id == id)?;
                Some(Record::Inbound {
                    group: group.clone(),
                    sender: sender.clone(),
                    used: e.used,
                    window: e.window.clone(),
                    session: e.session.pickle(),
                })
            }
            Item::Identity { user } => {
                let e = self.identities.get(user)?;
                Some(Record::Identity {
                    user: user.clone(),
                    ed25519: e.ed25519,
                    used: e.used,
                })
            }
        }
    }

    /// Rebuilds a machine from the records [`take_changes`](Self::take_changes) produced (the
    /// caller's store, after applying every upsert and deletion).
    ///
    /// Every record is authenticated and must name itself under the key it is given. Bounds are
    /// enforced after loading; what they evict is deleted at the next `take_changes`.
    ///
    /// # Errors
    /// [`PickleError`]: a wrong pickle key or corrupted bytes ([`PickleError::Authentication`]),
    /// an unknown envelope version, a malformed record, a key given twice, no account, or an
    /// account of another device.
    pub fn restore(
        own_device: Jid,
        parts: impl IntoIterator<Item = (StateKey, Vec<u8>)>,
        pickle_key: &PickleKey,
    ) -> Result<Machine, PickleError> {
        let own = canonical_device(&own_device);
        let sealer = Sealer::new(pickle_key);
        let mut seen = BTreeSet::new();
        let mut account = None;
        let mut loaded = Vec::new();
        for (key, bytes) in parts {
            if !seen.insert(key.clone()) {
                return Err(PickleError::Duplicate {
                    key: key.as_str().to_owned(),
                });
            }
            let part = Loaded::from(sealer.open(&key, &bytes)?);
            // The envelope already binds the key; this checks that the record agrees with it.
            let item = part.item();
            if item.state_key() != key {
                return Err(PickleError::Malformed {
                    key: key.as_str().to_owned(),
                    message: format!("the record is {}", item.state_key()),
                });
            }
            match part {
                Loaded::Account { device, account: a } => {
                    if device != own {
                        return Err(PickleError::WrongDevice {
                            expected: own,
                            found: device,
                        });
                    }
                    account = Some(*a);
                }
                other => loaded.push(other),
            }
        }
        let account = account.ok_or(PickleError::MissingAccount)?;
        let mut machine = Machine::empty(own, account);
        for part in loaded {
            machine.load(part);
        }
        let devices: Vec<Jid> = machine.devices.keys().cloned().collect();
        for device in &devices {
            machine.trim_sessions(device);
        }
        machine.evict_devices(None);
        machine.evict_outbound(None);
        let slots: Vec<(Jid, Jid)> = machine.inbound.keys().cloned().collect();
        for slot in &slots {
            machine.evict_inbound(Some(slot));
        }
        machine.evict_identities(None);
        Ok(machine)
    }

    /// Adds one restored piece of state (bounds are enforced afterwards).
    fn load(&mut self, part: Loaded) {
        match part {
            // Handled by `restore`.
            Loaded::Account { .. } => {}
            Loaded::Session {
                device,
                curve25519,
                ed25519,
                entry,
            } => {
                self.tick = self.tick.max(entry.used);
                let device_entry =
                    self.devices
                        .entry(device.clone())
                        .or_insert_with(|| DeviceEntry {
                            curve25519,
                            ed25519,
                            sessions: Vec::new(),
                        });
                if device_entry.curve25519 != curve25519 {
                    // Sessions with two identities of one device: only the most recently used
                    // identity is current (the other's sessions would have been dropped).
                    if entry.used > device_entry.used() {
                        for s in std::mem::take(&mut device_entry.sessions) {
                            self.changed.insert(Item::Session {
                                device: device.clone(),
                                id: s.id,
                            });
                        }
                        device_entry.curve25519 = curve25519;
                        device_entry.ed25519 = ed25519;
                    } else {
                        self.changed.insert(Item::Session {
                            device,
                            id: entry.id,
                        });
                        return;
                    }
                }
                device_entry.sessions.push(*entry);
            }
            Loaded::Outbound { group, entry } => {
                self.tick = self.tick.max(entry.used);
                self.outbound.insert(group, entry);
            }
            Loaded::Inbound {
                group,
                sender,
                entry,
            } => {
                self.tick = self.tick.max(entry.used);
                self.inbound.entry((group, sender)).or_default().push(entry);
                self.inbound_count += 1;
            }
            Loaded::Identity { user, entry } => {
                self.tick = self.tick.max(entry.used);
                self.identities.insert(user, entry);
            }
        }
    }
}

/// A restored record, unpickled into live vodozemac objects.
enum Loaded {
    Account {
        device: Jid,
        account: Box<Account>,
    },
    Session {
        device: Jid,
        curve25519: [u8; 32],
        ed25519: Option<[u8; 32]>,
        entry: Box<OlmEntry>,
    },
    Outbound {
        group: Jid,
        entry: OutboundEntry,
    },
    Inbound {
        group: Jid,
        sender: Jid,
        entry: InboundEntry,
    },
    Identity {
        user: Jid,
        entry: IdentityEntry,
    },
}

impl From<Record> for Loaded {
    fn from(record: Record) -> Loaded {
        match record {
            Record::Account { device, account } => Loaded::Account {
                device,
                account: Box::new(Account::from_pickle(*account)),
            },
            Record::Session {
                device,
                curve25519,
                ed25519,
                used,
                session,
            } => {
                let session = Session::from_pickle(*session);
                Loaded::Session {
                    device,
                    curve25519,
                    ed25519,
                    entry: Box::new(OlmEntry {
                        id: session.session_id(),
                        session,
                        used,
                    }),
                }
            }
            Record::Outbound {
                group,
                used,
                shared_with,
                session,
            } => Loaded::Outbound {
                group,
                entry: OutboundEntry {
                    session: GroupSession::from_pickle(session),
                    shared_with: shared_with.into_iter().take(MAX_SHARED_DEVICES).collect(),
                    used,
                },
            },
            Record::Inbound {
                group,
                sender,
                used,
                window,
                session,
            } => {
                let session = InboundGroupSession::from_pickle(session);
                Loaded::Inbound {
                    group,
                    sender,
                    entry: InboundEntry {
                        id: session.session_id(),
                        session,
                        window,
                        used,
                    },
                }
            }
            Record::Identity {
                user,
                ed25519,
                used,
            } => Loaded::Identity {
                user,
                entry: IdentityEntry { ed25519, used },
            },
        }
    }
}

impl Loaded {
    fn item(&self) -> Item {
        match self {
            Loaded::Account { .. } => Item::Account,
            Loaded::Session { device, entry, .. } => Item::Session {
                device: device.clone(),
                id: entry.id.clone(),
            },
            Loaded::Outbound { group, .. } => Item::Outbound {
                group: group.clone(),
            },
            Loaded::Inbound {
                group,
                sender,
                entry,
            } => Item::Inbound {
                group: group.clone(),
                sender: sender.clone(),
                id: entry.id.clone(),
            },
            Loaded::Identity { user, .. } => Item::Identity { user: user.clone() },
        }
    }
}

fn one_time_key((id, key): (KeyId, Curve25519PublicKey)) -> OneTimeKey {
    OneTimeKey {
        id: id.to_base64(),
        key: key.to_bytes(),
    }
}
