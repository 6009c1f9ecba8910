//! Test support for wa-rs (not published), in the manner of quinn's `tests/util.rs` and h2's
//! `h2-support`; no sockets, no threads, no sleeps, a virtual clock:
//!
//! - [`Net`]: real web sessions and phones against the real server core (`wa-server-core`) in
//!   memory. Every flow the real server has (linking, restoring, the challenge, reconnects,
//!   the offline queue, keepalive, logout, ...) is tested on it.
//! - [`Harness`] and [`FakeServer`]: one session against a server scripted per test, for what
//!   the real server never does (errors, silence, garbage, replies in any order) and for the
//!   legacy protocol ([`legacy_config`]), which the real server does not relay.
//! - [`fuzz_session`]: the property the `session` fuzz target checks.
//!
//! What it does not do: run anything over a network, or stand for a server in production.
//!
//! Dependencies: the wa-rs crates under test; `rand_chacha`/`rand_core` for the seeds the net
//! hands out (fixed, so that runs repeat); `base64` and `serde_json` to write the fake
//! server's frames.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test support: a panic is a failed test"
)]

mod net;

pub use crate::net::{Net, Phone, Web};

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use wa_binary::{Node, Policy};
use wa_crypto::{LoginSecret, SessionKeys};
use wa_frame::{Direction, Frame, OutMessage, Request, WsMessage};
use wa_session::{Config, Credentials, Event, Session, Time, Transmit};

/// The start of every virtual clock: 2020-05-13 07:53:58 UTC, the time of the vectors.
pub const T0: Time = Time::from_millis(1_589_356_438_000);

/// A session configuration for a legacy client (no end-to-end layer), as the scripted
/// [`FakeServer`] speaks the legacy protocol.
pub fn legacy_config() -> Config {
    let mut config = Config::default();
    config.end_to_end = false;
    config
}

/// A frame from the fake server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// A text frame.
    Text(String),
    /// A binary frame (already sealed).
    Binary(Vec<u8>),
}

/// A session, its virtual clock, and what went in and out.
pub struct Harness {
    /// The session under test.
    pub session: Session,
    /// The virtual time.
    pub now: Time,
    /// Every message the session sent, in order.
    pub sent: Vec<OutMessage>,
    /// Every event the session emitted and the test has not taken yet.
    pub events: VecDeque<Event>,
    /// How often the session asked for a socket.
    pub connects: usize,
    /// How often it closed one.
    pub closes: usize,
    /// Whether a socket is open.
    pub socket_open: bool,
    /// Whether a `Connect` opens the socket at once (otherwise the test calls `open_socket`).
    pub auto_open: bool,
    /// A server answering every sent message, if any.
    pub server: Option<FakeServer>,
}

impl Harness {
    /// A harness around a new session with `config` and a fixed seed, at [`T0`].
    pub fn new(config: Config) -> Harness {
        Harness::with_session(Session::new(config, [42; 32], T0))
    }

    /// A harness around a given session, at [`T0`].
    pub fn with_session(session: Session) -> Harness {
        Harness {
            session,
            now: T0,
            sent: Vec::new(),
            events: VecDeque::new(),
            connects: 0,
            closes: 0,
            socket_open: false,
            auto_open: true,
            server: None,
        }
    }

    /// Attaches a server that answers whatever the session sends.
    #[must_use]
    pub fn with_server(mut self, server: FakeServer) -> Harness {
        self.server = Some(server);
        self
    }

