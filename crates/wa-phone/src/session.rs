//! The phone's side of the phone protocol, as a state machine without IO.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};
use wa_e2e::endpoint::{Endpoint, EndpointEvent, Need, NeedKind, Received};
use wa_e2e::{Machine, PickleKey, StateKey};
use wa_proto::wars::{Envelope, HistoryNotice};
use wa_wire::ids::{user_jid, user_of};
use wa_wire::json::{GroupMetadata, RelayReply};
use wa_wire::keys::attestation_message;
use wa_wire::legacy::{ActionPush, Add};
use wa_wire::link::QrCode;
use wa_wire::msg::{
    ContentKind, GroupAction, GroupOp, PresenceSet, PresenceState, Receipt, ReceiptKind,
};
use wa_wire::phone::{
    Challenge, Claims, DeviceLists, KeyCount, Linked, LinkedDevices, MediaAuth, MirrorFrame,
    MirrorLink, PhoneEvent, PhoneInfo, PhoneRequest, Ready, Stored, auth_message,
};
use wa_wire::web::{Query, Request as WebRequest, ServerNode, SetItem};
use wa_wire::{Chat, Jid, Time};

use crate::error::{CommandError, PhoneError};
use crate::mirror::MirrorClient;

/// How a phone is configured.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PhoneConfig {
    /// The phone number, digits only.
    pub number: String,
    /// The display name.
    pub name: String,
    /// What the phone says about itself.
    pub info: PhoneInfo,
    /// Send a delivery receipt for every message that arrives. Default `true`.
    pub delivery_receipts: bool,
    /// How long a request waits for its answer. Default 20 s.
    pub request_timeout: Duration,
    /// A keepalive goes out this long after the last request. Default 30 s.
    pub ping_after: Duration,
    /// First reconnect delay; it doubles on every failed attempt. Default 1 s.
    pub reconnect_base: Duration,
    /// The longest reconnect delay. Default 60 s.
    pub reconnect_cap: Duration,
}

impl PhoneConfig {
    /// A phone for `number` named `name`.
    pub fn new(number: &str, name: &str) -> PhoneConfig {
        PhoneConfig {
            number: number.to_owned(),
            name: name.to_owned(),
            info: PhoneInfo::default(),
            delivery_receipts: true,
            request_timeout: Duration::from_secs(20),
            ping_after: Duration::from_secs(30),
            reconnect_base: Duration::from_secs(1),
            reconnect_cap: Duration::from_secs(60),
        }
    }
}

/// An instruction for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneTransmit {
    /// Open a socket to `/phone`, then call [`PhoneSession::handle_connected`].
    Connect,
    /// Send this text message.
    Send(String),
    /// Close the socket.
    Close,
}

/// Identifies a command, so that its outcome can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(u64);

impl CommandId {
    /// The number, for logs.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a finished command answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Answer {
    /// Done, nothing to say.
    Done,
    /// A message was stored by the server (ack 1).
    Sent {
        /// Its id.
        id: String,
    },
    /// A group was created.
    GroupCreated(Jid),
    /// A web client was linked.
    Linked(Linked),
    /// The linked web clients.
    LinkedDevices(LinkedDevices),
    /// Media upload auth.
    MediaAuth(MediaAuth),
    /// A group's metadata.
    GroupMetadata(GroupMetadata),
}

/// Something the phone tells its user.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PhoneSessionEvent {
    /// A verification code was sent to the number: call [`PhoneSession::verify`] with it.
    CodeSent,
    /// Logged in as the account's phone.
    Ready(Ready),
    /// A message arrived and decrypted.
    Message(Box<Received>),
    /// A message arrived that does not decrypt.
    Undecryptable {
        /// The sending device.
        from: Jid,
        /// Its id.
        id: String,
        /// Why.
        error: String,
    },
    /// Ticks for a message the account sent.
    Ack(wa_wire::msg::AckNotice),
    /// A contact's presence.
    Presence(wa_wire::msg::PresenceNotice),
    /// A group changed.
    Group(wa_wire::msg::GroupNotice),
    /// A contact's identity changed.
    IdentityChanged {
        /// The contact.
        jid: Jid,
    },
    /// A web client finished linking (its history should follow).
    Linked(Linked),
    /// A command finished.
    Answer {
        /// The command.
        id: CommandId,
        /// Its outcome.
        result: Result<Answer, PhoneError>,
    },
    /// The end-to-end state changed: persist these sealed parts.
    E2eState(Box<wa_e2e::Changes>),
    /// Another connection logged in as this phone: this one stopped.
    Replaced,
    /// Not connected any more; `reconnect_in` says when it tries again (`None`: it won't).
    Disconnected {
        /// When it reconnects.
        reconnect_in: Option<Duration>,
    },
    /// Registration or login failed for good.
    Failed(PhoneError),
    /// The mirror-mode clients changed (one linked or unlinked): persist them (their keys are
    /// secrets), and hand them to [`PhoneSession::restore_mirrors`] next time.
    MirrorsChanged(Vec<MirrorClient>),
    /// A mirror client asks for what only the phone's store knows (its chat list, contacts or
    /// history): answer with [`PhoneSession::mirror_reply`] under `tag`.
    MirrorQuery {
        /// The client.
        device: Jid,
        /// The request's tag.
        tag: String,
        /// What it asks.
        query: Query,
    },
    /// A mirror client's message was stored by the server (sent end to end by this phone):
    /// keep it in the phone's history, as sent by this account.
    MirrorSent(Box<wa_proto::WebMessageInfo>),
    /// A mirror client logged in: send it its chat and contact lists and recent messages with
    /// [`PhoneSession::mirror_push`].
    MirrorOnline {
        /// The client.
        device: Jid,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    /// `register` sent, or the code is awaited.
    Registering,
    /// `hello` or `auth` sent.
    LoggingIn,
    Ready,
    Backoff,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Register,
    Login,
}

