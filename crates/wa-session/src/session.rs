//! The state machine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::Value;
use wa_binary::{Encoder, Policy};
use wa_crypto::{ClientKeyPair, SessionKeys};
use wa_e2e::endpoint::{Endpoint, Need, NeedKind};
use wa_e2e::{Machine, PickleKey, StateKey};
use wa_frame::{
    Browser, ChallengeAnswer, Cmd, Conn, Direction, Frame, Init, InitResponse, Login, LoginMode,
    LoginStatus, OutMessage, Request, RerefResponse, Response, ServerMessage, Tag, TagForm,
    TagGenerator, WsMessage,
};
use wa_wire::Jid;
use wa_wire::json::JsonRequest;
use wa_wire::link::{ClientFeatures, QrCode};
use wa_wire::web::Request as BinRequest;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::{CommandError, LinkError, LoginError, RequestError, SessionError};
use crate::event::{Account, DisconnectReason, Event, RequestId, Transmit};
use wa_wire::Time;

/// The client side of the legacy WhatsApp Web protocol, with no IO, no clock and no OS
/// randomness inside (in the manner of `quinn-proto`), and, unless configured as a legacy
/// client, an end-to-end encryption endpoint.
///
/// # How to drive it
///
/// 1. Create it with [`Session::new`] and start with [`Session::link`] (QR code) or
///    [`Session::restore`] (stored [`Credentials`]).
/// 2. Carry out every [`Transmit`] from [`Session::poll_transmit`]: send a message, close the
///    socket, or open a new one. Report the socket's life with [`Session::handle_connected`] and
///    [`Session::handle_closed`], and every received WebSocket message with
///    [`Session::handle_message`].
/// 3. Handle every [`Event`] from [`Session::poll_event`].
/// 4. Call [`Session::handle_timeout`] when the time of [`Session::poll_timeout`] comes.
///
/// After any `handle_*` call or command, drain `poll_transmit` and `poll_event`, then ask
/// `poll_timeout` again: each call can change all three. Commands (`send_text`, `query_chats`,
/// ...) return a [`RequestId`]; their outcome comes back as [`Event::Reply`].
///
/// Randomness: everything the session draws comes from the seed, except the end-to-end identity
/// and session keys, which `vodozemac` draws from the OS (it offers no seeded generator).
pub struct Session {
    pub(crate) config: Config,
    rng: ChaCha20Rng,
    encoder: Encoder<'static>,
    state: State,
    /// What to do whenever a socket opens.
    goal: Goal,
    client_id: String,
    key_pair: Option<ClientKeyPair>,
    credentials: Option<Credentials>,
    keys: Option<SessionKeys>,
    tags: TagGenerator,
    epoch: u64,
    next_request: u64,
    pending: BTreeMap<String, Pending>,
    transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    /// QR: the current ref, when it expires, and how many rerefs were asked for.
    qr_ref: Option<String>,
    qr_expires: Option<Time>,
    rerefs: u32,
    ping_at: Option<Time>,
    stale_at: Option<Time>,
    reconnect_at: Option<Time>,
    reconnect_attempts: u32,
    announced: bool,
    /// The end-to-end endpoint (none for a legacy client).
    pub(crate) endpoint: Option<Endpoint>,
    pickle_key: Option<PickleKey>,
    /// End-to-end sends waiting for the server: message id → the request that sent it.
    pub(crate) sends: HashMap<String, RequestId>,
    /// The own display name (from the `Conn`), sent with messages.
    pub(crate) name: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("end_to_end", &self.endpoint.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Not started.
    Idle,
    /// Waiting for the driver to open a socket.
    Connecting,
    /// `admin init` sent.
    Initializing,
    /// Showing QR codes.
    WaitingForScan,
    /// `admin login` (or a challenge answer) sent.
    LoggingIn,
    /// Keys known and login accepted (or the QR scanned): requests may go out.
    Connected,
    /// Waiting to reconnect.
    Backoff,
    /// Stopped for good (replaced, logged out, link failed, login failed).
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Link,
    /// Log in with the stored credentials: takeover (user start) or reconnect (automatic).
    Login {
        takeover: bool,
    },
}

struct Pending {
    kind: PendingKind,
    deadline: Time,
}

enum PendingKind {
    Init,
    Reref,
    Login,
    Challenge,
    User(RequestId, UserKind),
    /// A request the end-to-end endpoint needed.
    E2e(E2eKind),
}

/// What the endpoint asked for, to route the answer back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum E2eKind {
    Devices,
    PreKeys,
    Group(Jid),
    Keys,
    Relay(String),
}

/// How to read the reply of a user request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserKind {
    /// A legacy message send, with its id: `{status: 200}` means stored (ack 1).
    SendMessage(String),
    Chats,
    Contacts,
    Statuses,
    Messages,
    MediaConn,
    /// Anything: the raw reply.
    Raw,
    /// A delivery receipt the session sent on its own: its reply (or timeout) is nobody's.
    AutoReceipt,
}

impl Session {
    /// A session with `config`, its randomness drawn from `seed` (client id, key pair, IVs,
    /// message ids, jitter: seed it from the OS, or fix it in tests), starting at `now`.
    pub fn new(config: Config, seed: [u8; 32], now: Time) -> Session {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut client_id = [0u8; 16];
        rng.fill_bytes(&mut client_id);
        let endpoint = config
            .end_to_end
            .then(|| Endpoint::new(Machine::new(unlinked_device())));
        Session {
            config,
            rng,
            encoder: Encoder::new(Policy::Client),
            state: State::Idle,
            goal: Goal::Link,
            client_id: base64_encode(&client_id),
            key_pair: None,
            credentials: None,
            keys: None,
            tags: TagGenerator::new(now.as_secs(), TagForm::Long),
            epoch: 0,
            next_request: 0,
            pending: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            qr_ref: None,
            qr_expires: None,
            rerefs: 0,
            ping_at: None,
            stale_at: None,
            reconnect_at: None,
            reconnect_attempts: 0,
            announced: false,
            endpoint,
            pickle_key: None,
            sends: HashMap::new(),
            name: String::new(),
        }
    }

