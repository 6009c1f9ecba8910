//! A messaging endpoint over the wire vocabulary: what a device must do around the
//! [`Machine`] to send and receive end-to-end encrypted messages, independent of the socket.
//!
//! The endpoint decides; its transport (the web session, or the phone) fetches and sends.
//! [`Endpoint::send`] queues a message; [`Endpoint::poll_need`] says what the transport must do
//! next ([`Need`]: fetch device lists, claim pre-keys, fetch a group's members, upload keys,
//! relay a message), and the transport feeds the answers back (`handle_*`). Incoming messages go
//! in with [`Endpoint::receive`]; what comes out is [`EndpointEvent`]s.
//!
//! Trust: a user's phone (device 0) is the account's identity; its Ed25519 key is pinned on
//! first use ([`Machine::observe_identity`]) and a change is reported. A linked device is used
//! (encrypted for, and believed as a sender) only when the phone's signature over its identity
//! keys verifies ([`wa_wire::keys::attestation_message`]). A server that lists a device nobody
//! vouched for gets no ciphertext for it, and messages claiming to come from it are refused.
//!
//! Every queue and cache here is bounded (see [`limits`](crate::limits)).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use wa_proto::prost::Message as _;
use wa_proto::wars::{Envelope, GroupKey as WireGroupKey};
use wa_wire::Jid;
use wa_wire::ids::{Chat, device_of, user_of};
use wa_wire::json::RelayReply;
use wa_wire::keys::{Claimed, DeviceInfo, DeviceList, IdentityKeys, KeyUpload, attestation_message};
use wa_wire::msg::{ContentKind, GroupNotice, GroupOp, Incoming, Notification, OlmPayload, OlmType, Relay, RelayTarget};
use zeroize::Zeroizing;

use crate::{
    Changes, DecryptError, GroupCiphertext, GroupKey, IdentityChange, Machine, OlmCiphertext, OlmKind, PickleKey,
    verify_signature,
};

/// Messages waiting to be sent, at most.
pub const MAX_OUTBOX: usize = 1024;
/// Incoming messages held until their sender's device is verified, at most.
pub const MAX_HELD: usize = 1024;
/// Users whose verified device lists are kept, at most.
pub const MAX_LISTS: usize = 4096;
/// Groups whose members are kept, at most.
pub const MAX_GROUPS: usize = 1024;
/// Attempts at one message before it fails (the server answered 409 each time).
pub const MAX_ATTEMPTS: u32 = 3;
/// One-time keys kept published.
pub const ONE_TIME_KEYS: usize = 50;

/// Something the transport must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Need {
    /// Fetch these users' device lists; answer with [`Endpoint::handle_device_lists`].
    DeviceLists(Vec<Jid>),
    /// Claim a one-time key of each of these devices; answer with [`Endpoint::handle_prekeys`].
    PreKeys(Vec<Jid>),
    /// Fetch a group's members; answer with [`Endpoint::handle_group_members`].
    GroupMembers(Jid),
    /// Publish key material; answer with [`Endpoint::handle_keys_uploaded`].
    UploadKeys(KeyUpload),
    /// Relay this message (the tag is its id); answer with [`Endpoint::handle_relay_reply`].
    Relay(Relay),
}

/// Which kind of [`Need`] failed (the transport could not get an answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeedKind {
    /// A device list fetch.
    DeviceLists,
    /// A pre-key claim.
    PreKeys,
    /// A group member fetch.
    GroupMembers,
    /// A key upload.
    UploadKeys,
    /// A relay (it stays queued and goes again on [`Endpoint::connected`]).
    Relay,
}

/// A message that was decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The sending device.
    pub from: Jid,
    /// The chat as this device sees it: the other user, or the group.
    pub chat: Jid,
    /// Sent by this account (from another of its devices).
    pub from_me: bool,
    /// The message id.
    pub id: String,
    /// When the server stored it (Unix seconds).
    pub t: u64,
    /// What the sender said it carries.
    pub kind: ContentKind,
    /// The plaintext.
    pub envelope: Envelope,
}