#[derive(Debug)]
enum Pending {
    Register,
    Verify,
    Hello,
    Auth,
    Keys,
    Devices,
    PreKeys,
    Group(Jid),
    /// A relay: its message id and chat.
    Relay(String, Jid),
    Command(CommandId, Expect),
    AutoReceipt,
    Ping,
    /// A request made for a mirror client: its answer goes back under the client's tag.
    Mirror(Jid, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Done,
    Group,
    Linked,
    LinkedDevices,
    MediaAuth,
    GroupMetadata,
}

/// The phone of an account: the primary device, as a state machine without IO (in the manner of
/// `wa-session` for web clients).
///
/// Drive it like the web session: carry out every [`PhoneTransmit`], feed every text message
/// with [`PhoneSession::handle_message`], handle every [`PhoneSessionEvent`], and call
/// [`PhoneSession::handle_timeout`] when [`PhoneSession::poll_timeout`] says.
///
/// Randomness: message ids and jitter come from the seed; the end-to-end keys from the OS
/// (`vodozemac`).
pub struct PhoneSession {
    config: PhoneConfig,
    rng: ChaCha20Rng,
    state: State,
    goal: Goal,
    endpoint: Endpoint,
    pickle_key: Option<PickleKey>,
    user: Jid,
    next_id: u64,
    pending: BTreeMap<u64, (Pending, Time)>,
    transmits: VecDeque<PhoneTransmit>,
    events: VecDeque<PhoneSessionEvent>,
    sends: HashMap<String, CommandId>,
    code: Option<zeroize::Zeroizing<String>>,
    ping_at: Option<Time>,
    reconnect_at: Option<Time>,
    attempts: u32,
    mirrors: Vec<MirrorClient>,
    /// Mirror links approved, waiting for their device address: by client id.
    linking_mirrors: Vec<MirrorClient>,
    /// Messages mirror clients sent: message id → `(client, tag)`.
    /// Messages mirror clients sent, until the server stored them: the client, its tag, and
    /// the message (for the phone's own history).
    mirror_sends: HashMap<String, (Jid, String, Box<wa_proto::WebMessageInfo>)>,
    next_mirror_tag: u64,
}

/// Mirror clients one phone keeps at most (it links at most a few web clients).
const MAX_MIRRORS: usize = 16;

impl std::fmt::Debug for PhoneSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneSession")
            .field("number", &self.config.number)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What answered a request: its data, or the error's status, reason, and (for a relay's 409)
/// the missing and extra devices.
type Answered = Result<serde_json::Value, (u16, String, Vec<Jid>, Vec<Jid>)>;

/// Commands waiting for answers, at most.
const MAX_PENDING: usize = 1024;

impl PhoneSession {
    /// A phone with fresh identity keys.
    ///
    /// # Errors
    /// When the number is not 5 to 20 digits.
    pub fn new(config: PhoneConfig, seed: [u8; 32]) -> Result<PhoneSession, CommandError> {
        let user = user_jid(&config.number)
            .map_err(|_| CommandError::InvalidArgument("not a phone number"))?;
        Ok(PhoneSession::with_machine(
            config,
            seed,
            Machine::new(user.clone()),
            user,
        ))
    }

    /// A phone with its stored end-to-end state (the parts of every
    /// [`PhoneSessionEvent::E2eState`] so far), sealed with `key`.
    ///
    /// # Errors
    /// When the number is not a number, or the state does not open with `key`.
    pub fn restore(
        config: PhoneConfig,
        seed: [u8; 32],
        parts: impl IntoIterator<Item = (StateKey, Vec<u8>)>,
        key: PickleKey,
    ) -> Result<PhoneSession, CommandError> {
        let user = user_jid(&config.number)
            .map_err(|_| CommandError::InvalidArgument("not a phone number"))?;
        let machine = Machine::restore(user.clone(), parts, &key)
            .map_err(|e| CommandError::E2eState(e.to_string()))?;
        Ok(PhoneSession::with_machine(config, seed, machine, user).with_pickle_key(key))
    }

    fn with_machine(
        config: PhoneConfig,
        seed: [u8; 32],
        machine: Machine,
        user: Jid,
    ) -> PhoneSession {
        PhoneSession {
            config,
            rng: ChaCha20Rng::from_seed(seed),
            state: State::Idle,
            goal: Goal::Login,
            endpoint: Endpoint::new(machine),
            pickle_key: None,
            user,
            next_id: 0,
            pending: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            sends: HashMap::new(),
            code: None,
            ping_at: None,
            reconnect_at: None,
            attempts: 0,
            mirrors: Vec::new(),
            linking_mirrors: Vec::new(),
            mirror_sends: HashMap::new(),
            next_mirror_tag: 0,
        }
    }

    /// The mirror-mode clients this phone serves (from a previous run).
    pub fn restore_mirrors(&mut self, mirrors: Vec<MirrorClient>) {
        self.mirrors = mirrors;
        self.mirrors.truncate(MAX_MIRRORS);
    }

    /// The mirror-mode clients this phone serves.
    pub fn mirrors(&self) -> &[MirrorClient] {
        &self.mirrors
    }

    /// The key that seals the end-to-end state handed out in
    /// [`PhoneSessionEvent::E2eState`].
    #[must_use]
    pub fn with_pickle_key(mut self, key: PickleKey) -> PhoneSession {
        self.pickle_key = Some(key);
        self
    }

    /// The account's user address.
    pub fn user(&self) -> &Jid {
        &self.user
    }

    /// The phone's identity keys (the Ed25519 one is the account's identity).
    pub fn identity_keys(&self) -> wa_wire::keys::IdentityKeys {
        self.endpoint.identity_keys()
    }

    /// The security code with `user`, once their identity is known.
    pub fn security_code(&self, user: &Jid) -> Option<wa_e2e::SecurityCode> {
        let mine = self.identity_keys().ed25519;
        let theirs = self.endpoint.machine().known_identity(user)?;
        Some(wa_e2e::security_code(&self.user, &mine, user, &theirs))
    }

    /// Whether logged in.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The next instruction for the driver.
    pub fn poll_transmit(&mut self) -> Option<PhoneTransmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PhoneSessionEvent> {
        self.events.pop_front()
    }