    /// The same session with a given client identity instead of a random one: the client id
    /// and the X25519 private key of the QR code. For reproducing recorded traffic (the
    /// repository's session vectors, `testdata/session.json`, use a fixed identity); a normal
    /// client keeps the random one.
    #[must_use]
    pub fn with_identity(mut self, client_id: &str, private_key: [u8; 32]) -> Session {
        self.client_id = client_id.to_owned();
        self.key_pair = Some(ClientKeyPair::from_private_key(private_key));
        self
    }

    /// The key that seals the end-to-end state the session hands out in
    /// [`Event::E2eState`] (and that [`Session::restore_end_to_end`] opens). Without one, the
    /// state is not handed out (it lives only as long as the session).
    #[must_use]
    pub fn with_pickle_key(mut self, key: PickleKey) -> Session {
        self.pickle_key = Some(key);
        self
    }

    /// Links a new client by QR code: asks for a socket; [`Event::Qr`] follows.
    ///
    /// A link makes a new device: an end-to-end session that was a device before (linked or
    /// restored, then logged out or unlinked) starts over with new identity keys and none of
    /// that device's sessions; forget the end-to-end state stored for it.
    ///
    /// # Errors
    /// [`CommandError::AlreadyStarted`] unless the session is idle or closed.
    pub fn link(&mut self, _now: Time) -> Result<(), CommandError> {
        self.start(Goal::Link)?;
        self.credentials = None;
        if self
            .endpoint
            .as_ref()
            .is_some_and(|e| *e.machine().own_device() != unlinked_device())
        {
            self.endpoint = Some(Endpoint::new(Machine::new(unlinked_device())));
        }
        Ok(())
    }

    /// Logs in with stored credentials (a "takeover", as when a user opens the web client).
    /// An end-to-end session also needs its end-to-end state: use
    /// [`Session::restore_end_to_end`].
    ///
    /// # Errors
    /// [`CommandError::AlreadyStarted`] unless the session is idle or closed.
    pub fn restore(&mut self, _now: Time, credentials: Credentials) -> Result<(), CommandError> {
        self.start(Goal::Login { takeover: true })?;
        self.client_id = credentials.client_id.clone();
        self.keys = Some(credentials.session_keys());
        self.name.clear();
        self.credentials = Some(credentials);
        Ok(())
    }

    /// Logs in with stored credentials and the stored end-to-end state (the parts of every
    /// [`Event::E2eState`] so far, latest value per key, sealed with the pickle key).
    ///
    /// # Errors
    /// [`CommandError::AlreadyStarted`] unless the session is idle or closed;
    /// [`CommandError::E2eState`] when the state does not open with the pickle key.
    pub fn restore_end_to_end(
        &mut self,
        now: Time,
        credentials: Credentials,
        parts: impl IntoIterator<Item = (StateKey, Vec<u8>)>,
    ) -> Result<(), CommandError> {
        let key = self
            .pickle_key
            .as_ref()
            .ok_or(CommandError::InvalidArgument("no pickle key"))?;
        let device = wa_wire::ids::device_jid(&credentials.wid, credentials.device);
        let machine = Machine::restore(device, parts, key)
            .map_err(|e| CommandError::E2eState(e.to_string()))?;
        self.restore(now, credentials)?;
        self.endpoint = Some(Endpoint::new(machine));
        Ok(())
    }

    fn start(&mut self, goal: Goal) -> Result<(), CommandError> {
        if !matches!(self.state, State::Idle | State::Closed) {
            return Err(CommandError::AlreadyStarted);
        }
        self.goal = goal;
        self.state = State::Connecting;
        self.rerefs = 0;
        self.reconnect_attempts = 0;
        self.transmits.push_back(Transmit::Connect);
        Ok(())
    }

    /// The client id (base64 of 16 bytes) this session introduces itself with.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many requests are waiting for replies (never more than `Config::max_pending`).
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Whether requests can be sent.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The credentials of the link, once there is one.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Whether messages are end-to-end encrypted (else the session is a legacy client).
    pub fn is_end_to_end(&self) -> bool {
        self.endpoint.is_some()
    }

    /// This device's end-to-end identity keys.
    pub fn identity_keys(&self) -> Option<wa_wire::keys::IdentityKeys> {
        self.endpoint.as_ref().map(Endpoint::identity_keys)
    }

    /// The security code with `user` (PROTOCOL.md "Security codes"), once both identities are
    /// known: this account's phone's (pinned from the directory) and theirs.
    pub fn security_code(&self, user: &Jid) -> Option<wa_e2e::SecurityCode> {
        let endpoint = self.endpoint.as_ref()?;
        let own = &self.credentials.as_ref()?.wid;
        let mine = endpoint.machine().known_identity(own)?;
        let theirs = endpoint.machine().known_identity(user)?;
        Some(wa_e2e::security_code(own, &mine, user, &theirs))
    }