/// What the endpoint tells its user.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// A message arrived and decrypted.
    Message(Box<Received>),
    /// A message arrived that could not be decrypted (tampered, replayed, from an unverified
    /// device, ...): nothing of it is shown.
    Undecryptable {
        /// The sending device.
        from: Jid,
        /// The message id.
        id: String,
        /// Why.
        error: String,
    },
    /// The server stored a message (ack 1).
    Sent {
        /// Its id.
        id: String,
        /// The server's timestamp.
        t: u64,
    },
    /// A message could not be sent.
    SendFailed {
        /// Its id.
        id: String,
        /// Why.
        error: String,
    },
    /// A user's identity (their phone's key, so their security code) changed.
    IdentityChanged {
        /// The user.
        user: Jid,
    },
    /// The key directory holds this many one-time keys for this device.
    KeysPublished {
        /// How many.
        count: u32,
    },
}

/// Why [`Endpoint::send`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Too many messages wait already.
    #[error("{0} messages are waiting to be sent")]
    Busy(usize),
    /// The recipient is neither a user nor a group.
    #[error("not a chat: {0}")]
    BadRecipient(String),
}

#[derive(Debug, Clone)]
struct Outgoing {
    to: Chat,
    id: String,
    kind: ContentKind,
    plaintext: Zeroizing<Vec<u8>>,
    attempts: u32,
}

#[derive(Debug, Clone)]
struct InFlight {
    outgoing: Outgoing,
    /// Group: the devices given the group key in this relay.
    keyed: Vec<Jid>,
}

/// A user's devices that verified, with the devices that did not.
#[derive(Debug, Clone, Default)]
struct Verified {
    devices: Vec<DeviceInfo>,
    refused: BTreeSet<Jid>,
}