    /// When [`PhoneSession::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.pending
            .values()
            .map(|(_, t)| *t)
            .chain(self.ping_at)
            .chain(self.reconnect_at)
            .min()
    }

    /// Registers the number: asks for a verification code (delivered out of band), then
    /// [`PhoneSession::verify`] proves it. A number that had another phone moves to this one.
    ///
    /// # Errors
    /// When already started.
    pub fn register(&mut self, _now: Time) -> Result<(), CommandError> {
        self.start(Goal::Register)
    }

    /// Logs in as the account's phone (signing the server's challenge with the identity key).
    ///
    /// # Errors
    /// When already started.
    pub fn login(&mut self, _now: Time) -> Result<(), CommandError> {
        self.start(Goal::Login)
    }

    fn start(&mut self, goal: Goal) -> Result<(), CommandError> {
        if !matches!(self.state, State::Idle | State::Closed) {
            return Err(CommandError::AlreadyStarted);
        }
        self.goal = goal;
        self.state = State::Connecting;
        self.attempts = 0;
        self.transmits.push_back(PhoneTransmit::Connect);
        Ok(())
    }

    /// The code that was delivered for [`PhoneSession::register`].
    ///
    /// # Errors
    /// When no registration waits for its code.
    pub fn verify(&mut self, now: Time, code: &str) -> Result<(), CommandError> {
        if self.state != State::Registering {
            return Err(CommandError::NotRegistering);
        }
        self.code = Some(zeroize::Zeroizing::new(code.trim().to_owned()));
        let id = self.next_request_id();
        let request = PhoneRequest::Verify {
            id,
            number: self.config.number.clone(),
            code: code.trim().to_owned(),
            name: self.config.name.clone(),
            identity: self.endpoint.identity_keys(),
            phone: Some(self.config.info.clone()),
        };
        self.request(now, id, &request, Pending::Verify);
        Ok(())
    }

    /// The socket asked for by [`PhoneTransmit::Connect`] is open.
    pub fn handle_connected(&mut self, now: Time) {
        if self.state != State::Connecting {
            return;
        }
        let id = self.next_request_id();
        match self.goal {
            Goal::Register => {
                self.state = State::Registering;
                let request = PhoneRequest::Register {
                    id,
                    number: self.config.number.clone(),
                    name: self.config.name.clone(),
                };
                self.request(now, id, &request, Pending::Register);
            }
            Goal::Login => {
                self.state = State::LoggingIn;
                let request = PhoneRequest::Hello {
                    id,
                    number: self.config.number.clone(),
                };
                self.request(now, id, &request, Pending::Hello);
            }
        }
    }

    /// The socket closed.
    pub fn handle_closed(&mut self, now: Time) {
        if matches!(self.state, State::Idle | State::Closed | State::Backoff) {
            return;
        }
        self.lose(now);
    }

    /// One text message from the server.
    pub fn handle_message(&mut self, now: Time, text: &str) {
        if matches!(
            self.state,
            State::Idle | State::Closed | State::Backoff | State::Connecting
        ) {
            return;
        }
        let event: PhoneEvent = match serde_json::from_str(text) {
            Ok(event) => event,
            Err(e) => {
                return self
                    .events
                    .push_back(PhoneSessionEvent::Failed(PhoneError::Protocol(format!(
                        "not a phone event: {e}"
                    ))));
            }
        };
        match event {
            PhoneEvent::Result { id, data } => self.answered(now, id, Ok(data)),
            PhoneEvent::Error {
                id: Some(id),
                status,
                error,
                missing,
                extra,
            } => {
                self.answered(now, id, Err((status, error, missing, extra)));
            }
            PhoneEvent::Error {
                id: None,
                status,
                error,
                ..
            } => {
                self.events
                    .push_back(PhoneSessionEvent::Failed(PhoneError::Status {
                        status,
                        reason: error,
                    }));
            }
            PhoneEvent::Message { message } => self.endpoint.receive(message),
            PhoneEvent::Ack { ack } => self.events.push_back(PhoneSessionEvent::Ack(ack)),
            PhoneEvent::Presence { presence } => {
                self.events.push_back(PhoneSessionEvent::Presence(presence))
            }
            PhoneEvent::Group { change } => {
                self.endpoint.handle_group_change(&change);
                self.events.push_back(PhoneSessionEvent::Group(change));
            }
            PhoneEvent::Notification { notification } => {
                self.endpoint.handle_notification(&notification);
                if let wa_wire::msg::Notification::Identity { jid, .. } = notification {
                    self.events
                        .push_back(PhoneSessionEvent::IdentityChanged { jid });
                }
            }
            PhoneEvent::Linked { client_id, device } => {
                if let Some(pos) = self
                    .linking_mirrors
                    .iter()
                    .position(|m| m.client_id == client_id)
                {
                    let mut mirror = self.linking_mirrors.remove(pos);
                    mirror.device = device.clone();
                    self.mirrors
                        .retain(|m| m.client_id != client_id && m.device != device);
                    self.mirrors.push(mirror);
                    self.events
                        .push_back(PhoneSessionEvent::MirrorsChanged(self.mirrors.clone()));
                }
                self.events
                    .push_back(PhoneSessionEvent::Linked(Linked { client_id, device }));
            }
            PhoneEvent::MirrorFrame { device, frame } => self.mirror_frame(now, &device, &frame),
            PhoneEvent::MirrorOnline { device }
                if self.mirrors.iter().any(|m| m.device == device) =>
            {
                self.events
                    .push_back(PhoneSessionEvent::MirrorOnline { device });
            }
            PhoneEvent::MirrorChallenge {
                device,
                r#ref,
                challenge,
            } => {
                if let Some(client) = self.mirrors.iter().find(|m| m.device == device) {
                    let expected = client.keys().challenge_response(&challenge).to_vec();
                    let id = self.next_request_id();
                    self.request(
                        now,
                        id,
                        &PhoneRequest::MirrorChallenge {
                            id,
                            r#ref,
                            expected,
                        },
                        Pending::Ping,
                    );
                }
            }
            PhoneEvent::Replaced => {
                self.events.push_back(PhoneSessionEvent::Replaced);
                self.stop();
            }
            _ => {}
        }
        self.pump(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Time) {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.answered(
                now,
                id,
                Err((0, "timed out".to_owned(), Vec::new(), Vec::new())),
            );
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.state = State::Connecting;
            self.transmits.push_back(PhoneTransmit::Connect);
        }
        if self.ping_at.is_some_and(|t| t <= now) {
            self.ping_at = None;
            if self.state == State::Ready {
                let id = self.next_request_id();
                self.request(now, id, &PhoneRequest::Ping { id }, Pending::Ping);
            }
        }
        self.pump(now);
    }

    // ---- Commands -----------------------------------------------------------------------------

    /// Sends a text message to a user or a group.
    ///
    /// # Errors
    /// When not logged in, too many commands wait, or `to` is not a chat.
    pub fn send_text(
        &mut self,
        now: Time,
        to: &Jid,
        text: &str,
    ) -> Result<(CommandId, String), CommandError> {
        let message = wa_proto::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        self.send_message(now, to, message)
    }

    /// Sends any message, end to end encrypted.
    ///
    /// # Errors
    /// As [`PhoneSession::send_text`].
    pub fn send_message(
        &mut self,
        now: Time,
        to: &Jid,
        message: wa_proto::Message,
    ) -> Result<(CommandId, String), CommandError> {
        let kind = if message.media().is_some() {
            ContentKind::Media
        } else {
            ContentKind::Text
        };
        let envelope = Envelope {
            message: Some(message),
            push_name: Some(self.config.name.clone()),
            ..Default::default()
        };
        self.send_envelope(now, to, kind, &envelope)
    }

    /// Tells the account's own devices where a history export is (the new device named in the
    /// notice imports it; the others ignore it).
    ///
    /// # Errors
    /// As [`PhoneSession::send_text`].
    pub fn send_history(
        &mut self,
        now: Time,
        notice: HistoryNotice,
    ) -> Result<(CommandId, String), CommandError> {
        let envelope = Envelope {
            history: Some(notice),
            ..Default::default()
        };
        let own = self.user.clone();
        self.send_envelope(now, &own, ContentKind::History, &envelope)
    }

    fn send_envelope(
        &mut self,
        now: Time,
        to: &Jid,
        kind: ContentKind,
        envelope: &Envelope,
    ) -> Result<(CommandId, String), CommandError> {
        self.ready()?;
        Chat::from_jid(to).map_err(|_| CommandError::InvalidArgument("not a user or group"))?;
        let id = self.new_message_id();
        let command = self.next_command();
        self.endpoint
            .send(to, id.clone(), kind, envelope)
            .map_err(|e| CommandError::Busy(e.to_string()))?;
        self.sends.insert(id.clone(), command);
        self.pump(now);
        Ok((command, id))
    }

    /// Marks a message read (the sender sees blue ticks).
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn mark_read(
        &mut self,
        now: Time,
        chat: &Jid,
        id: &str,
        participant: Option<&Jid>,
    ) -> Result<CommandId, CommandError> {
        let receipt = Receipt {
            kind: ReceiptKind::Read,
            chat: chat.clone(),
            id: id.to_owned(),
            participant: participant.cloned(),
        };
        self.command(
            now,
            |id| PhoneRequest::Receipt { id, receipt },
            Expect::Done,
        )
    }

    /// Sets the own presence, for everyone or (typing states) in one chat.
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn set_presence(
        &mut self,
        now: Time,
        state: PresenceState,
        to: Option<&Jid>,
    ) -> Result<CommandId, CommandError> {
        let presence = PresenceSet {
            state,
            to: to.cloned(),
        };
        self.command(
            now,
            |id| PhoneRequest::Presence { id, presence },
            Expect::Done,
        )
    }

    /// Subscribes to a contact's presence.
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn subscribe(&mut self, now: Time, jid: &Jid) -> Result<CommandId, CommandError> {
        let jid = jid.clone();
        self.command(now, |id| PhoneRequest::Subscribe { id, jid }, Expect::Done)
    }

    /// A group operation ([`Answer::GroupCreated`] for create).
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn group(&mut self, now: Time, action: GroupAction) -> Result<CommandId, CommandError> {
        let expect = if action.op == GroupOp::Create {
            Expect::Group
        } else {
            Expect::Done
        };
        self.command(now, |id| PhoneRequest::Group { id, action }, expect)
    }

    /// A group's subject and members ([`Answer::GroupMetadata`]).
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn group_metadata(&mut self, now: Time, group: &Jid) -> Result<CommandId, CommandError> {
        let jid = group.clone();
        self.command(
            now,
            |id| PhoneRequest::GroupMetadata { id, jid },
            Expect::GroupMetadata,
        )
    }

    /// Approves the QR code a web client shows ([`Answer::Linked`] once it finished). For an
    /// end-to-end client, the phone signs the identity keys the QR code carries.
    ///
    /// # Errors
    /// When not logged in, too many commands wait, or the text is not a QR code.
    pub fn link(&mut self, now: Time, qr: &str) -> Result<CommandId, CommandError> {
        let code = QrCode::parse(qr)
            .map_err(|_| CommandError::InvalidArgument("not a QR code of this protocol"))?;
        let attestation = code.identity.map(|identity| {
            self.endpoint
                .machine()
                .sign(&attestation_message(&self.user, &identity))
        });
        let mirror = match code.identity {
            Some(_) => None,
            None => Some(self.mirror_link(&code)?),
        };
        let qr = qr.trim().to_owned();
        self.command(
            now,
            |id| PhoneRequest::Link {
                id,
                qr,
                attestation,
                mirror,
            },
            Expect::Linked,
        )
    }

    /// A legacy client is a mirror of this phone: the phone makes its frame keys and the secret
    /// of its `Conn` (PROTOCOL.md §2.3) for the QR code's public key.
    fn mirror_link(&mut self, code: &QrCode) -> Result<MirrorLink, CommandError> {
        if self.mirrors.len() + self.linking_mirrors.len() >= MAX_MIRRORS {
            return Err(CommandError::InvalidArgument("too many mirror clients"));
        }
        let mut enc = zeroize::Zeroizing::new([0u8; 32]);
        let mut mac = zeroize::Zeroizing::new([0u8; 32]);
        let mut server_private = zeroize::Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut *enc);
        self.rng.fill_bytes(&mut *mac);
        self.rng.fill_bytes(&mut *server_private);
        let keys = wa_crypto::SessionKeys::new(&enc, &mac);
        let secret = wa_crypto::LoginSecret::server_side(&server_private, &code.public_key, &keys)
            .map_err(|_| CommandError::InvalidArgument("the QR code's key is unusable"))?
            .to_base64();
        let logout_hash = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(keys.logout_token().as_bytes()))
        };
        self.linking_mirrors
            .retain(|m| m.client_id != code.client_id);
        self.linking_mirrors.push(MirrorClient {
            device: self.user.clone(),
            client_id: code.client_id.clone(),
            enc_key: *enc,
            mac_key: *mac,
        });
        Ok(MirrorLink {
            secret,
            logout_hash,
        })
    }

    /// Answers a mirror client's query ([`PhoneSessionEvent::MirrorQuery`]) with `node` under
    /// its tag.
    ///
    /// # Errors
    /// When not logged in, or `device` is not a mirror client of this phone.
    pub fn mirror_reply(
        &mut self,
        now: Time,
        device: &Jid,
        tag: &str,
        node: &ServerNode,
    ) -> Result<(), CommandError> {
        self.mirror_sealed(now, device, tag, node)
    }

    /// Pushes `node` to a mirror client (lists after it logs in, messages).
    ///
    /// # Errors
    /// When not logged in, or `device` is not a mirror client of this phone.
    pub fn mirror_push(
        &mut self,
        now: Time,
        device: &Jid,
        node: &ServerNode,
    ) -> Result<(), CommandError> {
        self.next_mirror_tag += 1;
        let tag = format!("preempt-{}-{}", now.as_secs(), self.next_mirror_tag);
        self.mirror_sealed(now, device, &tag, node)
    }

    fn mirror_sealed(
        &mut self,
        now: Time,
        device: &Jid,
        tag: &str,
        node: &ServerNode,
    ) -> Result<(), CommandError> {
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut iv);
        let frame = self
            .mirrors
            .iter()
            .find(|m| m.device == *device)
            .ok_or(CommandError::InvalidArgument(
                "not a mirror client of this phone",
            ))?
            .seal(tag, node, &iv)
            .ok_or(CommandError::InvalidArgument("the node does not encode"))?;
        self.mirror_frames(now, device, vec![frame])
    }

    fn mirror_text(&mut self, now: Time, device: &Jid, tag: &str, json: &serde_json::Value) {
        let frame = MirrorFrame::Text(format!("{tag},{json}"));
        let _ = self.mirror_frames(now, device, vec![frame]);
    }

    fn mirror_frames(
        &mut self,
        now: Time,
        device: &Jid,
        frames: Vec<MirrorFrame>,
    ) -> Result<(), CommandError> {
        self.ready()?;
        let id = self.next_request_id();
        let request = PhoneRequest::MirrorSend {
            id,
            device: device.clone(),
            frames,
        };
        self.request(now, id, &request, Pending::Ping);
        Ok(())
    }

    /// A frame a mirror client sent: opened with its keys and carried out.
    fn mirror_frame(&mut self, now: Time, device: &Jid, frame: &MirrorFrame) {
        let MirrorFrame::Binary(bytes) = frame else {
            return;
        };
        let Some(client) = self.mirrors.iter().find(|m| m.device == *device).cloned() else {
            return;
        };
        let parsed = wa_frame::Frame::parse(
            wa_frame::WsMessage::Binary(bytes),
            wa_frame::Direction::ClientToServer,
            &wa_frame::Limits::default(),
        );
        let Ok(wa_frame::Frame::Binary { tag, payload, .. }) = parsed else {
            return;
        };
        let tag = tag.as_str().to_owned();
        let Ok(plain) = client.keys().open(&payload) else {
            return self.mirror_text(
                now,
                device,
                &tag,
                &wa_wire::json::status(400, Some("does not open")),
            );
        };
        let request = wa_binary::decode(&plain)
            .map_err(|e| e.to_string())
            .and_then(|node| WebRequest::from_node(&node).map_err(|e| e.to_string()));
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                return self.mirror_text(now, device, &tag, &wa_wire::json::status(400, Some(&e)));
            }
        };
        match request {
            WebRequest::LegacyRelay(info) => {
                let (Some(to), Some(id), Some(message)) = (
                    info.key
                        .remote_jid
                        .as_deref()
                        .and_then(|j| j.parse::<Jid>().ok()),
                    info.key
                        .id
                        .clone()
                        .filter(|id| wa_wire::ids::valid_message_id(id)),
                    info.message.clone(),
                ) else {
                    return self.mirror_text(
                        now,
                        device,
                        &tag,
                        &wa_wire::json::status(400, Some("incomplete message")),
                    );
                };
                let kind = if message.media().is_some() {
                    ContentKind::Media
                } else {
                    ContentKind::Text
                };
                let envelope = Envelope {
                    message: Some(message),
                    push_name: Some(self.config.name.clone()),
                    ..Default::default()
                };
                match self.endpoint.send(&to, id.clone(), kind, &envelope) {
                    Ok(()) => {
                        let mut kept = (*info).clone();
                        kept.key.from_me = Some(true);
                        kept.key.participant = None;
                        self.mirror_sends
                            .insert(id, (device.clone(), tag, Box::new(kept)));
                        self.pump(now);
                    }
                    Err(e) => self.mirror_text(
                        now,
                        device,
                        &tag,
                        &wa_wire::json::status(503, Some(&e.to_string())),
                    ),
                }
            }
            WebRequest::Set(items) => {
                for item in items {
                    let id = self.next_request_id();
                    let request = match item {
                        SetItem::Receipt(receipt) => PhoneRequest::Receipt { id, receipt },
                        SetItem::Presence(presence) => PhoneRequest::Presence { id, presence },
                        SetItem::Group { action, .. } => PhoneRequest::Group { id, action },
                        _ => continue,
                    };
                    self.request(
                        now,
                        id,
                        &request,
                        Pending::Mirror(device.clone(), tag.clone()),
                    );
                }
            }
            // The phone keeps no status lines either: an empty answer (PROTOCOL.md §3.4).
            WebRequest::Query(Query::Status) => {
                let _ = self.mirror_sealed(now, device, &tag, &ServerNode::Statuses(Vec::new()));
            }
            WebRequest::Query(query @ (Query::Chats | Query::Contacts | Query::Messages(_))) => {
                self.events.push_back(PhoneSessionEvent::MirrorQuery {
                    device: device.clone(),
                    tag,
                    query,
                });
            }
            _ => self.mirror_text(
                now,
                device,
                &tag,
                &wa_wire::json::status(400, Some("not for a mirror client")),
            ),
        }
    }

    /// The linked web clients ([`Answer::LinkedDevices`]).
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn linked(&mut self, now: Time) -> Result<CommandId, CommandError> {
        self.command(now, |id| PhoneRequest::Linked { id }, Expect::LinkedDevices)
    }

    /// Unlinks a web client.
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn unlink(&mut self, now: Time, client_id: &str) -> Result<CommandId, CommandError> {
        let client_id = client_id.to_owned();
        self.command(
            now,
            |id| PhoneRequest::Unlink { id, client_id },
            Expect::Done,
        )
    }

    /// Upload auth for the media service ([`Answer::MediaAuth`]).
    ///
    /// # Errors
    /// When not logged in or too many commands wait.
    pub fn media_conn(&mut self, now: Time) -> Result<CommandId, CommandError> {
        self.command(now, |id| PhoneRequest::MediaConn { id }, Expect::MediaAuth)
    }

    /// Logs out: closes the socket; no reconnect.
    pub fn close(&mut self, _now: Time) {
        self.stop();
    }

    // ---- Machinery ----------------------------------------------------------------------------

    fn command(
        &mut self,
        now: Time,
        make: impl FnOnce(u64) -> PhoneRequest,
        expect: Expect,
    ) -> Result<CommandId, CommandError> {
        self.ready()?;
        let command = self.next_command();
        let id = self.next_request_id();
        let request = make(id);
        self.request(now, id, &request, Pending::Command(command, expect));
        Ok(command)
    }

    fn ready(&self) -> Result<(), CommandError> {
        if self.state != State::Ready {
            return Err(CommandError::NotReady);
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(CommandError::TooManyPending(self.pending.len()));
        }
        Ok(())
    }

    fn next_request_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn next_command(&mut self) -> CommandId {
        self.next_id += 1;
        CommandId(self.next_id)
    }

    fn new_message_id(&mut self) -> String {
        let mut bytes = [0u8; 8];
        self.rng.fill_bytes(&mut bytes);
        let mut id = String::from("3EB0");
        for b in bytes {
            id.push_str(&format!("{b:02X}"));
        }
        id
    }

    fn request(&mut self, now: Time, id: u64, request: &PhoneRequest, pending: Pending) {
        self.pending
            .insert(id, (pending, now + self.config.request_timeout));
        self.ping_at = Some(now + self.config.ping_after);
        self.transmits
            .push_back(PhoneTransmit::Send(request.to_text()));
    }

    fn answered(&mut self, now: Time, id: u64, result: Answered) {
        let Some((pending, _)) = self.pending.remove(&id) else {
            return;
        };
        let fail = |r: &Answered| match r {
            Err((status, error, _, _)) => PhoneError::Status {
                status: *status,
                reason: error.clone(),
            },
            Ok(_) => PhoneError::Protocol("unexpected answer".to_owned()),
        };
        match pending {
            Pending::Register => match result {
                Ok(_) => self.events.push_back(PhoneSessionEvent::CodeSent),
                Err(_) => {
                    self.events
                        .push_back(PhoneSessionEvent::Failed(fail(&result)));
                    self.stop();
                }
            },
            Pending::Verify | Pending::Auth => match result.map(serde_json::from_value::<Ready>) {
                Ok(Ok(ready)) => self.logged_in(now, ready),
                Ok(Err(e)) => {
                    self.events
                        .push_back(PhoneSessionEvent::Failed(PhoneError::Protocol(
                            e.to_string(),
                        )));
                    self.stop();
                }
                Err((status, error, _, _)) => {
                    // A wrong code may be tried again; anything else is final.
                    let retry = matches!(pending, Pending::Verify)
                        && status == 401
                        && error == "wrong code";
                    self.events
                        .push_back(PhoneSessionEvent::Failed(PhoneError::Status {
                            status,
                            reason: error,
                        }));
                    if !retry {
                        self.stop();
                    }
                }
            },
            Pending::Hello => match result.map(serde_json::from_value::<Challenge>) {
                Ok(Ok(challenge)) => {
                    let signature = self
                        .endpoint
                        .machine()
                        .sign(&auth_message(&self.config.number, &challenge.nonce));
                    let id = self.next_request_id();
                    self.request(
                        now,
                        id,
                        &PhoneRequest::Auth { id, signature },
                        Pending::Auth,
                    );
                }
                Ok(Err(e)) => {
                    self.events
                        .push_back(PhoneSessionEvent::Failed(PhoneError::Protocol(
                            e.to_string(),
                        )));
                    self.stop();
                }
                Err((0, ..)) => self.lose(now),
                Err((status, reason, _, _)) => {
                    self.events
                        .push_back(PhoneSessionEvent::Failed(PhoneError::Status {
                            status,
                            reason,
                        }));
                    self.stop();
                }
            },
            Pending::Keys => match result.map(serde_json::from_value::<KeyCount>) {
                Ok(Ok(count)) => self.endpoint.handle_keys_uploaded(count.count),
                _ => self
                    .endpoint
                    .handle_failed(NeedKind::UploadKeys, "key upload failed"),
            },
            Pending::Devices => match result.map(serde_json::from_value::<DeviceLists>) {
                Ok(Ok(lists)) => self.endpoint.handle_device_lists(lists.lists),
                _ => self
                    .endpoint
                    .handle_failed(NeedKind::DeviceLists, "device lists not fetched"),
            },
            Pending::PreKeys => match result.map(serde_json::from_value::<Claims>) {
                Ok(Ok(claims)) => self.endpoint.handle_prekeys(claims.claimed),
                _ => self
                    .endpoint
                    .handle_failed(NeedKind::PreKeys, "pre-keys not claimed"),
            },
            Pending::Group(gid) => {
                let members = match result {
                    Ok(data) => GroupMetadata::from_value(data)
                        .ok()
                        .map(|m| m.participants.into_iter().map(|p| p.jid).collect()),
                    Err(_) => None,
                };
                self.endpoint.handle_group_members(&gid, members);
            }
            Pending::Relay(message_id, chat) => {
                let reply = match result.map(serde_json::from_value::<Stored>) {
                    Ok(Ok(stored)) => {
                        // The answer is the phone's ack 1 (the server pushes it to the account's
                        // other devices only): the same tick as theirs.
                        self.events
                            .push_back(PhoneSessionEvent::Ack(wa_wire::msg::AckNotice {
                                id: message_id.clone(),
                                level: 1,
                                sender: self.user.clone(),
                                chat,
                                participant: None,
                                t: stored.t,
                            }));
                        RelayReply::Stored { t: stored.t }
                    }
                    Ok(Err(e)) => RelayReply::Refused {
                        status: 0,
                        reason: e.to_string(),
                    },
                    Err((409, _, missing, extra)) => RelayReply::Mismatch { missing, extra },
                    Err((status, reason, _, _)) => RelayReply::Refused { status, reason },
                };
                self.endpoint.handle_relay_reply(&message_id, reply);
            }
            Pending::Command(command, expect) => {
                let answer = match (result, expect) {
                    (Err(e), _) => Err(fail(&Err(e))),
                    (Ok(_), Expect::Done) => Ok(Answer::Done),
                    (Ok(data), Expect::Group) => {
                        serde_json::from_value::<wa_wire::phone::GroupCreated>(data)
                            .ok()
                            .and_then(|g| g.gid)
                            .map(Answer::GroupCreated)
                            .ok_or_else(|| PhoneError::Protocol("no group id".to_owned()))
                    }
                    (Ok(data), Expect::Linked) => serde_json::from_value(data)
                        .map(Answer::Linked)
                        .map_err(|e| PhoneError::Protocol(e.to_string())),
                    (Ok(data), Expect::LinkedDevices) => serde_json::from_value(data)
                        .map(Answer::LinkedDevices)
                        .map_err(|e| PhoneError::Protocol(e.to_string())),
                    (Ok(data), Expect::MediaAuth) => serde_json::from_value(data)
                        .map(Answer::MediaAuth)
                        .map_err(|e| PhoneError::Protocol(e.to_string())),
                    (Ok(data), Expect::GroupMetadata) => GroupMetadata::from_value(data)
                        .map(Answer::GroupMetadata)
                        .map_err(|e| PhoneError::Protocol(e.to_string())),
                };
                self.events.push_back(PhoneSessionEvent::Answer {
                    id: command,
                    result: answer,
                });
            }
            Pending::AutoReceipt | Pending::Ping => {}
            Pending::Mirror(device, tag) => {
                let reply = match result {
                    Ok(data) => {
                        match serde_json::from_value::<wa_wire::phone::GroupCreated>(data) {
                            Ok(wa_wire::phone::GroupCreated { gid: Some(gid) }) => {
                                wa_wire::json::group_reply(Some(&gid))
                            }
                            _ => wa_wire::json::status(200, None),
                        }
                    }
                    Err((status, reason, _, _)) => wa_wire::json::status(status, Some(&reason)),
                };
                self.mirror_text(now, &device, &tag, &reply);
            }
        }
    }

    fn logged_in(&mut self, now: Time, ready: Ready) {
        self.state = State::Ready;
        self.attempts = 0;
        self.goal = Goal::Login;
        self.code = None;
        self.events.push_back(PhoneSessionEvent::Ready(ready));
        self.endpoint.connected();
        self.pump(now);
    }

    fn pump(&mut self, now: Time) {
        loop {
            let mut worked = false;
            while let Some(need) = self.endpoint.poll_need() {
                worked = true;
                if self.state != State::Ready {
                    let kind = match need {
                        Need::DeviceLists(_) => NeedKind::DeviceLists,
                        Need::PreKeys(_) => NeedKind::PreKeys,
                        Need::GroupMembers(_) => NeedKind::GroupMembers,
                        Need::UploadKeys(_) => NeedKind::UploadKeys,
                        _ => NeedKind::Relay,
                    };
                    self.endpoint.handle_failed(kind, "not connected");
                    continue;
                }
                let id = self.next_request_id();
                let (request, pending) = match need {
                    Need::DeviceLists(users) => {
                        (PhoneRequest::Devices { id, users }, Pending::Devices)
                    }
                    Need::PreKeys(devices) => {
                        (PhoneRequest::PreKeys { id, devices }, Pending::PreKeys)
                    }
                    Need::UploadKeys(upload) => (PhoneRequest::Keys { id, upload }, Pending::Keys),
                    Need::GroupMembers(group) => (
                        PhoneRequest::GroupMetadata {
                            id,
                            jid: group.clone(),
                        },
                        Pending::Group(group),
                    ),
                    Need::Relay(relay) => {
                        let pending = Pending::Relay(relay.id.clone(), relay.to.clone());
                        (PhoneRequest::Relay { id, relay }, pending)
                    }
                    _ => continue,
                };
                self.request(now, id, &request, pending);
            }
            while let Some(event) = self.endpoint.poll_event() {
                worked = true;
                self.endpoint_event(now, event);
            }
            if !worked {
                break;
            }
        }
        if let Some(key) = &self.pickle_key {
            let changes = self.endpoint.take_changes(key);
            if !changes.is_empty() {
                self.events
                    .push_back(PhoneSessionEvent::E2eState(Box::new(changes)));
            }
        }
    }

    fn endpoint_event(&mut self, now: Time, event: EndpointEvent) {
        match event {
            EndpointEvent::Message(received) => {
                self.receipt(now, &received.chat, &received.id, &received.from);
                if received.envelope.message.is_some() {
                    let push = ServerNode::Action(ActionPush::messages(
                        Add::Relay,
                        [received.to_web_message()],
                    ));
                    let devices: Vec<Jid> = self.mirrors.iter().map(|m| m.device.clone()).collect();
                    for device in devices {
                        let _ = self.mirror_push(now, &device, &push);
                    }
                }
                self.events.push_back(PhoneSessionEvent::Message(received));
            }
            EndpointEvent::Undecryptable { from, id, error } => {
                // Retire it (it will never open): the server finds it by sender and id, this
                // account's own messages included.
                let chat = user_of(&from);
                self.receipt(now, &chat, &id, &from);
                self.events
                    .push_back(PhoneSessionEvent::Undecryptable { from, id, error });
            }
            EndpointEvent::Sent { id, t } => {
                if let Some((device, tag, mut info)) = self.mirror_sends.remove(&id) {
                    self.mirror_text(
                        now,
                        &device,
                        &tag,
                        &wa_wire::json::RelayReply::Stored { t }.to_json(),
                    );
                    info.message_timestamp = Some(t);
                    info.status = Some(wa_proto::web_message_info::Status::ServerAck as i32);
                    self.events.push_back(PhoneSessionEvent::MirrorSent(info));
                }
                if let Some(command) = self.sends.remove(&id) {
                    self.events.push_back(PhoneSessionEvent::Answer {
                        id: command,
                        result: Ok(Answer::Sent { id }),
                    });
                }
            }
            EndpointEvent::SendFailed { id, error } => {
                if let Some((device, tag, _)) = self.mirror_sends.remove(&id) {
                    self.mirror_text(
                        now,
                        &device,
                        &tag,
                        &wa_wire::json::status(500, Some(&error)),
                    );
                }
                if let Some(command) = self.sends.remove(&id) {
                    self.events.push_back(PhoneSessionEvent::Answer {
                        id: command,
                        result: Err(PhoneError::NotSent(error)),
                    });
                }
            }
            EndpointEvent::IdentityChanged { user } => {
                self.events
                    .push_back(PhoneSessionEvent::IdentityChanged { jid: user });
            }
            _ => {}
        }
    }

    fn receipt(&mut self, now: Time, chat: &Jid, id: &str, from: &Jid) {
        if !self.config.delivery_receipts || self.state != State::Ready {
            return;
        }
        let participant = Chat::from_jid(chat)
            .is_ok_and(|c| c.is_group())
            .then(|| user_of(from));
        let receipt = Receipt {
            kind: ReceiptKind::Delivered,
            chat: chat.clone(),
            id: id.to_owned(),
            participant,
        };
        let rid = self.next_request_id();
        self.request(
            now,
            rid,
            &PhoneRequest::Receipt { id: rid, receipt },
            Pending::AutoReceipt,
        );
    }

    fn lose(&mut self, now: Time) {
        self.fail_pending();
        self.transmits.push_back(PhoneTransmit::Close);
        let base = u64::try_from(self.config.reconnect_base.as_millis()).unwrap_or(u64::MAX);
        let cap = u64::try_from(self.config.reconnect_cap.as_millis()).unwrap_or(u64::MAX);
        let full = base.saturating_mul(1 << self.attempts.min(30)).min(cap);
        let delay = Duration::from_millis(full / 2 + self.rng.next_u64() % (full / 2 + 1));
        self.attempts = self.attempts.saturating_add(1);
        self.ping_at = None;
        // Registration does not resume by itself: only a login does.
        if self.goal == Goal::Register && self.state != State::Ready {
            self.events
                .push_back(PhoneSessionEvent::Failed(PhoneError::Protocol(
                    "the connection closed during registration".to_owned(),
                )));
            self.state = State::Closed;
            return;
        }
        self.state = State::Backoff;
        self.reconnect_at = Some(now + delay);
        self.events.push_back(PhoneSessionEvent::Disconnected {
            reconnect_in: Some(delay),
        });
    }

    fn stop(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.fail_pending();
        if !matches!(self.state, State::Idle) {
            self.transmits.push_back(PhoneTransmit::Close);
        }
        self.state = State::Closed;
        self.ping_at = None;
        self.reconnect_at = None;
        for (_, command) in std::mem::take(&mut self.sends) {
            self.events.push_back(PhoneSessionEvent::Answer {
                id: command,
                result: Err(PhoneError::Disconnected),
            });
        }
        self.events
            .push_back(PhoneSessionEvent::Disconnected { reconnect_in: None });
    }

    fn fail_pending(&mut self) {
        for (_, (pending, _)) in std::mem::take(&mut self.pending) {
            match pending {
                Pending::Command(command, _) => self.events.push_back(PhoneSessionEvent::Answer {
                    id: command,
                    result: Err(PhoneError::Disconnected),
                }),
                Pending::Devices => self
                    .endpoint
                    .handle_failed(NeedKind::DeviceLists, "disconnected"),
                Pending::PreKeys => self
                    .endpoint
                    .handle_failed(NeedKind::PreKeys, "disconnected"),
                Pending::Group(_) => self
                    .endpoint
                    .handle_failed(NeedKind::GroupMembers, "disconnected"),
                Pending::Keys => self
                    .endpoint
                    .handle_failed(NeedKind::UploadKeys, "disconnected"),
                _ => {}
            }
        }
    }
}