    /// The next instruction for the driver.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Time> {
        let deadlines = self.pending.values().map(|p| p.deadline);
        [
            self.qr_expires,
            self.ping_at,
            self.stale_at,
            self.reconnect_at,
        ]
        .into_iter()
        .flatten()
        .chain(deadlines)
        .min()
    }

    /// The socket asked for by [`Transmit::Connect`] is open.
    pub fn handle_connected(&mut self, now: Time) {
        if self.state != State::Connecting {
            return;
        }
        self.state = State::Initializing;
        self.stale_at = None;
        self.ping_at = Some(now + self.ping_delay());
        let features = match &self.endpoint {
            Some(endpoint) => ClientFeatures::end_to_end(endpoint.identity_keys()).to_map(),
            None => None,
        };
        let init = Request::Init(Init {
            version: self.config.version,
            browser: Browser {
                long: self.config.browser.0.clone(),
                short: self.config.browser.1.clone(),
                version: None,
            },
            client_id: self.client_id.clone(),
            last: true,
            features,
        });
        self.send_request_json(now, &init, PendingKind::Init);
    }

    /// The socket closed (or could not be opened).
    pub fn handle_closed(&mut self, now: Time) {
        match self.state {
            State::Idle | State::Closed | State::Backoff => {}
            _ => self.lose_connection(now, DisconnectReason::SocketClosed),
        }
    }

    /// One WebSocket message from the server.
    pub fn handle_message(&mut self, now: Time, message: WsMessage<'_>) {
        if matches!(
            self.state,
            State::Idle | State::Closed | State::Backoff | State::Connecting
        ) {
            return;
        }
        // Anything received proves the connection alive.
        self.stale_at = None;
        self.ping_at = Some(now + self.ping_delay());
        let frame = match Frame::parse(
            message,
            Direction::ServerToClient,
            &self.config.frame_limits,
        ) {
            Ok(frame) => frame,
            Err(e) => {
                return self
                    .events
                    .push_back(Event::Error(SessionError::Frame(e.into())));
            }
        };
        match frame {
            Frame::Pong { .. } | Frame::Keepalive => {}
            Frame::Empty { tag } => {
                if let Some(pending) = self.pending.remove(tag.as_str()) {
                    self.finish(now, pending, Ok(Value::Null));
                }
            }
            Frame::Json { tag, payload } => self.handle_json(now, tag.as_str(), payload),
            Frame::Binary { tag, payload, .. } => self.handle_binary(now, tag.as_str(), &payload),
            // A frame kind this session does not know: nothing to do.
            _ => {}
        }
        self.pump_endpoint(now);
    }

    /// Time passed: fire whatever is due.
    pub fn handle_timeout(&mut self, now: Time) {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for tag in expired {
            if let Some(pending) = self.pending.remove(&tag) {
                self.time_out(now, pending);
            }
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.state = State::Connecting;
            self.transmits.push_back(Transmit::Connect);
        }
        if self.stale_at.is_some_and(|t| t <= now) {
            self.stale_at = None;
            self.lose_connection(now, DisconnectReason::Stale);
            return;
        }
        if self.qr_expires.is_some_and(|t| t <= now) {
            self.qr_expires = None;
            self.reref(now);
        }
        if self.ping_at.is_some_and(|t| t <= now) {
            self.ping_at = Some(now + self.ping_delay());
            self.transmit_text(now, wa_frame::KEEPALIVE.to_owned());
        }
        self.pump_endpoint(now);
    }

    // ---- Commands -------------------------------------------------------------------------

    /// Logs out: tells the server (which unlinks this device), closes the socket, and forgets
    /// the credentials. No reconnect follows.
    pub fn logout(&mut self, now: Time) {
        if matches!(
            self.state,
            State::Initializing | State::WaitingForScan | State::LoggingIn | State::Connected
        ) {
            self.transmit_text(now, wa_frame::logout_frame());
        }
        self.credentials = None;
        self.keys = None;
        self.stop(now, DisconnectReason::LoggedOut);
    }

    /// Sends a JSON query or action as it is; the reply comes back raw.
    ///
    /// # Errors
    /// When not connected or too many requests are waiting.
    pub fn send_json(&mut self, now: Time, payload: Value) -> Result<RequestId, CommandError> {
        self.ready()?;
        let (id, tag) = self.new_request();
        let text = format!("{tag},,{payload}");
        self.track(now, tag, PendingKind::User(id, UserKind::Raw));
        self.transmit_text(now, text);
        Ok(id)
    }

    pub(crate) fn send_json_request(
        &mut self,
        now: Time,
        request: &JsonRequest,
        kind: UserKind,
    ) -> Result<RequestId, CommandError> {
        self.ready()?;
        let (id, tag) = self.new_request();
        let text = format!("{tag},,{}", request.to_request().to_json());
        self.track(now, tag, PendingKind::User(id, kind));
        self.transmit_text(now, text);
        Ok(id)
    }

    /// Sends a binary request and tracks its reply. `tag` is the message id for sends.
    pub(crate) fn send_request(
        &mut self,
        now: Time,
        request: BinRequest,
        kind: UserKind,
        tag: Option<String>,
    ) -> Result<RequestId, CommandError> {
        self.ready()?;
        let id = self.next_request_id();
        self.transmit_request(now, &request, PendingKind::User(id, kind), tag)?;
        Ok(id)
    }

    fn transmit_request(
        &mut self,
        now: Time,
        request: &BinRequest,
        kind: PendingKind,
        tag: Option<String>,
    ) -> Result<(), CommandError> {
        let own = self.own_jid().ok_or(CommandError::NotConnected)?.clone();
        let epoch = self.next_epoch();
        let node = request.to_node(epoch, &own);
        let plain = self.encoder.encode(&node)?;
        let tag = match tag {
            Some(tag) => tag,
            None => self.next_tag(),
        };
        let Some(keys) = &self.keys else {
            return Err(CommandError::NotConnected);
        };
        let Ok(tag_checked) = Tag::new(tag.as_str()) else {
            return Err(CommandError::InvalidArgument(
                "message id is not a valid tag",
            ));
        };
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut iv);
        let mut out = Vec::with_capacity(tag.len() + 3 + wa_crypto::sealed_len(plain.len()));
        wa_frame::binary_header(
            &tag_checked,
            request.metric(),
            request.flags(&own),
            &mut out,
        );
        keys.seal_into(&plain, &iv, &mut out);
        self.track(now, tag, kind);
        self.transmit(now, Transmit::Send(OutMessage::Binary(out)));
        Ok(())
    }

    /// An end-to-end message: queued in the endpoint, which asks for what it needs.
    pub(crate) fn send_end_to_end(
        &mut self,
        now: Time,
        to: &Jid,
        id: String,
        kind: wa_wire::msg::ContentKind,
        message: wa_proto::Message,
    ) -> Result<RequestId, CommandError> {
        self.ready()?;
        let envelope = wa_proto::wars::Envelope {
            message: Some(message),
            push_name: Some(self.name.clone()).filter(|n| !n.is_empty()),
            ..Default::default()
        };
        let request = self.next_request_id();
        let endpoint = self.endpoint.as_mut().ok_or(CommandError::NotConnected)?;
        endpoint
            .send(to, id.clone(), kind, &envelope)
            .map_err(|e| CommandError::Busy(e.to_string()))?;
        self.sends.insert(id, request);
        self.pump_endpoint(now);
        Ok(request)
    }

    /// Carries out what the endpoint needs and reports what it says.
    pub(crate) fn pump_endpoint(&mut self, now: Time) {
        let Some(endpoint) = self.endpoint.as_mut() else {
            return;
        };
        let mut needs = Vec::new();
        while let Some(need) = endpoint.poll_need() {
            needs.push(need);
        }
        let mut events = Vec::new();
        while let Some(event) = endpoint.poll_event() {
            events.push(event);
        }
        let changes = self
            .pickle_key
            .as_ref()
            .map(|key| endpoint.take_changes(key));
        if self.state == State::Connected {
            for need in needs {
                self.carry_out(now, need);
            }
        } else if let Some(endpoint) = self.endpoint.as_mut() {
            // Not connected: what it needs waits for the next connection (it asks again).
            for need in needs {
                endpoint.handle_failed(need_kind(&need), "not connected");
            }
        }
        for event in events {
            self.endpoint_event(now, event);
        }
        if let Some(changes) = changes.filter(|c| !c.is_empty()) {
            self.events.push_back(Event::E2eState(Box::new(changes)));
        }
        // Carrying out needs or events may have produced more.
        if self.endpoint.as_ref().is_some_and(Endpoint::has_work) {
            self.pump_endpoint(now);
        }
    }

    fn carry_out(&mut self, now: Time, need: Need) {
        use wa_wire::web::{Query, SetItem};
        let result = match need {
            Need::DeviceLists(users) => self.transmit_request(
                now,
                &BinRequest::Query(Query::Devices(users)),
                PendingKind::E2e(E2eKind::Devices),
                None,
            ),
            Need::PreKeys(devices) => self.transmit_request(
                now,
                &BinRequest::Query(Query::PreKeys(devices)),
                PendingKind::E2e(E2eKind::PreKeys),
                None,
            ),
            Need::UploadKeys(upload) => self.transmit_request(
                now,
                &BinRequest::Set(vec![SetItem::Keys(upload)]),
                PendingKind::E2e(E2eKind::Keys),
                None,
            ),
            Need::Relay(relay) => {
                let id = relay.id.clone();
                self.transmit_request(
                    now,
                    &BinRequest::Relay(relay),
                    PendingKind::E2e(E2eKind::Relay(id.clone())),
                    Some(id),
                )
            }
            Need::GroupMembers(group) => {
                let (_, tag) = self.new_request();
                let text = format!(
                    "{tag},,{}",
                    JsonRequest::GroupMetadata(group.clone())
                        .to_request()
                        .to_json()
                );
                self.track(now, tag, PendingKind::E2e(E2eKind::Group(group)));
                self.transmit_text(now, text);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.events
                .push_back(Event::Error(SessionError::Message(format!(
                    "end-to-end request not sent: {e}"
                ))));
        }
    }

    /// The next epoch: a counter every binary request carries.
    pub(crate) fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// A fresh message id: `3EB0` and 16 uppercase hex digits, as the official client made them.
    pub(crate) fn new_message_id(&mut self) -> String {
        let mut bytes = [0u8; 8];
        self.rng.fill_bytes(&mut bytes);
        let mut id = String::with_capacity(20);
        id.push_str("3EB0");
        for b in bytes {
            id.push_str(&format!("{b:02X}"));
        }
        id
    }

    /// The next request tag (for requests whose node names their own tag).
    pub(crate) fn next_tag(&mut self) -> String {
        self.tags.next_tag().as_str().to_owned()
    }

    /// The own JID, when linked.
    pub(crate) fn own_jid(&self) -> Option<&Jid> {
        self.credentials.as_ref().map(|c| &c.wid)
    }

    fn ready(&self) -> Result<(), CommandError> {
        if self.state != State::Connected {
            return Err(CommandError::NotConnected);
        }
        if self.pending.len() >= self.config.max_pending {
            return Err(CommandError::TooManyPending(self.pending.len()));
        }
        Ok(())
    }

    fn new_request(&mut self) -> (RequestId, String) {
        let id = self.next_request_id();
        (id, self.next_tag())
    }

    fn next_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        id
    }

    // ---- Incoming ---------------------------------------------------------------------------

    fn handle_json(&mut self, now: Time, tag: &str, payload: Value) {
        if let Some(pending) = self.pending.remove(tag) {
            return self.finish(now, pending, Ok(payload));
        }
        let message = match ServerMessage::from_json(payload) {
            Ok(message) => message,
            Err(e) => {
                let kind = e.kind().to_owned();
                self.events
                    .push_back(Event::Error(SessionError::BadMessage { kind }));
                return self.events.push_back(Event::Other(e.into_value()));
            }
        };
        match message {
            ServerMessage::Conn(conn) => self.handle_conn(now, *conn),
            ServerMessage::Cmd(Cmd::Challenge { challenge, .. }) => {
                self.answer_challenge(now, &challenge)
            }
            ServerMessage::Cmd(cmd @ Cmd::Disconnect { .. }) if cmd.is_replaced() => {
                self.stop(now, DisconnectReason::Replaced);
            }
            ServerMessage::Cmd(Cmd::Disconnect { .. }) => {
                self.credentials = None;
                self.keys = None;
                self.stop(now, DisconnectReason::LoggedOut);
            }
            ServerMessage::Cmd(Cmd::Update { .. }) => self.version_rejected(now),
            other => crate::incoming::server_message(self, now, tag, other),
        }
    }

    fn handle_binary(&mut self, now: Time, tag: &str, payload: &[u8]) {
        let Some(keys) = &self.keys else {
            return self
                .events
                .push_back(Event::Error(SessionError::BinaryBeforeKeys));
        };
        let plain = match keys.open(payload) {
            Ok(plain) => plain,
            Err(e) => return self.events.push_back(Event::Error(SessionError::Open(e))),
        };
        let decoder = wa_binary::Decoder::new().with_limits(self.config.node_limits);
        let node = match decoder.decode(&plain) {
            Ok(node) => node.into_owned(),
            Err(e) => {
                // A reply that does not decode still ends its request.
                if let Some(pending) = self.pending.remove(tag) {
                    self.finish_node(now, pending, Err(RequestError::BadReply(e.to_string())));
                }
                return self.events.push_back(Event::Error(SessionError::Node(e)));
            }
        };
        if let Some(pending) = self.pending.remove(tag) {
            return self.finish_node(now, pending, Ok(node));
        }
        crate::incoming::push(self, now, &node);
    }

    fn handle_conn(&mut self, now: Time, conn: Conn) {
        let account = Account {
            wid: conn.wid.as_deref().and_then(|w| w.parse().ok()),
            pushname: conn.pushname.clone(),
            platform: conn.platform.clone(),
            phone: conn.phone.clone(),
            battery: conn.battery.and_then(|b| u8::try_from(b).ok()),
        };
        if let Some(name) = &conn.pushname {
            self.name.clone_from(name);
        }
        match (self.state, self.goal) {
            (State::WaitingForScan, Goal::Link) => {
                if let Err(e) = self.finish_link(&conn) {
                    self.events.push_back(Event::LinkFailed(e));
                    return self.stop(now, DisconnectReason::LinkFailed);
                }
            }
            (State::LoggingIn | State::Connected, _) => {
                if let Some(credentials) = &mut self.credentials {
                    rotate_tokens(credentials, &conn);
                }
            }
            _ => {
                // A Conn we did not expect: keep it for the user, change nothing.
                return self
                    .events
                    .push_back(Event::Other(ServerMessage::Conn(Box::new(conn)).to_json()));
            }
        }
        if let Some(credentials) = &self.credentials {
            self.events
                .push_back(Event::Credentials(Box::new(credentials.clone())));
        }
        self.connected(now, account);
    }

    /// After the scan: derive the keys from the secret and keep the credentials.
    fn finish_link(&mut self, conn: &Conn) -> Result<(), LinkError> {
        let secret = conn
            .secret
            .as_deref()
            .ok_or(LinkError::IncompleteConn("secret"))?;
        let key_pair = self
            .key_pair
            .take()
            .ok_or(LinkError::IncompleteConn("a QR code"))?;
        let keys = SessionKeys::from_login(key_pair, secret)?;
        let wid: Jid = conn
            .wid
            .as_deref()
            .and_then(|w| w.parse().ok())
            .ok_or(LinkError::IncompleteConn("wid"))?;
        // An end-to-end client learns its device number from the `Conn` (this project's
        // extension, `device`).
        let device = match &self.endpoint {
            Some(_) => conn
                .extra
                .get("device")
                .and_then(Value::as_u64)
                .and_then(|d| u8::try_from(d).ok())
                .filter(|d| *d > 0)
                .ok_or(LinkError::IncompleteConn("device"))?,
            None => 0,
        };
        let credentials = Credentials {
            client_id: self.client_id.clone(),
            client_token: conn
                .client_token
                .clone()
                .ok_or(LinkError::IncompleteConn("clientToken"))?,
            server_token: conn
                .server_token
                .clone()
                .ok_or(LinkError::IncompleteConn("serverToken"))?,
            browser_token: conn.browser_token.clone().unwrap_or_default(),
            enc_key: *keys.enc_key(),
            mac_key: *keys.mac_key(),
            wid: wid.clone(),
            device,
        };
        if let Some(endpoint) = &mut self.endpoint {
            endpoint.set_own_device(wa_wire::ids::device_jid(&wid, device));
        }
        self.keys = Some(keys);
        self.credentials = Some(credentials);
        self.goal = Goal::Login { takeover: false };
        self.qr_expires = None;
        self.qr_ref = None;
        Ok(())
    }

    fn connected(&mut self, now: Time, account: Account) {
        let first = self.state != State::Connected || !self.announced;
        self.state = State::Connected;
        self.reconnect_attempts = 0;
        self.goal = Goal::Login { takeover: false };
        if first {
            self.announced = true;
            self.events.push_back(Event::Connected {
                account: Box::new(account),
            });
            if let Some(endpoint) = &mut self.endpoint {
                endpoint.connected();
            }
            self.pump_endpoint(now);
        }
    }

    fn answer_challenge(&mut self, now: Time, challenge: &str) {
        let (Some(keys), Some(credentials)) = (&self.keys, &self.credentials) else {
            return self.events.push_back(Event::Error(SessionError::Challenge(
                "no session keys".into(),
            )));
        };
        let answer = match keys.answer_challenge(challenge) {
            Ok(answer) => answer,
            Err(e) => {
                return self
                    .events
                    .push_back(Event::Error(SessionError::Challenge(e.to_string())));
            }
        };
        let request = Request::Challenge(ChallengeAnswer {
            answer,
            server_token: credentials.server_token.clone(),
            client_id: self.client_id.clone(),
        });
        // The login waits on: its status comes after the challenge's `Conn`.
        self.state = State::LoggingIn;
        self.send_request_json(now, &request, PendingKind::Challenge);
    }

    /// A reply to a request of ours (JSON, or `Null` for an empty payload).
    fn finish(&mut self, now: Time, pending: Pending, reply: Result<Value, RequestError>) {
        let response = reply.map(|value| match value {
            Value::Object(map) => Response::from_map(map),
            // An empty payload (`tag,`): no data.
            Value::Null => Response::from_map(serde_json::Map::new()),
            other => Response::from_map(serde_json::Map::from_iter([("value".to_owned(), other)])),
        });
        match pending.kind {
            PendingKind::Init => self.init_done(now, response),
            PendingKind::Reref => self.reref_done(now, response),
            PendingKind::Login => self.login_done(now, response),
            PendingKind::Challenge => self.challenge_done(now, response),
            PendingKind::User(_, UserKind::AutoReceipt) => {}
            PendingKind::User(id, kind) => {
                let result = response.and_then(|r| crate::incoming::json_reply(kind, r));
                self.events.push_back(Event::Reply { id, result });
            }
            PendingKind::E2e(kind) => crate::incoming::e2e_json_reply(self, kind, response),
        }
    }

    fn finish_node(
        &mut self,
        now: Time,
        pending: Pending,
        node: Result<wa_binary::Node<'static>, RequestError>,
    ) {
        match pending.kind {
            PendingKind::User(_, UserKind::AutoReceipt) => {}
            PendingKind::User(id, kind) => {
                let result = node.and_then(|node| crate::incoming::node_reply(kind, node));
                self.events.push_back(Event::Reply { id, result });
            }
            PendingKind::E2e(kind) => crate::incoming::e2e_node_reply(self, kind, node),
            // Login requests are answered in JSON; a binary answer is a protocol error.
            other => self.finish(
                now,
                Pending {
                    kind: other,
                    deadline: now,
                },
                Err(RequestError::BadReply(
                    "binary reply to a login request".into(),
                )),
            ),
        }
    }

    fn time_out(&mut self, now: Time, pending: Pending) {
        match pending.kind {
            PendingKind::User(_, UserKind::AutoReceipt) => {}
            PendingKind::User(id, _) => {
                self.events.push_back(Event::Reply {
                    id,
                    result: Err(RequestError::Timeout),
                });
            }
            PendingKind::E2e(kind) => crate::incoming::e2e_failed(self, &kind, "timed out"),
            // A login step that gets no answer: the connection is as good as stale.
            _ => self.lose_connection(now, DisconnectReason::Stale),
        }
    }

    fn init_done(&mut self, now: Time, response: Result<Response, RequestError>) {
        let response = match response {
            Ok(response) => response,
            Err(_) => return self.lose_connection(now, DisconnectReason::Stale),
        };
        match self.goal {
            Goal::Link => match InitResponse::from_response(&response) {
                Ok(init) => {
                    let key_pair = self
                        .key_pair
                        .get_or_insert_with(|| ClientKeyPair::generate(&mut self.rng));
                    let public = *key_pair.public_key();
                    let ttl = Duration::from_millis(init.ttl.unwrap_or(20_000));
                    self.state = State::WaitingForScan;
                    self.show_qr(now, init.r#ref, public, ttl);
                }
                Err(e) => {
                    self.events
                        .push_back(Event::LinkFailed(LinkError::InitRejected(e.to_string())));
                    self.stop(now, DisconnectReason::LinkFailed);
                }
            },
            Goal::Login { takeover } => {
                match response.status {
                    Some(200) => {}
                    // The server is busy or broken: retry with backoff, like a 500 on login.
                    Some(status) if status >= 500 || status == 429 => {
                        return self.lose_connection(now, DisconnectReason::SocketClosed);
                    }
                    other => return self.login_failed(now, LoginError::Other(other.unwrap_or(0))),
                }
                let Some(credentials) = &self.credentials else {
                    return self.stop(now, DisconnectReason::LoginFailed);
                };
                let mode = if takeover {
                    LoginMode::Takeover
                } else {
                    LoginMode::Reconnect {
                        own_jid: credentials.wid.to_string(),
                    }
                };
                let login = Request::Login(Login {
                    client_token: credentials.client_token.clone(),
                    server_token: credentials.server_token.clone(),
                    client_id: self.client_id.clone(),
                    mode,
                });
                self.state = State::LoggingIn;
                self.send_request_json(now, &login, PendingKind::Login);
            }
        }
    }

    fn show_qr(&mut self, now: Time, qr_ref: String, public_key: [u8; 32], ttl: Duration) {
        let expires_at = now + ttl;
        let qr = QrCode {
            r#ref: qr_ref.clone(),
            public_key,
            client_id: self.client_id.clone(),
            identity: self.endpoint.as_ref().map(Endpoint::identity_keys),
        };
        self.qr_ref = Some(qr_ref);
        self.qr_expires = Some(expires_at);
        self.events.push_back(Event::Qr {
            text: qr.to_string(),
            expires_at,
        });
    }

    /// The QR code expired: ask for a new ref, or give up after `max_rerefs`.
    fn reref(&mut self, now: Time) {
        if self.state != State::WaitingForScan {
            return;
        }
        if self.rerefs >= self.config.max_rerefs {
            self.events
                .push_back(Event::LinkFailed(LinkError::Expired(self.rerefs + 1)));
            return self.stop(now, DisconnectReason::LinkFailed);
        }
        self.rerefs += 1;
        self.send_request_json(now, &Request::Reref, PendingKind::Reref);
    }

    fn reref_done(&mut self, now: Time, response: Result<Response, RequestError>) {
        let public = match &self.key_pair {
            Some(key_pair) => *key_pair.public_key(),
            None => return,
        };
        match response.map(|r| RerefResponse::from_response(&r)) {
            Ok(Ok(RerefResponse::NewRef { r#ref, ttl })) => {
                self.show_qr(
                    now,
                    r#ref,
                    public,
                    Duration::from_millis(ttl.unwrap_or(20_000)),
                );
            }
            Ok(Ok(RerefResponse::Unchanged { r#ref, ttl })) => {
                let Some(current) = r#ref.or_else(|| self.qr_ref.clone()) else {
                    return;
                };
                self.show_qr(
                    now,
                    current,
                    public,
                    Duration::from_millis(ttl.unwrap_or(20_000)),
                );
            }
            Ok(Ok(RerefResponse::Refused)) => {
                self.events
                    .push_back(Event::LinkFailed(LinkError::RerefRefused));
                self.stop(now, DisconnectReason::LinkFailed);
            }
            Ok(Err(e)) => {
                self.events
                    .push_back(Event::LinkFailed(LinkError::InitRejected(e.to_string())));
                self.stop(now, DisconnectReason::LinkFailed);
            }
            Ok(Ok(_)) => {
                self.events
                    .push_back(Event::LinkFailed(LinkError::InitRejected(
                        "unknown reref answer".into(),
                    )));
                self.stop(now, DisconnectReason::LinkFailed);
            }
            Err(_) => self.lose_connection(now, DisconnectReason::Stale),
        }
    }

    fn login_done(&mut self, now: Time, response: Result<Response, RequestError>) {
        let response = match response {
            Ok(response) => response,
            Err(_) => return self.lose_connection(now, DisconnectReason::Stale),
        };
        match LoginStatus::from_response(&response) {
            // Logged in: the `Conn` that rotates the tokens came before (or comes now).
            Ok(LoginStatus::Ok) => {}
            Ok(LoginStatus::Unpaired) => self.login_failed(now, LoginError::Unpaired),
            Ok(LoginStatus::AccessDenied { tos }) => {
                self.login_failed(now, LoginError::AccessDenied { tos })
            }
            Ok(LoginStatus::AlreadyLoggedIn) => self.login_failed(now, LoginError::AlreadyLoggedIn),
            Ok(LoginStatus::LoggedInElsewhere) => {
                self.login_failed(now, LoginError::LoggedInElsewhere)
            }
            Ok(LoginStatus::Expired) => self.login_failed(now, LoginError::Expired),
            Ok(LoginStatus::ServerError) => self.login_failed(now, LoginError::ServerError),
            Ok(LoginStatus::Other(code)) => self.login_failed(now, LoginError::Other(code)),
            Ok(_) => self.login_failed(now, LoginError::Other(0)),
            Err(e) => {
                self.events
                    .push_back(Event::Error(SessionError::BadMessage {
                        kind: e.to_string(),
                    }));
                self.login_failed(now, LoginError::Other(0));
            }
        }
    }

    fn challenge_done(&mut self, now: Time, response: Result<Response, RequestError>) {
        match response {
            // Accepted: a new Conn follows.
            Ok(r) if r.status.is_none_or(|s| s == 200) => {}
            Ok(r) => self.login_failed(now, LoginError::ChallengeRejected(r.status.unwrap_or(0))),
            Err(_) => self.lose_connection(now, DisconnectReason::Stale),
        }
    }

    fn login_failed(&mut self, now: Time, error: LoginError) {
        // 500 (and a server that is merely busy) is worth retrying; the rest is final.
        let retry = matches!(error, LoginError::ServerError);
        let forget = matches!(
            error,
            LoginError::Unpaired | LoginError::AccessDenied { .. } | LoginError::Expired
        );
        self.events.push_back(Event::LoginFailed {
            error,
            forget_credentials: forget,
        });
        if forget {
            self.credentials = None;
            self.keys = None;
        }
        if retry {
            self.lose_connection(now, DisconnectReason::SocketClosed);
        } else {
            self.stop(now, DisconnectReason::LoginFailed);
        }
    }

    fn version_rejected(&mut self, now: Time) {
        match self.goal {
            Goal::Link if self.credentials.is_none() => {
                self.events
                    .push_back(Event::LinkFailed(LinkError::VersionRejected));
            }
            _ => self.events.push_back(Event::LoginFailed {
                error: LoginError::VersionRejected,
                forget_credentials: false,
            }),
        }
        self.stop(now, DisconnectReason::VersionRejected);
    }

    // ---- Connection life ----------------------------------------------------------------------

    /// The connection is gone but the session goes on: fail what waits, and plan a reconnect
    /// when there is something to reconnect to.
    fn lose_connection(&mut self, now: Time, reason: DisconnectReason) {
        if matches!(self.state, State::Closed | State::Idle) {
            return;
        }
        self.fail_pending();
        self.clear_timers();
        self.transmits.push_back(Transmit::Close);
        let delay = self.backoff();
        self.reconnect_attempts = self.reconnect_attempts.saturating_add(1);
        self.reconnect_at = Some(now + delay);
        self.state = State::Backoff;
        self.announced = false;
        if self.credentials.is_some() {
            self.goal = Goal::Login { takeover: false };
        }
        self.events.push_back(Event::Disconnected {
            reason,
            reconnect_in: Some(delay),
        });
    }

    /// Stops for good.
    fn stop(&mut self, _now: Time, reason: DisconnectReason) {
        if self.state == State::Closed {
            return;
        }
        self.fail_pending();
        self.clear_timers();
        self.key_pair = None;
        if self.state != State::Idle {
            self.transmits.push_back(Transmit::Close);
        }
        self.state = State::Closed;
        self.announced = false;
        for (_, request) in std::mem::take(&mut self.sends) {
            self.events.push_back(Event::Reply {
                id: request,
                result: Err(RequestError::Disconnected),
            });
        }
        self.events.push_back(Event::Disconnected {
            reason,
            reconnect_in: None,
        });
    }

    fn fail_pending(&mut self) {
        for (_, pending) in std::mem::take(&mut self.pending) {
            match pending.kind {
                PendingKind::User(id, kind) if kind != UserKind::AutoReceipt => {
                    self.events.push_back(Event::Reply {
                        id,
                        result: Err(RequestError::Disconnected),
                    });
                }
                // A relay in flight is sent again on the next connection (the endpoint keeps
                // it); what it fetched is asked again.
                PendingKind::E2e(E2eKind::Relay(_)) => {}
                PendingKind::E2e(kind) => crate::incoming::e2e_failed(self, &kind, "disconnected"),
                _ => {}
            }
        }
    }

    fn clear_timers(&mut self) {
        self.ping_at = None;
        self.stale_at = None;
        self.qr_expires = None;
        self.reconnect_at = None;
    }

    /// The next reconnect delay: `base · 2^attempts`, capped, with the top half jittered.
    fn backoff(&mut self) -> Duration {
        let base = self.config.reconnect_base.as_millis() as u64;
        let cap = self.config.reconnect_cap.as_millis() as u64;
        let full = base
            .saturating_mul(1u64 << self.reconnect_attempts.min(30))
            .min(cap);
        let half = full / 2;
        let jitter = if half == 0 {
            0
        } else {
            self.rng.next_u64() % (half + 1)
        };
        Duration::from_millis(half + jitter)
    }

    fn ping_delay(&mut self) -> Duration {
        random_in(&mut self.rng, &self.config.ping_after)
    }

    // ---- Sending ------------------------------------------------------------------------------

    fn send_request_json(&mut self, now: Time, request: &Request, kind: PendingKind) {
        let tag = self.tags.next_tag();
        let text = request.to_frame(&tag);
        self.track(now, tag.as_str().to_owned(), kind);
        self.transmit_text(now, text);
    }

    fn track(&mut self, now: Time, tag: String, kind: PendingKind) {
        let deadline = now + self.config.request_timeout;
        self.pending.insert(tag, Pending { kind, deadline });
    }

    fn transmit_text(&mut self, now: Time, text: String) {
        self.transmit(now, Transmit::Send(OutMessage::Text(text)));
    }

    /// Every send arms the stale timer, unless it already runs.
    fn transmit(&mut self, now: Time, transmit: Transmit) {
        if self.stale_at.is_none() {
            self.stale_at = Some(now + random_in(&mut self.rng, &self.config.stale_after));
        }
        self.transmits.push_back(transmit);
    }

    /// Sends the automatic delivery receipt for a message.
    pub(crate) fn auto_receipt(
        &mut self,
        now: Time,
        chat: &Jid,
        id: &str,
        participant: Option<&Jid>,
    ) {
        use wa_wire::msg::{Receipt, ReceiptKind};
        use wa_wire::web::SetItem;
        let receipt = Receipt {
            kind: ReceiptKind::Delivered,
            chat: chat.clone(),
            id: id.to_owned(),
            participant: participant.cloned(),
        };
        let request = BinRequest::Set(vec![SetItem::Receipt(receipt)]);
        if let Err(e) = self.send_request(now, request, UserKind::AutoReceipt, None) {
            self.events
                .push_back(Event::Error(SessionError::Message(format!(
                    "no receipt sent: {e}"
                ))));
        }
    }
}

fn need_kind(need: &Need) -> NeedKind {
    match need {
        Need::DeviceLists(_) => NeedKind::DeviceLists,
        Need::PreKeys(_) => NeedKind::PreKeys,
        Need::GroupMembers(_) => NeedKind::GroupMembers,
        Need::UploadKeys(_) => NeedKind::UploadKeys,
        // A relay that cannot go out stays in the endpoint and goes on the next connection.
        _ => NeedKind::Relay,
    }
}

/// The placeholder device of an end-to-end machine before it knows its number (set when the
/// link completes).
fn unlinked_device() -> Jid {
    Jid::server_only(wa_binary::Server::User)
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rotate_tokens(credentials: &mut Credentials, conn: &Conn) {
    if let Some(token) = &conn.client_token {
        credentials.client_token.clone_from(token);
    }
    if let Some(token) = &conn.server_token {
        credentials.server_token.clone_from(token);
    }
    if let Some(token) = &conn.browser_token {
        credentials.browser_token.clone_from(token);
    }
    if let Some(wid) = conn.wid.as_deref().and_then(|w| w.parse().ok()) {
        credentials.wid = wid;
    }
}

/// A duration drawn uniformly from `range` (its start when the range is empty).
fn random_in(rng: &mut ChaCha20Rng, range: &std::ops::Range<Duration>) -> Duration {
    let lo = range.start.as_millis() as u64;
    let hi = range.end.as_millis() as u64;
    if hi <= lo {
        return range.start;
    }
    Duration::from_millis(lo + rng.next_u64() % (hi - lo))
}