/// The messaging endpoint of one device.
pub struct Endpoint {
    machine: Machine,
    own_user: Jid,
    lists: HashMap<Jid, Verified>,
    groups: HashMap<Jid, Vec<Jid>>,
    outbox: VecDeque<Outgoing>,
    in_flight: HashMap<String, InFlight>,
    held: VecDeque<Incoming>,
    claimed: HashMap<Jid, [u8; 32]>,
    asked_lists: HashSet<Jid>,
    asked_groups: HashSet<Jid>,
    asked_keys: HashSet<Jid>,
    uploading: bool,
    needs: VecDeque<Need>,
    events: VecDeque<EndpointEvent>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("device", self.machine.own_device())
            .field("outbox", &self.outbox.len())
            .field("in_flight", &self.in_flight.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint around `machine`.
    pub fn new(machine: Machine) -> Endpoint {
        let own_user = user_of(machine.own_device());
        Endpoint {
            machine,
            own_user,
            lists: HashMap::new(),
            groups: HashMap::new(),
            outbox: VecDeque::new(),
            in_flight: HashMap::new(),
            held: VecDeque::new(),
            claimed: HashMap::new(),
            asked_lists: HashSet::new(),
            asked_groups: HashSet::new(),
            asked_keys: HashSet::new(),
            uploading: false,
            needs: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The cryptographic state.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Sets this device's address once it is known (a web client learns its device number when
    /// its link completes).
    pub fn set_own_device(&mut self, device: Jid) {
        self.own_user = user_of(&device);
        self.machine.set_own_device(device);
    }

    /// Whether needs or events wait to be polled.
    pub fn has_work(&self) -> bool {
        !self.needs.is_empty() || !self.events.is_empty()
    }

    /// This device's identity keys.
    pub fn identity_keys(&self) -> IdentityKeys {
        self.machine.identity_keys()
    }

    /// What the transport must do next.
    pub fn poll_need(&mut self) -> Option<Need> {
        self.needs.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// Encrypted pickles of what changed since the last call, to persist.
    pub fn take_changes(&mut self, key: &PickleKey) -> Changes {
        self.machine.take_changes(key)
    }

    /// The transport is (again) connected: publish keys if this device has unpublished ones or
    /// none yet, and go on with whatever waits.
    pub fn connected(&mut self) {
        self.uploading = false;
        self.asked_lists.clear();
        self.asked_groups.clear();
        self.asked_keys.clear();
        // What was in flight did not get its answer: send it again (the server drops a second
        // copy by its id).
        let mut again: Vec<Outgoing> = self.in_flight.drain().map(|(_, f)| f.outgoing).collect();
        again.sort_by(|a, b| a.id.cmp(&b.id));
        for outgoing in again.into_iter().rev() {
            self.outbox.push_front(outgoing);
        }
        self.upload_keys(ONE_TIME_KEYS);
        // The account's own devices (and its phone's identity, for security codes): known from
        // the start.
        let own = self.own_user.clone();
        if wa_wire::ids::number_of(&own).is_some() && self.asked_lists.insert(own.clone()) {
            self.lists.remove(&own);
            self.needs.push_back(Need::DeviceLists(vec![own]));
        }
        self.pump();
    }

    fn upload_keys(&mut self, count: usize) {
        if self.uploading {
            return;
        }
        let mut keys = self.machine.unpublished_one_time_keys();
        if keys.len() < count {
            keys.extend(self.machine.generate_one_time_keys(count - keys.len()));
        }
        let fallback = self.machine.fallback_key();
        self.uploading = true;
        self.needs.push_back(Need::UploadKeys(KeyUpload {
            identity: self.machine.identity_keys(),
            one_time_keys: keys,
            fallback: Some(fallback),
        }));
    }

    /// The keys were published: the directory holds `count` one-time keys for this device.
    pub fn handle_keys_uploaded(&mut self, count: u32) {
        self.uploading = false;
        self.machine.mark_keys_as_published();
        self.events.push_back(EndpointEvent::KeysPublished { count });
    }

    /// A [`Need`] could not be answered (timeout, disconnect, refusal): what waited on it fails
    /// (messages fail with an error, held messages are dropped with an error).
    pub fn handle_failed(&mut self, kind: NeedKind, why: &str) {
        match kind {
            NeedKind::UploadKeys => self.uploading = false,
            NeedKind::Relay => {}
            NeedKind::DeviceLists | NeedKind::PreKeys | NeedKind::GroupMembers => {
                self.asked_lists.clear();
                self.asked_keys.clear();
                self.asked_groups.clear();
                if let Some(head) = self.outbox.pop_front() {
                    self.events.push_back(EndpointEvent::SendFailed {
                        id: head.id,
                        error: why.to_owned(),
                    });
                }
                if kind == NeedKind::DeviceLists {
                    for incoming in std::mem::take(&mut self.held) {
                        self.events.push_back(EndpointEvent::Undecryptable {
                            from: incoming.from,
                            id: incoming.id,
                            error: format!("the sender's keys could not be fetched: {why}"),
                        });
                    }
                }
                self.pump();
            }
        }
    }

    // ---- Sending ------------------------------------------------------------------------------

    /// Queues a message for `to` (a user or a group), to be encrypted for every device of the
    /// recipient(s) and this account's other devices.
    ///
    /// # Errors
    /// When too many messages wait, or `to` is not a chat.
    pub fn send(&mut self, to: &Jid, id: String, kind: ContentKind, envelope: &Envelope) -> Result<(), SendError> {
        if self.outbox.len() + self.in_flight.len() >= MAX_OUTBOX {
            return Err(SendError::Busy(self.outbox.len() + self.in_flight.len()));
        }
        let to = Chat::from_jid(to).map_err(|e| SendError::BadRecipient(e.to_string()))?;
        self.outbox.push_back(Outgoing {
            to,
            id,
            kind,
            plaintext: Zeroizing::new(envelope.encode_to_vec()),
            attempts: 0,
        });
        self.pump();
        Ok(())
    }

    /// Sends what can be sent, in order, until a message waits for an answer.
    fn pump(&mut self) {
        while let Some(head) = self.outbox.front().cloned() {
            match self.prepare(&head) {
                Step::Wait => break,
                Step::Fail(error) => {
                    self.outbox.pop_front();
                    self.events.push_back(EndpointEvent::SendFailed { id: head.id, error });
                }
                Step::Send(relay, keyed) => {
                    self.outbox.pop_front();
                    self.in_flight.insert(head.id.clone(), InFlight { outgoing: head, keyed });
                    self.needs.push_back(Need::Relay(relay));
                }
            }
        }
    }

    fn prepare(&mut self, out: &Outgoing) -> Step {
        // Who it is for.
        let mut users = vec![self.own_user.clone()];
        match &out.to {
            Chat::User(user) => users.push(user.clone()),
            Chat::Group(gid) => match self.groups.get(gid) {
                Some(members) => users.extend(members.iter().cloned()),
                None => {
                    if self.asked_groups.insert(gid.clone()) {
                        self.needs.push_back(Need::GroupMembers(gid.clone()));
                    }
                    return Step::Wait;
                }
            },
        }
        users.sort();
        users.dedup();
        let unknown: Vec<Jid> = users
            .iter()
            .filter(|u| !self.lists.contains_key(*u))
            .filter(|u| !self.asked_lists.contains(*u))
            .cloned()
            .collect();
        if users.iter().any(|u| !self.lists.contains_key(u)) {
            if !unknown.is_empty() {
                self.asked_lists.extend(unknown.iter().cloned());
                self.needs.push_back(Need::DeviceLists(unknown));
            }
            return Step::Wait;
        }
        if let Chat::User(user) = &out.to
            && self.lists.get(user).is_some_and(|l| l.devices.is_empty())
        {
            return Step::Fail(format!("{user} has no account (or no device anyone vouched for)"));
        }
        let own = self.machine.own_device().clone();
        let targets: Vec<DeviceInfo> = users
            .iter()
            .filter_map(|u| self.lists.get(u))
            .flat_map(|l| l.devices.iter().cloned())
            .filter(|d| d.device != own)
            .collect();
        // Which devices get an Olm ciphertext: all of them for a message between two users; for a
        // group, those that lack the current group key.
        let group = match &out.to {
            Chat::Group(gid) => {
                let current: BTreeSet<Jid> = targets.iter().map(|d| d.device.clone()).collect();
                // A device that had the key and is gone (removed member, unlinked device) must
                // not read what follows: a new session.
                if !self.machine.shared_with(gid).is_subset(&current) {
                    self.machine.rotate_group(gid);
                }
                Some(gid.clone())
            }
            Chat::User(_) => None,
        };
        let shared = group.as_ref().map(|g| self.machine.shared_with(g)).unwrap_or_default();
        let needs_olm: Vec<&DeviceInfo> = targets
            .iter()
            .filter(|d| group.is_none() || !shared.contains(&d.device))
            .collect();
        let no_session: Vec<Jid> = needs_olm
            .iter()
            .filter(|d| !self.machine.has_session_with(&d.device, &d.identity) && !self.claimed.contains_key(&d.device))
            .map(|d| d.device.clone())
            .collect();
        if !no_session.is_empty() {
            let ask: Vec<Jid> = no_session.iter().filter(|d| !self.asked_keys.contains(*d)).cloned().collect();
            if ask.is_empty() {
                return Step::Wait;
            }
            self.asked_keys.extend(ask.iter().cloned());
            self.needs.push_back(Need::PreKeys(ask));
            return Step::Wait;
        }
        // Everything is known: encrypt.
        let (group_body, olm_plaintext) = match &group {
            Some(gid) => {
                // The key goes first, exported at the index the message will use.
                let key = self.machine.group_key_or_new(gid);
                let body = self.machine.group_encrypt(gid, &out.plaintext);
                let envelope = Envelope {
                    group_key: Some(WireGroupKey {
                        group: Some(gid.to_string()),
                        session_id: Some(key.session_id.clone()),
                        key: Some(key.key.to_vec()),
                    }),
                    ..Default::default()
                };
                (Some(body.0), Zeroizing::new(envelope.encode_to_vec()))
            }
            None => (None, out.plaintext.clone()),
        };
        let mut relay_targets = Vec::with_capacity(targets.len());
        let mut keyed = Vec::new();
        for device in &targets {
            let give = group.is_none() || !shared.contains(&device.device);
            let olm = if give {
                let otk = self.claimed.remove(&device.device);
                match self.machine.encrypt(&device.device, &device.identity, otk.as_ref(), &olm_plaintext) {
                    Ok(ciphertext) => {
                        keyed.push(device.device.clone());
                        Some(olm_payload(&ciphertext))
                    }
                    Err(e) => return Step::Fail(format!("encrypting for {}: {e}", device.device)),
                }
            } else {
                None
            };
            relay_targets.push(RelayTarget {
                device: device.device.clone(),
                olm,
            });
        }
        let relay = Relay {
            to: out.to.jid().clone(),
            id: out.id.clone(),
            kind: out.kind.clone(),
            group: group_body,
            targets: relay_targets,
        };
        Step::Send(relay, keyed)
    }

    /// The server's answer to a relay.
    pub fn handle_relay_reply(&mut self, id: &str, reply: RelayReply) {
        let Some(flight) = self.in_flight.remove(id) else { return };
        match reply {
            RelayReply::Stored { t } => {
                if let Chat::Group(gid) = &flight.outgoing.to {
                    self.machine.mark_shared(gid, flight.keyed);
                }
                self.events.push_back(EndpointEvent::Sent { id: id.to_owned(), t });
            }
            RelayReply::Mismatch { missing, extra } => {
                let refused: Vec<&Jid> = missing
                    .iter()
                    .filter(|d| self.lists.get(&user_of(d)).is_some_and(|l| l.refused.contains(*d)))
                    .collect();
                let mut outgoing = flight.outgoing;
                outgoing.attempts += 1;
                if let Some(device) = refused.first() {
                    self.events.push_back(EndpointEvent::SendFailed {
                        id: id.to_owned(),
                        error: format!("the server wants a ciphertext for {device}, which its account's phone did not vouch for"),
                    });
                } else if outgoing.attempts >= MAX_ATTEMPTS {
                    self.events.push_back(EndpointEvent::SendFailed {
                        id: id.to_owned(),
                        error: "the recipients' devices kept changing".to_owned(),
                    });
                } else {
                    for device in missing.iter().chain(&extra) {
                        self.lists.remove(&user_of(device));
                    }
                    if let Chat::Group(gid) = &outgoing.to {
                        self.groups.remove(gid);
                    }
                    self.outbox.push_front(outgoing);
                }
            }
            RelayReply::Refused { status, reason } => {
                self.events.push_back(EndpointEvent::SendFailed {
                    id: id.to_owned(),
                    error: format!("refused ({status}): {reason}"),
                });
            }
        }
        self.pump();
    }

    /// Device lists arrived: verify them (the phone pinned on first use, linked devices by the
    /// phone's signature) and go on.
    pub fn handle_device_lists(&mut self, lists: Vec<DeviceList>) {
        for list in lists {
            let user = user_of(&list.user);
            self.asked_lists.remove(&user);
            let verified = self.verify(&user, &list);
            if self.lists.len() >= MAX_LISTS && !self.lists.contains_key(&user) {
                // Forget one at random (HashMap order): it is fetched again when needed.
                if let Some(k) = self.lists.keys().next().cloned() {
                    self.lists.remove(&k);
                }
            }
            self.lists.insert(user, verified);
        }
        self.release_held();
        self.pump();
    }

    fn verify(&mut self, user: &Jid, list: &DeviceList) -> Verified {
        let mut out = Verified::default();
        let Some(phone) = list.devices.iter().find(|d| device_of(&d.device) == 0) else {
            out.refused.extend(list.devices.iter().map(|d| d.device.clone()));
            return out;
        };
        let phone_ed = phone.identity.ed25519;
        if let IdentityChange::Changed { .. } = self.machine.observe_identity(user, &phone_ed) {
            self.events.push_back(EndpointEvent::IdentityChanged { user: user.clone() });
        }
        for device in &list.devices {
            if user_of(&device.device) != *user {
                out.refused.insert(device.device.clone());
                continue;
            }
            if device_of(&device.device) == 0 {
                out.devices.push(device.clone());
                continue;
            }
            let vouched = device.attestation.is_some_and(|sig| {
                let message = attestation_message(user, &device.identity);
                verify_signature(&phone_ed, &message, &sig).is_ok()
            });
            if vouched {
                out.devices.push(device.clone());
            } else {
                out.refused.insert(device.device.clone());
            }
        }
        out
    }

    /// Claimed pre-keys arrived.
    pub fn handle_prekeys(&mut self, claimed: Vec<Claimed>) {
        for answer in claimed {
            let device = answer.device().clone();
            self.asked_keys.remove(&device);
            match answer {
                Claimed::Bundle(bundle) => {
                    // Only for the identity the device list vouched for.
                    let expected = self
                        .lists
                        .get(&user_of(&device))
                        .and_then(|l| l.devices.iter().find(|d| d.device == device))
                        .map(|d| d.identity);
                    if expected == Some(bundle.identity) {
                        self.claimed.insert(device, bundle.one_time_key.key);
                    }
                }
                Claimed::Missing { .. } => {
                    // A device without keys cannot be written to: fetch its user's list again,
                    // in case it is gone.
                    self.lists.remove(&user_of(&device));
                }
            }
        }
        if self.claimed.len() > MAX_LISTS {
            self.claimed.clear();
        }
        self.pump();
    }

    /// A group's members arrived (`None`: the group is unknown or this account is not in it).
    pub fn handle_group_members(&mut self, group: &Jid, members: Option<Vec<Jid>>) {
        self.asked_groups.remove(group);
        match members {
            Some(members) => {
                if self.groups.len() >= MAX_GROUPS
                    && let Some(k) = self.groups.keys().next().cloned()
                {
                    self.groups.remove(&k);
                }
                self.groups.insert(group.clone(), members.iter().map(user_of).collect());
            }
            None => {
                let failed: Vec<Outgoing> = self.outbox.iter().filter(|o| o.to.jid() == group).cloned().collect();
                self.outbox.retain(|o| o.to.jid() != group);
                for o in failed {
                    self.events.push_back(EndpointEvent::SendFailed {
                        id: o.id,
                        error: format!("{group}: not a group this account is in"),
                    });
                }
            }
        }
        self.pump();
    }

    /// News from the key directory.
    pub fn handle_notification(&mut self, notification: &Notification) {
        match notification {
            Notification::Devices { jid, .. } | Notification::Identity { jid, .. } => {
                self.lists.remove(&user_of(jid));
            }
            Notification::PreKeys { count } if (*count as usize) < ONE_TIME_KEYS => {
                self.upload_keys(ONE_TIME_KEYS - *count as usize);
            }
            _ => {}
        }
    }

    /// A group changed: its members are fetched again before the next message, and a member
    /// who left or was removed gets no key for what follows.
    pub fn handle_group_change(&mut self, notice: &GroupNotice) {
        if matches!(notice.op, GroupOp::Add | GroupOp::Remove | GroupOp::Leave | GroupOp::Create) {
            self.groups.remove(&notice.group);
        }
        if matches!(notice.op, GroupOp::Remove | GroupOp::Leave) {
            self.machine.rotate_group(&notice.group);
        }
    }

    // ---- Receiving ----------------------------------------------------------------------------

    /// A message for this device. Decrypted now if its sender's device is verified, else held
    /// until the sender's device list arrives.
    pub fn receive(&mut self, incoming: Incoming) {
        let user = user_of(&incoming.from);
        if self.lists.get(&user).is_some_and(|l| l.devices.iter().any(|d| d.device == incoming.from)) {
            return self.decrypt(incoming);
        }
        if self.lists.get(&user).is_some_and(|l| l.refused.contains(&incoming.from) || !l.devices.is_empty())
            && !self.asked_lists.contains(&user)
        {
            // Known user, unknown device: it may be new. Fetch once more, then decide.
            self.lists.remove(&user);
        }
        if self.held.len() >= MAX_HELD
            && let Some(old) = self.held.pop_front()
        {
            self.events.push_back(EndpointEvent::Undecryptable {
                from: old.from,
                id: old.id,
                error: "held too long for its sender's keys".to_owned(),
            });
        }
        self.held.push_back(incoming);
        if !self.lists.contains_key(&user) && self.asked_lists.insert(user.clone()) {
            self.needs.push_back(Need::DeviceLists(vec![user]));
        } else {
            self.release_held();
        }
    }

    fn release_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        for incoming in held {
            let user = user_of(&incoming.from);
            match self.lists.get(&user) {
                Some(list) if list.devices.iter().any(|d| d.device == incoming.from) => self.decrypt(incoming),
                Some(_) => self.events.push_back(EndpointEvent::Undecryptable {
                    from: incoming.from,
                    id: incoming.id,
                    error: "the sending device is not one its account's phone vouched for".to_owned(),
                }),
                None => self.held.push_back(incoming),
            }
        }
    }

    fn decrypt(&mut self, incoming: Incoming) {
        match self.open(&incoming) {
            Ok(envelope) => {
                let received = Received {
                    from_me: user_of(&incoming.from) == self.own_user,
                    from: incoming.from,
                    chat: incoming.chat,
                    id: incoming.id,
                    t: incoming.t,
                    kind: incoming.kind,
                    envelope,
                };
                self.events.push_back(EndpointEvent::Message(Box::new(received)));
            }
            Err(error) => self.events.push_back(EndpointEvent::Undecryptable {
                from: incoming.from,
                id: incoming.id,
                error,
            }),
        }
    }

    fn open(&mut self, incoming: &Incoming) -> Result<Envelope, String> {
        let sender_keys = self
            .lists
            .get(&user_of(&incoming.from))
            .and_then(|l| l.devices.iter().find(|d| d.device == incoming.from))
            .map(|d| d.identity)
            .ok_or_else(|| "unknown sending device".to_owned())?;
        let mut from_olm = None;
        if let Some(olm) = &incoming.olm {
            let ciphertext = OlmCiphertext {
                kind: match olm.kind {
                    OlmType::PreKey => OlmKind::PreKey,
                    OlmType::Normal => OlmKind::Normal,
                },
                body: olm.body.clone(),
            };
            let plain = self
                .machine
                .decrypt(&incoming.from, &sender_keys.curve25519, &ciphertext)
                .map_err(|e| e.to_string())?;
            from_olm = Some(Envelope::decode(plain.as_slice()).map_err(|e| format!("not an envelope: {e}"))?);
        }
        match (&incoming.group, Chat::from_jid(&incoming.chat)) {
            (Some(body), Ok(Chat::Group(gid))) => {
                if let Some(key) = from_olm.as_ref().and_then(|e| e.group_key.as_ref()) {
                    if key.group.as_deref() != Some(gid.to_string().as_str()) {
                        return Err("a group key for another group".to_owned());
                    }
                    let key = GroupKey {
                        group: gid.clone(),
                        session_id: key.session_id.clone().unwrap_or_default(),
                        key: Zeroizing::new(key.key.clone().unwrap_or_default()),
                    };
                    self.machine.add_group_key(&incoming.from, &key).map_err(|e| e.to_string())?;
                }
                let plain = self
                    .machine
                    .group_decrypt(&gid, &incoming.from, &GroupCiphertext(body.clone()))
                    .map_err(|e: DecryptError| e.to_string())?;
                Envelope::decode(plain.as_slice()).map_err(|e| format!("not an envelope: {e}"))
            }
            (Some(_), _) => Err("a group ciphertext outside a group".to_owned()),
            (None, _) => from_olm.ok_or_else(|| "no ciphertext for this device".to_owned()),
        }
    }
}

enum Step {
    Wait,
    Fail(String),
    Send(Relay, Vec<Jid>),
}

fn olm_payload(ciphertext: &OlmCiphertext) -> OlmPayload {
    OlmPayload {
        kind: match ciphertext.kind {
            OlmKind::PreKey => OlmType::PreKey,
            OlmKind::Normal => OlmType::Normal,
        },
        body: ciphertext.body.clone(),
    }
}