    /// Carries out every transmit and collects every event, feeding the server's answers back
    /// until nothing moves.
    pub fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(transmit) = self.session.poll_transmit() {
                moved = true;
                match transmit {
                    Transmit::Connect => {
                        self.connects += 1;
                        if self.auto_open {
                            self.open_socket();
                        }
                    }
                    Transmit::Close => {
                        self.closes += 1;
                        self.socket_open = false;
                    }
                    Transmit::Send(message) => {
                        let answers = match &mut self.server {
                            Some(server) if self.socket_open => server.answer(self.now, &message),
                            _ => Vec::new(),
                        };
                        self.sent.push(message);
                        for answer in answers {
                            self.deliver(&answer);
                        }
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                moved = true;
                if let (Some(server), Event::Qr { text, .. }) = (&mut self.server, &event) {
                    server.saw_qr(text);
                }
                self.events.push_back(event);
            }
            if let Some(server) = &mut self.server {
                for frame in server.take_pushes() {
                    moved = true;
                    self.deliver(&frame);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The socket the session asked for is open.
    pub fn open_socket(&mut self) {
        self.socket_open = true;
        self.session.handle_connected(self.now);
    }

    /// The socket closes under the session.
    pub fn close_socket(&mut self) {
        self.socket_open = false;
        self.session.handle_closed(self.now);
        self.drive();
    }

    fn deliver(&mut self, frame: &ServerFrame) {
        if !self.socket_open {
            return;
        }
        match frame {
            ServerFrame::Text(text) => self.session.handle_message(self.now, WsMessage::Text(text)),
            ServerFrame::Binary(bytes) => self
                .session
                .handle_message(self.now, WsMessage::Binary(bytes)),
        }
    }

    /// The server sends a text frame.
    pub fn server_text(&mut self, text: &str) {
        self.session.handle_message(self.now, WsMessage::Text(text));
        self.drive();
    }

    /// The server sends a binary frame.
    pub fn server_binary(&mut self, bytes: &[u8]) {
        self.session
            .handle_message(self.now, WsMessage::Binary(bytes));
        self.drive();
    }

    /// Moves the clock forward by `d`, firing every timeout on the way at its own time.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.session.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.session.handle_timeout(self.now);
            self.drive();
        }
        self.now = target;
    }

    /// Takes every event so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// The text messages sent so far.
    pub fn sent_texts(&self) -> Vec<&str> {
        self.sent
            .iter()
            .filter_map(|m| match m {
                OutMessage::Text(t) => Some(t.as_str()),
                OutMessage::Binary(_) => None,
            })
            .collect()
    }

    /// The tag of the last text message whose JSON payload starts with `prefix` (e.g.
    /// `["admin","init"`).
    pub fn tag_of(&self, prefix: &str) -> String {
        self.sent_texts()
            .iter()
            .rev()
            .find(|t| {
                t.split_once(",,")
                    .is_some_and(|(_, json)| json.starts_with(prefix))
            })
            .and_then(|t| t.split(',').next())
            .unwrap_or_else(|| panic!("nothing sent starting with {prefix}"))
            .to_owned()
    }
}

/// What the fake server does when a client logs in with stored credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginScript {
    /// Accept (200), then send a `Conn` with rotated tokens.
    Accept,
    /// Send a challenge first, then accept and send a `Conn` under `s2`.
    Challenge,
    /// Answer with this status.
    Status(u16),
}

/// Answers a binary request node with a reply node, or not at all.
pub type NodeHandler = Box<dyn FnMut(&Node<'_>) -> Option<Node<'static>>>;

/// A scripted server: the server side of PROTOCOL.md §2 for one legacy client, with the key
/// pair of `testdata/crypto.json`. Tests script it to do what the real server never does.
pub struct FakeServer {
    /// The server's X25519 private key.
    pub server_private: [u8; 32],
    /// The keys a link hands out.
    pub keys: SessionKeys,
    /// The account's JID.
    pub wid: String,
    /// Answer to `admin init`: the refs handed out in turn.
    pub refs: Vec<String>,
    /// Answer statuses for rerefs in turn (200 new ref, 304 same, 429 refused).
    pub reref_statuses: VecDeque<u16>,
    /// Scan the QR code as soon as it is shown.
    pub scan: bool,
    /// What to do on `admin login`.
    pub login: LoginScript,
    /// Reply to binary requests: given the request node, the reply node (sealed with the same
    /// tag), or `None` for no reply.
    pub on_node: Option<NodeHandler>,
    /// Answer message sends with `{"status":200}` under the message id.
    pub ack_sends: bool,
    /// Every request node the server opened.
    pub nodes: Vec<Node<'static>>,
    /// How many `Conn`s it sent.
    pub conns: usize,
    pushes: Vec<ServerFrame>,
    qr_public: Option<[u8; 32]>,
    next_ref: usize,
    token_generation: usize,
}

impl Default for FakeServer {
    fn default() -> Self {
        FakeServer::new()
    }
}

impl FakeServer {
    /// The server of the vectors: its key pair and the session keys of `crypto.json`.
    pub fn new() -> FakeServer {
        let mut server_private = [0u8; 32];
        for (i, b) in server_private.iter_mut().enumerate() {
            *b = 0x21 + i as u8;
        }
        let mut enc = [0u8; 32];
        let mut mac = [0u8; 32];
        for i in 0..32 {
            enc[i] = 0xa0 + (i % 16) as u8;
            mac[i] = 0xb0 + (i % 16) as u8;
        }
        FakeServer {
            server_private,
            keys: SessionKeys::new(&enc, &mac),
            wid: "15551234567@c.us".to_owned(),
            refs: vec!["1@Ra1b2c3d4e5f6".to_owned(), "1@Rf6e5d4c3b2a1".to_owned()],
            reref_statuses: VecDeque::new(),
            scan: true,
            login: LoginScript::Accept,
            on_node: None,
            ack_sends: true,
            nodes: Vec::new(),
            conns: 0,
            pushes: Vec::new(),
            qr_public: None,
            next_ref: 0,
            token_generation: 0,
        }
    }

    /// The credentials a client holds after linking with this server.
    pub fn credentials(&self, client_id: &str) -> Credentials {
        Credentials {
            client_id: client_id.to_owned(),
            client_token: "client-token-0".to_owned(),
            server_token: "server-token-0".to_owned(),
            browser_token: "browser-token-0".to_owned(),
            enc_key: *self.keys.enc_key(),
            mac_key: *self.keys.mac_key(),
            wid: self.wid.parse().unwrap(),
            device: 0,
        }
    }

    /// A sealed server→client binary frame carrying `node` under `tag`.
    pub fn seal(&self, tag: &str, node: &Node<'_>) -> Vec<u8> {
        let plain = wa_binary::encode(node, Policy::Server).unwrap();
        let mut out = format!("{tag},").into_bytes();
        self.keys.seal_into(&plain, &[0x5a; 16], &mut out);
        out
    }

    /// The `Conn` this server sends, with the secret when a QR code was scanned.
    pub fn conn(&mut self, secret: Option<String>) -> String {
        self.conns += 1;
        self.token_generation += 1;
        let tokens = [
            format!("client-token-{}", self.token_generation),
            format!("server-token-{}", self.token_generation),
            format!("browser-token-{}", self.token_generation),
        ];
        let wid: wa_wire::Jid = self.wid.parse().unwrap();
        let mut phone = wa_wire::phone::PhoneInfo::default();
        phone.platform = Some("android".to_owned());
        phone.wa_version = Some("2.20.123".to_owned());
        phone.device_manufacturer = Some("ExamplePhone".to_owned());
        phone.device_model = Some("EP1".to_owned());
        wa_wire::json::conn(&wa_wire::json::ConnFields {
            client_token: &tokens[0],
            server_token: &tokens[1],
            browser_token: &tokens[2],
            secret: secret.as_deref(),
            wid: &wid,
            pushname: "Alex Example",
            phone: &phone,
            connected: true,
            r#ref: None,
            device: None,
        })
        .to_string()
    }

    fn saw_qr(&mut self, text: &str) {
        if !self.scan {
            return;
        }
        let Some(public) = text.split(',').nth(1) else {
            return;
        };
        let Ok(bytes) = STANDARD.decode(public) else {
            return;
        };
        let Ok(public) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            return;
        };
        if self.qr_public != Some(public) {
            self.qr_public = Some(public);
            let secret =
                LoginSecret::server_side(&self.server_private, &public, &self.keys).unwrap();
            let conn = self.conn(Some(secret.to_base64()));
            self.pushes.push(ServerFrame::Text(format!("s1,{conn}")));
        }
    }

    fn take_pushes(&mut self) -> Vec<ServerFrame> {
        std::mem::take(&mut self.pushes)
    }

    /// Pushes a frame at the next `drive`.
    pub fn push(&mut self, frame: ServerFrame) {
        self.pushes.push(frame);
    }

    /// The answers to one message from the client.
    pub fn answer(&mut self, _now: Time, message: &OutMessage) -> Vec<ServerFrame> {
        match message {
            OutMessage::Text(text) => self.answer_text(text),
            OutMessage::Binary(bytes) => self.answer_binary(bytes),
        }
    }

    fn answer_text(&mut self, text: &str) -> Vec<ServerFrame> {
        let Ok(Frame::Json { tag, payload }) = Frame::parse(
            WsMessage::Text(text),
            Direction::ClientToServer,
            &wa_frame::Limits::default(),
        ) else {
            return Vec::new();
        };
        let tag = tag.as_str().to_owned();
        let reply = |value: Value| ServerFrame::Text(format!("{tag},{value}"));
        match Request::from_json(payload) {
            Request::Init(_) => {
                let r = self.refs.get(self.next_ref).cloned().unwrap_or_default();
                vec![reply(wa_wire::json::init_reply(&r, 20_000, "", 0))]
            }
            Request::Reref => match self.reref_statuses.pop_front().unwrap_or(200) {
                200 => {
                    self.next_ref += 1;
                    let r = self
                        .refs
                        .get(self.next_ref)
                        .cloned()
                        .unwrap_or_else(|| format!("1@ref{}", self.next_ref));
                    vec![reply(wa_wire::json::reref_reply(200, Some(&r), 20_000))]
                }
                status => vec![reply(wa_wire::json::reref_reply(status, None, 20_000))],
            },
            Request::Login(_) => match self.login.clone() {
                LoginScript::Accept => {
                    // The order real clients read (PROTOCOL.md §2.4): `s1` Conn, then the status.
                    let conn = self.conn(None);
                    vec![
                        ServerFrame::Text(format!("s1,{conn}")),
                        reply(wa_wire::json::status(200, None)),
                    ]
                }
                LoginScript::Challenge => {
                    let challenge = STANDARD.encode([7u8; 32]);
                    vec![ServerFrame::Text(format!(
                        "s1,{}",
                        wa_wire::json::challenge(&challenge)
                    ))]
                }
                LoginScript::Status(status) => vec![reply(wa_wire::json::status(status, None))],
            },
            Request::Challenge(answer) => {
                let expected = self
                    .keys
                    .answer_challenge(&STANDARD.encode([7u8; 32]))
                    .unwrap();
                if answer.answer == expected {
                    let conn = self.conn(None);
                    vec![
                        reply(wa_wire::json::status(200, None)),
                        ServerFrame::Text(format!("s2,{conn}")),
                    ]
                } else {
                    vec![reply(wa_wire::json::status(401, None))]
                }
            }
            Request::Query(args) if args.iter().any(|a| a.as_str() == Some("mediaConn")) => {
                vec![reply(
                    wa_wire::json::MediaConn {
                        auth: "auth-token".to_owned(),
                        ttl: 300,
                        hosts: vec!["media.example".to_owned()],
                        max_bytes: None,
                    }
                    .to_json(),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn answer_binary(&mut self, bytes: &[u8]) -> Vec<ServerFrame> {
        let Ok(Frame::Binary { tag, payload, .. }) = Frame::parse(
            WsMessage::Binary(bytes),
            Direction::ClientToServer,
            &wa_frame::Limits::default(),
        ) else {
            return Vec::new();
        };
        let Ok(plain) = self.keys.open(&payload) else {
            return Vec::new();
        };
        let Ok(node) = wa_binary::decode(&plain) else {
            return Vec::new();
        };
        let node = node.into_owned();
        self.nodes.push(node.clone());
        let tag = tag.as_str().to_owned();
        let is_send = node.attr("type") == Some("relay");
        if let Some(on_node) = &mut self.on_node
            && let Some(reply) = on_node(&node)
        {
            return vec![ServerFrame::Binary(self.seal(&tag, &reply))];
        }
        if is_send && self.ack_sends {
            return vec![ServerFrame::Text(format!(
                "{tag},{}",
                wa_wire::json::RelayReply::Stored { t: 0 }.to_json()
            ))];
        }
        Vec::new()
    }
}

/// The `session` fuzz target's property: arbitrary WebSocket messages (text, raw binary, or
/// binary sealed with the session keys so that the MAC lets them through), time jumps, socket
/// drops and user commands, fed to a linked session in any order, never make it panic, and the
/// requests it keeps waiting never exceed `max_pending`.
pub fn fuzz_session(data: &[u8]) {
    let mut config = legacy_config();
    config.max_pending = 16;
    let mut h =
        Harness::with_session(Session::new(config, [9; 32], T0)).with_server(FakeServer::new());
    h.session.link(h.now).unwrap();
    h.drive();
    assert!(h.session.is_connected());
    let server = h.server.take().unwrap();
    let mut input = data;
    let mut serial = 0u32;
    while let Some((&op, rest)) = input.split_first() {
        let (len, rest) = rest
            .split_first()
            .map_or((0, rest), |(&n, r)| (usize::from(n), r));
        let (chunk, rest) = rest.split_at(len.min(rest.len()));
        input = rest;
        serial += 1;
        match op % 8 {
            0 => h.server_text(&String::from_utf8_lossy(chunk)),
            1 => h.server_binary(chunk),
            2 | 3 => {
                // A sealed node (or any plaintext) under a pending tag or a fresh one.
                let tag = match (op % 8, h.sent.last()) {
                    (2, Some(OutMessage::Binary(b))) => String::from_utf8_lossy(
                        &b[..b.iter().position(|&c| c == b',').unwrap_or(0)],
                    )
                    .into_owned(),
                    _ => format!("s{serial}"),
                };
                let mut frame = format!("{tag},").into_bytes();
                server.keys.seal_into(chunk, &[0x11; 16], &mut frame);
                h.server_binary(&frame);
            }
            4 => h.advance(Duration::from_millis(
                u64::from(chunk.first().copied().unwrap_or(1)) * 1000,
            )),
            5 => {
                let now = h.now;
                let _ = match chunk.first().copied().unwrap_or(0) % 5 {
                    0 => h.session.query_chats(now),
                    1 => h.session.query_contacts(now),
                    2 => h
                        .session
                        .send_text(now, &"15559876543@c.us".parse().unwrap(), "x")
                        .map(|(id, _)| id),
                    3 => h.session.media_conn(now),
                    _ => h.session.query_messages(
                        now,
                        &"15559876543@c.us".parse().unwrap(),
                        20,
                        None,
                    ),
                };
                h.drive();
            }
            6 => h.close_socket(),
            _ => {
                if h.connects > 0 && !h.socket_open && h.session.poll_timeout().is_some() {
                    h.advance(Duration::from_secs(61));
                }
            }
        }
        h.take_events();
        assert!(
            h.session.pending_requests() <= 16,
            "pending requests grew past the limit"
        );
    }
}
