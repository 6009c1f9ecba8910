//! One web client connection (`/ws`): the server side of the legacy protocol for end-to-end
//! clients, as a state machine.
//!
//! Before it logs in, a connection may only `admin init` (get a QR ref), reref (at most
//! `max_rerefs` per connection, across inits), log in with tokens, answer a challenge, ping and
//! ask whether the phone is up; a binary frame closes it, and so does not logging in within the
//! linking window. After a QR scan or a login, binary requests are opened with the device's
//! frame keys and answered under their tag; pushes go out under `s<n>` tags.
//!
//! **Architecture Invariant:** a connection acts only as the device its keys belong to: the
//! sender, author, reader and receipt device of everything it does come from the login, never
//! from the request.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};
use serde_json::Value;
use wa_binary::{Encoder, Node, Policy};
use wa_crypto::SessionKeys;
use wa_frame::{Direction, Frame, Metric, OutMessage, Request, WsMessage};
use wa_wire::Jid;
use wa_wire::ids::valid_client_id;
use wa_wire::json::{self, ConnFields, JsonRequest, MediaConn, RelayReply};
use wa_wire::link::ClientFeatures;
use wa_wire::web::{Query, Request as BinRequest, ServerNode, SetItem};
use zeroize::Zeroizing;

use crate::action::{Action, DisconnectKind, LinkApproval, Push, Target};
use crate::budget::{Budgets, Kind};
use crate::config::Config;
use crate::job::{Issued, Job, JobId, Outcome, Refusal};
use crate::jobs::accounts::{self, Linking, LoginRequest};
use crate::jobs::relay::{self, RelayLimits, RelayRefused, SetLimits, SetRequest};
use crate::jobs::{Done, Effects, Grant, LoginRefused, Me, ReplyTo, Tokens, groups, keys};
use crate::maps::Set;
use crate::model::{FrameKeys, RefRecord};
use crate::rate::Limiter;
use crate::store::StoreError;
use wa_wire::Time;

/// The web client version the init reply announces as current (`curr`), as the real service
/// did in 2021; clients only show it.
const CURRENT_WEB_VERSION: &str = "2.2142.12";

/// Queue entries a connection remembers having delivered, to drop the second copy of an entry
/// that came both from the queue and live; beyond this the memory starts over (a duplicate is
/// then possible, never a loss).
const MAX_REMEMBERED: usize = 100_000;

/// Messages delivered from the queue when a device comes online.
const QUEUE_BATCH: usize = 10_000;

#[derive(Debug, Clone)]
struct ClientHello {
    client_id: String,
    browser: String,
    features: ClientFeatures,
}

struct Challenge {
    number: String,
    device: u8,
    /// What the answer must be; for a mirror client, unknown until its phone says.
    expected: Option<Zeroizing<[u8; 32]>>,
    login_tag: String,
    /// A mirror client's challenge: the ref the phone answers to, and until when it may.
    mirror: Option<(String, Time)>,
}

/// How long a mirror client's login waits for its phone to answer the challenge.
const MIRROR_CHALLENGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How a connection became authenticated: decides the order of what it is sent.
enum Became {
    Linked,
    LoggedIn {
        tag: String,
    },
    Challenged {
        answer_tag: String,
        login_tag: String,
    },
}

/// The server side of one web client's socket, without IO.
///
/// Feed it with `handle_*`, then drain [`WebConnection::poll_action`] and ask
/// [`WebConnection::poll_timeout`] again.
pub struct WebConnection {
    config: Arc<Config>,
    rng: ChaCha20Rng,
    encoder: Encoder<'static>,
    actions: VecDeque<Action>,
    /// Its jobs, and outcomes that came early.
    jobs: Issued,
    idle_deadline: Time,
    /// Until it logs in: when it is closed.
    link_deadline: Option<Time>,
    client: Option<ClientHello>,
    rerefs: u32,
    current_ref: Option<(String, Time)>,
    keys: Option<SessionKeys>,
    /// (Shared with the jobs of its requests.)
    me: Option<Arc<Me>>,
    name: String,
    limiter: Limiter,
    next_push: u64,
    delivered: Set<u64>,
    challenge: Option<Challenge>,
    /// The login whose answer waits for its `Conn` (challenge answers).
    pending_secret: Option<Zeroizing<String>>,
    linking: bool,
    phone_online: bool,
    /// A legacy client linked as a mirror of its phone: its binary frames go to the phone
    /// unopened (the server has no keys for them).
    mirror: bool,
    /// A mirror client's challenge, sent once its phone says what the answer must be.
    pending_challenge: Option<Zeroizing<[u8; 32]>>,
    budgets: Option<Arc<Mutex<Budgets>>>,
    peer: Option<IpAddr>,
    closed: bool,
}

impl std::fmt::Debug for WebConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConnection")
            .field("me", &self.me.as_ref().map(|m| &m.address))
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl WebConnection {
    /// A new connection at `now`, its randomness (refs, tokens, keys, IVs) drawn from `seed`.
    pub fn new(config: Arc<Config>, seed: [u8; 32], now: Time) -> WebConnection {
        let limiter = Limiter::new(&config.limits, now);
        WebConnection {
            idle_deadline: now + config.idle_timeout,
            link_deadline: Some(now + config.link_window()),
            config,
            rng: ChaCha20Rng::from_seed(seed),
            encoder: Encoder::new(Policy::Server),
            actions: VecDeque::new(),
            jobs: Issued::default(),
            client: None,
            rerefs: 0,
            current_ref: None,
            keys: None,
            me: None,
            name: String::new(),
            limiter,
            next_push: 0,
            delivered: Set::default(),
            challenge: None,
            pending_secret: None,
            linking: false,
            phone_online: false,
            mirror: false,
            pending_challenge: None,
            budgets: None,
            peer: None,
            closed: false,
        }
    }

    /// Shares the node's budgets per account and per address with this connection.
    #[must_use]
    pub fn with_budgets(mut self, budgets: Arc<Mutex<Budgets>>) -> Self {
        self.budgets = Some(budgets);
        self
    }

    /// The client's address (for the budgets per address).
    #[must_use]
    pub fn with_peer(mut self, peer: IpAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Whether the account (and, for sends, the address) may spend one `kind` now.
    fn spend(&self, now: Time, number: Option<&str>, kind: Kind) -> bool {
        let Some(budgets) = &self.budgets else {
            return true;
        };
        let mut budgets = budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let account_ok = number.is_none_or(|n| budgets.allow_account(n, kind, now));
        let address_ok = match (self.peer, kind) {
            (Some(peer), Kind::Send | Kind::Register) => budgets.allow_address(peer, kind, now),
            _ => true,
        };
        account_ok && address_ok
    }

    /// Jobs this connection issued whose outcomes it has not handled yet (running, or held
    /// for an earlier one's): a driver reads no more requests while this is at its limit.
    pub fn jobs_in_flight(&self) -> u64 {
        self.jobs.in_flight()
    }

    /// The next thing for the driver to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`WebConnection::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.closed {
            return None;
        }
        let challenge = self
            .challenge
            .as_ref()
            .and_then(|c| c.mirror.as_ref())
            .map(|(_, t)| *t);
        [self.link_deadline, challenge, Some(self.idle_deadline)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the connection is over (a `Close` was emitted).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The device this connection is, once logged in.
    pub fn device(&self) -> Option<&Jid> {
        self.me.as_ref().map(|m| &m.address)
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.closed {
            return;
        }
        if let Some(challenge) = self
            .challenge
            .take_if(|c| c.mirror.as_ref().is_some_and(|(_, t)| *t <= now))
        {
            // The phone did not answer: it is offline, and only it can check the answer.
            if let Some((r, _)) = &challenge.mirror {
                self.actions.push_back(Action::ForgetRef(r.clone()));
            }
            self.send_json(
                &challenge.login_tag,
                &json::status(503, Some("the phone is offline")),
            );
        }
        if self.link_deadline.is_some_and(|t| t <= now) {
            tracing::debug!("not logged in within the linking window: closing");
            return self.close();
        }
        if self.idle_deadline <= now {
            tracing::debug!("idle: closing");
            self.close();
        }
    }

    /// The socket closed.
    pub fn handle_closed(&mut self, _now: Time) {
        if let Some((r, _)) = self.current_ref.take() {
            self.actions.push_back(Action::ForgetRef(r.clone()));
            self.job(accounts::forget_ref(r));
        }
        self.closed = true;
    }

    /// One WebSocket message from the client.
    pub fn handle_message(&mut self, now: Time, message: WsMessage<'_>) {
        if self.closed {
            return;
        }
        self.idle_deadline = now + self.config.idle_timeout;
        if let (true, WsMessage::Binary(bytes)) = (self.mirror, &message) {
            return self.mirror_frame(now, bytes);
        }
        let frame = match Frame::parse(
            message,
            Direction::ClientToServer,
            &self.config.limits.frame,
        ) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(error = %e, "bad frame: closing");
                return self.close();
            }
        };
        match frame {
            Frame::Keepalive => self.send_text(format!("!{}", now.as_millis())),
            Frame::Json { tag, payload } => self.on_json(now, tag.as_str(), payload),
            Frame::Binary {
                tag,
                header,
                payload,
            } => {
                let receipt = header
                    .is_some_and(|h| h.metric == Metric::RECEIVED || h.metric == Metric::READ);
                self.on_binary(now, tag.as_str(), receipt, &payload);
            }
            _ => {}
        }
    }

    /// A push from another connection (through the driver's hub).
    pub fn handle_push(&mut self, now: Time, push: Push) {
        if self.closed {
            return;
        }
        match push {
            Push::Deliver { seq, message } if self.me.is_some() && self.remember(seq) => {
                self.push_node(&ServerNode::Incoming(vec![message]));
            }
            Push::Resync if !self.mirror => {
                if let Some(me) = &self.me {
                    let device = me.address.clone();
                    self.job(relay::queue(device, QUEUE_BATCH));
                }
            }
            Push::Ack(notice) if self.me.is_some() => self.send_push(&json::ack(&notice)),
            Push::Presence(notice) if self.me.is_some() => self.send_push(&json::presence(&notice)),
            Push::Group(notice) if self.me.is_some() => {
                self.send_push(&json::group_change(&notice))
            }
            Push::Notification(n) if self.me.is_some() => {
                self.push_node(&ServerNode::Notification(n));
            }
            Push::LinkApproved(approval) => self.link_approved(now, approval),
            Push::MirrorSend { frames } if self.mirror && self.me.is_some() => {
                for frame in frames {
                    let message = match frame {
                        wa_wire::phone::MirrorFrame::Text(text) => OutMessage::Text(text),
                        wa_wire::phone::MirrorFrame::Binary(bytes) => OutMessage::Binary(bytes),
                    };
                    self.actions.push_back(Action::Send(message));
                }
            }
            Push::MirrorChallengeAnswer { expected } => {
                if let Some(challenge) = self
                    .challenge
                    .as_mut()
                    .filter(|c| c.mirror.is_some() && c.expected.is_none())
                    && let Ok(expected) = <[u8; 32]>::try_from(expected.as_slice())
                {
                    challenge.expected = Some(Zeroizing::new(expected));
                    if let Some((r, _)) = challenge.mirror.take() {
                        self.actions.push_back(Action::ForgetRef(r));
                    }
                    if let Some(c) = self.pending_challenge.take() {
                        self.send_push(&json::challenge(&STANDARD.encode(*c)));
                    }
                }
            }
            Push::PhoneReachable(up) => {
                let was = std::mem::replace(&mut self.phone_online, up);
                if was && !up && self.me.is_some() {
                    self.send_push(&json::stream_asleep());
                }
            }
            Push::Disconnect(kind) => {
                match kind {
                    DisconnectKind::Replaced => self.send_push(&json::replaced()),
                    DisconnectKind::Unlinked => self.send_push(&json::unlinked()),
                    DisconnectKind::Shutdown => {}
                }
                self.close();
            }
            _ => {}
        }
    }

    /// The outcome of a job this connection asked for. Outcomes are handled in the order the
    /// jobs were issued: one that comes before an earlier job's waits for it.
    pub fn handle_job(&mut self, now: Time, id: JobId, result: Result<Outcome, StoreError>) {
        let mut turn = self.jobs.arrived(id, result);
        while let Some((id, result)) = turn {
            self.outcome(now, id, result);
            turn = self.jobs.next();
        }
    }

    fn outcome(&mut self, now: Time, id: JobId, result: Result<Outcome, StoreError>) {
        let done = match result {
            Ok(Outcome(done)) => done,
            Err(e) => {
                tracing::error!(job = id.0, error = %e, "store job failed: closing the connection");
                return self.close();
            }
        };
        if self.closed {
            // Its effects still happen (a stored message is still delivered to the others).
            if let Some(effects) = effects_of(done) {
                self.push_all(effects);
            }
            return;
        }
        match done {
            Done::RefStored { tag, reply, r#ref } => {
                if self.current_ref.as_ref().is_some_and(|(r, _)| *r == r#ref) {
                    self.send_json(&tag, &reply);
                }
            }
            Done::Login {
                tag,
                result,
                challenged,
            } => self.logged_in(now, tag, result.map(|grant| *grant), challenged),
            Done::Linked(result) => {
                self.linking = false;
                match result {
                    Ok((mut grant, effects)) => {
                        grant.secret = self.pending_secret.take().map(|s| s.to_string());
                        self.push_all(effects);
                        self.authenticated(now, *grant, Became::Linked);
                    }
                    Err(refusal) => tracing::info!(%refusal, "link not made"),
                }
            }
            Done::Queue(items) => {
                for (seq, message) in items {
                    if self.remember(seq) {
                        self.push_node(&ServerNode::Incoming(vec![message]));
                    }
                }
            }
            Done::Relay { reply_to, result } => {
                let reply = match result {
                    Ok((t, effects)) => {
                        self.push_all(effects);
                        RelayReply::Stored { t }
                    }
                    Err(RelayRefused::Mismatch { missing, extra }) => {
                        RelayReply::Mismatch { missing, extra }
                    }
                    Err(RelayRefused::Refused(r)) => RelayReply::Refused {
                        status: r.status,
                        reason: r.reason.into_owned(),
                    },
                };
                self.reply_json(&reply_to, &reply.to_json());
            }
            Done::Set {
                reply_to,
                result,
                effects,
            } => {
                self.push_all(effects);
                let reply = match result {
                    Ok(ok) => match (ok.gid, ok.key_count) {
                        (Some(gid), _) => json::group_reply(Some(&gid)),
                        (None, Some(count)) => json::keys_reply(count),
                        (None, None) => json::status(200, None),
                    },
                    Err(r) => refusal_json(&r),
                };
                self.reply_json(&reply_to, &reply);
            }
            Done::Devices { reply_to, lists } => {
                self.reply_node(&reply_to, &ServerNode::Devices(lists))
            }
            Done::PreKeys {
                reply_to,
                claimed,
                effects,
            } => {
                self.push_all(effects);
                self.reply_node(&reply_to, &ServerNode::PreKeys(claimed));
            }
            Done::GroupMetadata { reply_to, result } => {
                let reply = result.map_or_else(|r| refusal_json(&r), |m| m.to_json());
                self.reply_json(&reply_to, &reply);
            }
            Done::Exists { reply_to, exists } => {
                self.reply_json(
                    &reply_to,
                    &json::status(if exists { 200 } else { 404 }, None),
                );
            }
            Done::Subscribe {
                reply_to,
                jid,
                allowed,
            } => {
                if allowed {
                    self.actions.push_back(Action::Subscribe(jid));
                    self.reply_json(&reply_to, &json::status(200, None));
                } else {
                    self.reply_json(
                        &reply_to,
                        &json::status(403, Some("no chat with this user")),
                    );
                }
            }
            Done::MediaAuth { reply_to, auth } => {
                let conn = MediaConn {
                    auth,
                    ttl: self.config.media_auth_ttl.as_secs(),
                    hosts: vec![self.config.media_host.clone()],
                    max_bytes: Some(self.config.limits.max_media_len),
                };
                self.reply_json(&reply_to, &conn.to_json());
            }
            Done::LoggedOut { effects } => {
                self.push_all(effects);
                self.close();
            }
            other => {
                if let Some(effects) = effects_of(other) {
                    self.push_all(effects);
                }
            }
        }
    }

    // ---- JSON ---------------------------------------------------------------------------------

    fn on_json(&mut self, now: Time, tag: &str, payload: Value) {
        match Request::from_json(payload) {
            Request::Init(init) => self.init(now, tag, &init),
            Request::Reref => self.reref(now, tag),
            Request::Login(login) => self.login(now, tag, login),
            Request::Challenge(answer) => self.challenge_answer(now, tag, &answer),
            Request::Disconnect => self.logout(now),
            Request::Test => {
                let pong = json::pong(self.phone_online);
                self.send_json(tag, &pong);
            }
            request @ (Request::Query(_) | Request::Action(_)) => {
                let Some(me) = self.me.clone() else {
                    return self.send_json(tag, &json::status(401, Some("log in first")));
                };
                let reply_to = ReplyTo::Tag(tag.to_owned());
                if !self.spend(now, Some(&me.number), Kind::Query) {
                    return self.send_json(
                        tag,
                        &json::status(429, Some("over this account's budget: slow down")),
                    );
                }
                match JsonRequest::from_request(&request) {
                    Ok(Some(JsonRequest::MediaConn)) => {
                        let auth = self.token();
                        let expires = (now + self.config.media_auth_ttl).as_secs();
                        self.job(relay::media_auth(
                            reply_to,
                            me.number.clone(),
                            auth,
                            expires,
                        ));
                    }
                    Ok(Some(JsonRequest::Exist(jid))) => self.job(relay::exists(reply_to, jid)),
                    Ok(Some(JsonRequest::Status(_))) => {
                        self.send_json(tag, &json::status_text_reply(""))
                    }
                    Ok(Some(JsonRequest::GroupMetadata(gid))) => {
                        self.job(groups::metadata(reply_to, me, gid))
                    }
                    Ok(Some(JsonRequest::SubscribePresence(jid))) => {
                        self.job(relay::subscribe(reply_to, me, jid))
                    }
                    Ok(Some(_) | None) => {
                        self.send_json(tag, &json::status(400, Some("unknown request")))
                    }
                    Err(e) => self.send_json(tag, &json::status(400, Some(&e.to_string()))),
                }
            }
            _ => self.send_json(tag, &json::status(400, Some("unknown request"))),
        }
    }

    fn init(&mut self, now: Time, tag: &str, init: &wa_frame::Init) {
        if self.me.is_some() {
            return self.send_json(tag, &json::status(400, Some("already logged in")));
        }
        if init.version < self.config.min_client_version {
            tracing::debug!(version = ?init.version, "client too old");
            self.send_push(&json::update_required());
            return self.close();
        }
        if !valid_client_id(&init.client_id) {
            return self.send_json(tag, &json::status(400, Some("not a client id")));
        }
        let features = match ClientFeatures::from_init(init) {
            Ok(features) => features,
            Err(e) => return self.send_json(tag, &json::status(400, Some(&e.to_string()))),
        };
        let browser: String = format!("{} / {}", init.browser.long, init.browser.short)
            .chars()
            .take(64)
            .collect();
        self.client = Some(ClientHello {
            client_id: init.client_id.clone(),
            browser,
            features,
        });
        self.new_ref(now, tag, |r, ttl, time| {
            json::init_reply(r, ttl, CURRENT_WEB_VERSION, time)
        });
    }

    fn new_ref(&mut self, now: Time, tag: &str, reply: impl FnOnce(&str, u64, u64) -> Value) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let r = format!("1@{}", self.token());
        let expires = now + self.config.ref_ttl;
        let replaced = self
            .current_ref
            .replace((r.clone(), expires))
            .map(|(old, _)| old);
        if let Some(old) = &replaced {
            self.actions.push_back(Action::ForgetRef(old.clone()));
        }
        self.actions.push_back(Action::RegisterRef(r.clone()));
        let record = RefRecord {
            client_id: client.client_id,
            browser: client.browser,
            identity: client.features.end_to_end,
            expires: expires.as_millis(),
            approved_by: None,
        };
        let reply = reply(&r, millis(self.config.ref_ttl), now.as_millis());
        self.job(accounts::store_ref(
            tag.to_owned(),
            reply,
            r,
            record,
            replaced,
        ));
    }

    fn reref(&mut self, now: Time, tag: &str) {
        if self.client.is_none() || self.me.is_some() {
            return self.send_json(tag, &json::status(400, Some("no init")));
        }
        if self.rerefs >= self.config.max_rerefs {
            return self.send_json(tag, &json::reref_reply(429, None, 0));
        }
        self.rerefs += 1;
        // Asked well before the current ref expires: 304, keep showing it for what is left of
        // its time. A ref about to expire (a tenth of its life left) is replaced instead.
        let grace = self.config.ref_ttl / 10;
        if let Some((r, expires)) = &self.current_ref
            && *expires > now + grace
        {
            let left = expires.since(now);
            let reply = json::reref_reply(304, Some(r), millis(left));
            return self.send_json(tag, &reply);
        }
        self.new_ref(now, tag, |r, ttl, _| json::reref_reply(200, Some(r), ttl));
    }

    fn login(&mut self, now: Time, tag: &str, login: wa_frame::Login) {
        if self.me.is_some() {
            return self.send_json(tag, &json::status(405, None));
        }
        let Some(client) = &self.client else {
            return self.send_json(tag, &json::status(400, Some("no init")));
        };
        if login.client_id != client.client_id {
            return self.send_json(tag, &json::status(401, None));
        }
        let claimed = match &login.mode {
            wa_frame::LoginMode::Reconnect { own_jid } => match own_jid.parse::<Jid>() {
                Ok(jid) => Some(jid),
                Err(_) => return self.send_json(tag, &json::status(401, None)),
            },
            _ => None,
        };
        let request = LoginRequest {
            tag: tag.to_owned(),
            client_id: login.client_id.clone(),
            client_token: Zeroizing::new(login.client_token.clone()),
            server_token: Zeroizing::new(login.server_token.clone()),
            claimed,
            new_tokens: self.tokens(),
            token_idle_ttl_secs: self.config.token_idle_ttl.as_secs(),
        };
        self.job(accounts::login(request, now));
    }

    fn logged_in(
        &mut self,
        now: Time,
        tag: String,
        result: Result<Grant, LoginRefused>,
        challenged: bool,
    ) {
        match result {
            Ok(grant) => {
                let became = match (challenged, self.challenge.take()) {
                    (true, Some(challenge)) => Became::Challenged {
                        answer_tag: tag,
                        login_tag: challenge.login_tag,
                    },
                    _ => Became::LoggedIn { tag },
                };
                self.authenticated(now, grant, became);
            }
            Err(LoginRefused::Status(status)) => {
                tracing::info!(status, "login refused");
                self.send_json(&tag, &json::status(status, None));
            }
            Err(LoginRefused::Challenge(device)) => {
                let mut challenge = Zeroizing::new([0u8; 32]);
                self.rng.fill_bytes(&mut *challenge);
                match device.frame_keys.as_ref().and_then(FrameKeys::session_keys) {
                    Some(keys) => {
                        self.challenge = Some(Challenge {
                            number: device.number.clone(),
                            device: device.device,
                            expected: Some(Zeroizing::new(keys.challenge_response(&*challenge))),
                            login_tag: tag,
                            mirror: None,
                        });
                        self.send_push(&json::challenge(&STANDARD.encode(*challenge)));
                    }
                    None => {
                        // A mirror client: only its phone has its keys, so the phone says what
                        // the answer must be (and if it is offline, nobody can).
                        let r = format!("challenge@{}", self.token());
                        let Ok(phone) = wa_wire::ids::user_jid(&device.number) else {
                            return self.send_json(&tag, &json::status(401, None));
                        };
                        self.actions.push_back(Action::RegisterRef(r.clone()));
                        self.actions.push_back(Action::Push {
                            target: Target::Device(phone),
                            push: Push::MirrorChallenge {
                                device: device.address(),
                                r#ref: r.clone(),
                                challenge: challenge.to_vec(),
                            },
                        });
                        self.challenge = Some(Challenge {
                            number: device.number.clone(),
                            device: device.device,
                            expected: None,
                            login_tag: tag,
                            mirror: Some((r, now + MIRROR_CHALLENGE_TIMEOUT)),
                        });
                        self.pending_challenge = Some(challenge);
                    }
                }
            }
        }
    }

    fn challenge_answer(&mut self, now: Time, tag: &str, answer: &wa_frame::ChallengeAnswer) {
        use subtle::ConstantTimeEq as _;
        let Some(challenge) = &self.challenge else {
            return self.send_json(tag, &json::status(400, Some("no challenge")));
        };
        let given = STANDARD
            .decode(answer.answer.as_bytes())
            .unwrap_or_default();
        let right: bool = challenge
            .expected
            .as_ref()
            .is_some_and(|expected| bool::from(given.as_slice().ct_eq(expected.as_slice())));
        let same_client = self
            .client
            .as_ref()
            .is_some_and(|c| c.client_id == answer.client_id);
        if !right || !same_client {
            self.challenge = None;
            return self.send_json(tag, &json::status(401, None));
        }
        let (number, device) = (challenge.number.clone(), challenge.device);
        let tokens = self.tokens();
        self.job(accounts::challenged(
            tag.to_owned(),
            number,
            device,
            tokens,
            now,
        ));
    }

    fn logout(&mut self, now: Time) {
        match self.me.clone() {
            Some(me) => self.job(accounts::logout(me, now)),
            None => self.close(),
        }
    }

    // ---- Linking ------------------------------------------------------------------------------

    fn link_approved(&mut self, now: Time, approval: LinkApproval) {
        let waiting = self
            .current_ref
            .as_ref()
            .is_some_and(|(r, _)| *r == approval.r#ref);
        let Some(client) = self
            .client
            .clone()
            .filter(|_| waiting && self.me.is_none() && !self.linking)
        else {
            tracing::warn!("a link approval for a ref this connection does not wait on: ignored");
            return;
        };
        let (secret, frame_keys) = match &approval.mirror {
            // A mirror client: the phone made its keys and its secret.
            Some(mirror) => (mirror.secret.clone(), None),
            None => {
                let mut enc = Zeroizing::new([0u8; 32]);
                let mut mac = Zeroizing::new([0u8; 32]);
                let mut server_private = Zeroizing::new([0u8; 32]);
                self.rng.fill_bytes(&mut *enc);
                self.rng.fill_bytes(&mut *mac);
                self.rng.fill_bytes(&mut *server_private);
                let keys = SessionKeys::new(&enc, &mac);
                match wa_crypto::LoginSecret::server_side(
                    &server_private,
                    &approval.public_key,
                    &keys,
                ) {
                    Ok(secret) => (secret.to_base64(), Some(FrameKeys::new(&enc, &mac))),
                    Err(e) => {
                        tracing::info!(error = %e, "the QR code's key is unusable");
                        return;
                    }
                }
            }
        };
        if approval.mirror.is_some() != client.features.end_to_end.is_none() {
            tracing::warn!("a link approval of the wrong kind for this client: ignored");
            return;
        }
        self.pending_secret = Some(Zeroizing::new(secret));
        self.linking = true;
        let linking = Linking {
            client_id: client.client_id,
            browser: client.browser,
            approval,
            tokens: self.tokens(),
            frame_keys,
            max_linked: self.config.max_linked_devices,
        };
        self.job(accounts::finish_link(linking, now));
    }

    /// Keys and identity installed: the `Conn` (and what must come with it, in the order real
    /// clients read it), registration in the hub, then the queue.
    fn authenticated(&mut self, _now: Time, grant: Grant, became: Became) {
        self.mirror = grant.device.mode == crate::model::DeviceMode::Mirror;
        let keys = grant
            .device
            .frame_keys
            .as_ref()
            .and_then(FrameKeys::session_keys);
        if keys.is_none() && !self.mirror {
            tracing::error!("stored frame keys do not decode");
            return self.close();
        }
        let Some(me) = Me::new(&grant.account.number, grant.device.device) else {
            return self.close();
        };
        self.keys = keys;
        self.name.clone_from(&grant.account.name);
        self.link_deadline = None;
        self.challenge = None;
        if let Some((r, _)) = self.current_ref.take() {
            self.actions.push_back(Action::ForgetRef(r.clone()));
            if !matches!(became, Became::Linked) {
                self.job(accounts::forget_ref(r));
            }
        }
        self.actions.push_back(Action::Register {
            number: me.number.clone(),
            device: me.address.clone(),
        });
        let conn = json::conn(&ConnFields {
            client_token: &grant.tokens.client,
            server_token: &grant.tokens.server,
            browser_token: &grant.tokens.browser,
            secret: grant.secret.as_deref(),
            wid: &me.user,
            pushname: &grant.account.name,
            phone: &grant.account.phone,
            connected: self.phone_online,
            r#ref: grant.r#ref.as_deref(),
            device: (grant.device.mode == crate::model::DeviceMode::EndToEnd)
                .then_some(grant.device.device),
        });
        let stream = json::stream_update(&self.config.server_version);
        let props = json::props(1024, self.config.limits.max_group_size as u64, 960);
        match became {
            Became::Linked => {
                self.send_push(&conn);
                self.send_push(&stream);
                self.send_push(&props);
            }
            Became::LoggedIn { tag } => {
                self.send_push(&conn);
                self.send_json(&tag, &json::status(200, None));
                self.send_push(&stream);
                self.send_push(&props);
            }
            Became::Challenged {
                answer_tag,
                login_tag,
            } => {
                self.send_json(&answer_tag, &json::status(200, None));
                self.send_push(&conn);
                self.send_json(&login_tag, &json::status(200, None));
                self.send_push(&stream);
                self.send_push(&props);
            }
        }
        let device = me.address.clone();
        let phone = me.user.clone();
        self.me = Some(Arc::new(me));
        if self.mirror {
            // A mirror client has no queue of its own: its phone sends it what it should show.
            self.actions.push_back(Action::Push {
                target: Target::Device(phone),
                push: Push::MirrorOnline { device },
            });
        } else {
            self.job(relay::queue(device, QUEUE_BATCH));
        }
    }

    /// A mirror client's binary frame: carried to its phone unopened (the server has no keys),
    /// or refused at once when the phone is offline.
    fn mirror_frame(&mut self, now: Time, bytes: &[u8]) {
        let Some(me) = self.me.clone() else {
            return self.close();
        };
        if bytes.len() > self.config.limits.frame.max_frame_len {
            return self.close();
        }
        let tag = bytes
            .iter()
            .take(129)
            .position(|&b| b == b',')
            .and_then(|end| std::str::from_utf8(bytes.get(..end)?).ok())
            .map(str::to_owned);
        let Some(tag) = tag else { return self.close() };
        if !self.limiter.allow(now, false) {
            return self.send_json(&tag, &json::status(429, Some("too many requests")));
        }
        if !self.phone_online {
            return self.send_json(&tag, &json::status(503, Some("the phone is offline")));
        }
        self.actions.push_back(Action::Push {
            target: Target::Device(me.user.clone()),
            push: Push::Mirror {
                device: me.address.clone(),
                frame: wa_wire::phone::MirrorFrame::Binary(bytes.to_vec()),
            },
        });
    }

    // ---- Binary -------------------------------------------------------------------------------

    fn on_binary(&mut self, now: Time, tag: &str, receipt: bool, payload: &[u8]) {
        let (Some(keys), Some(me)) = (&self.keys, self.me.clone()) else {
            tracing::warn!("binary frame before keys: closing");
            return self.close();
        };
        if !self.limiter.allow(now, receipt) {
            return self.send_json(tag, &json::status(429, Some("too many requests")));
        }
        let plain = match keys.open(payload) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(error = %e, "binary frame fails to open: closing");
                return self.close();
            }
        };
        let decoder = wa_binary::Decoder::new().with_limits(self.config.limits.node);
        let node = match decoder.decode(&plain) {
            Ok(node) => node,
            Err(e) => return self.send_json(tag, &json::status(400, Some(&e.to_string()))),
        };
        let request = match BinRequest::from_node(&node) {
            Ok(request) => request,
            Err(e) => return self.send_json(tag, &json::status(400, Some(&e.to_string()))),
        };
        self.on_request(now, tag, me, request);
    }

    fn on_request(&mut self, now: Time, tag: &str, me: Arc<Me>, request: BinRequest) {
        let reply_to = ReplyTo::Tag(tag.to_owned());
        let kind = match &request {
            BinRequest::Relay(_) | BinRequest::LegacyRelay(_) => Kind::Send,
            BinRequest::Set(items) if items.iter().all(|i| matches!(i, SetItem::Receipt(_))) => {
                Kind::Receipt
            }
            BinRequest::Set(items) if items.iter().all(|i| matches!(i, SetItem::Presence(_))) => {
                Kind::Presence
            }
            _ => Kind::Query,
        };
        if !self.spend(now, Some(&me.number), kind) {
            return self.send_json(
                tag,
                &json::status(429, Some("over this account's budget: slow down")),
            );
        }
        match request {
            BinRequest::Relay(message) => {
                let size: usize = message.group.as_ref().map_or(0, Vec::len)
                    + message
                        .targets
                        .iter()
                        .filter_map(|t| t.olm.as_ref())
                        .map(|o| o.body.len())
                        .sum::<usize>();
                if size > self.config.limits.max_relay_bytes {
                    let reply = RelayReply::Refused {
                        status: 413,
                        reason: format!(
                            "{size} bytes of ciphertext: the limit is {}",
                            self.config.limits.max_relay_bytes
                        ),
                    };
                    return self.send_json(tag, &reply.to_json());
                }
                let limits = RelayLimits::of(&self.config);
                self.job(relay::relay(
                    reply_to,
                    me,
                    message,
                    now,
                    limits,
                    relay::AckOne::EveryDevice,
                ));
            }
            BinRequest::LegacyRelay(_) => {
                let reply = RelayReply::Refused {
                    status: 400,
                    reason: "readable messages are refused: this server relays end-to-end ciphertext only".to_owned(),
                };
                self.send_json(tag, &reply.to_json());
            }
            BinRequest::Set(items) => {
                let items = items
                    .into_iter()
                    .filter_map(|item| match item {
                        SetItem::Receipt(r) => Some(SetRequest::Receipt(r)),
                        SetItem::Presence(p) => Some(SetRequest::Presence(p)),
                        SetItem::Group { action, .. } => Some(SetRequest::Group(action)),
                        SetItem::Keys(k) => Some(SetRequest::Keys(k)),
                        _ => None,
                    })
                    .collect();
                let limits = self.set_limits();
                self.job(relay::set(reply_to, me, items, now, limits));
            }
            BinRequest::Query(Query::Devices(users)) => {
                self.job(keys::device_lists(reply_to, users))
            }
            BinRequest::Query(Query::PreKeys(devices)) => {
                let low = self.config.limits.low_one_time_keys;
                self.job(keys::claim(reply_to, devices, low));
            }
            // This server keeps no chat list, contacts or history: they come from the phone.
            BinRequest::Query(Query::Chats) => {
                self.reply_node(&reply_to, &ServerNode::Chats(Vec::new()))
            }
            BinRequest::Query(Query::Contacts) => {
                self.reply_node(&reply_to, &ServerNode::Contacts(Vec::new()))
            }
            // Nor status lines (PROTOCOL.md §3.4): an empty answer, not an error.
            BinRequest::Query(Query::Status) => {
                self.reply_node(&reply_to, &ServerNode::Statuses(Vec::new()))
            }
            BinRequest::Query(Query::Messages(_)) => self.reply_node(
                &reply_to,
                &ServerNode::Action(wa_wire::legacy::ActionPush::messages(
                    wa_wire::legacy::Add::Before,
                    [],
                )),
            ),
            _ => self.send_json(tag, &json::status(400, Some("unknown request"))),
        }
    }

    fn set_limits(&self) -> SetLimits {
        SetLimits::of(&self.config)
    }

    // ---- Output -------------------------------------------------------------------------------

    fn job(&mut self, job: Job) {
        self.actions.push_back(Action::Job {
            id: self.jobs.issue(),
            job: Box::new(job),
        });
    }

    fn push_all(&mut self, effects: Effects) {
        for (target, push) in effects {
            self.actions.push_back(Action::Push { target, push });
        }
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.actions.push_back(Action::Close);
        }
    }

    fn send_text(&mut self, text: String) {
        self.actions.push_back(Action::Send(OutMessage::Text(text)));
    }

    fn send_json(&mut self, tag: &str, value: &Value) {
        self.send_text(format!("{tag},{value}"));
    }

    fn send_push(&mut self, value: &Value) {
        let tag = self.push_tag();
        self.send_json(&tag, value);
    }

    fn reply_json(&mut self, reply_to: &ReplyTo, value: &Value) {
        if let ReplyTo::Tag(tag) = reply_to {
            self.send_json(tag, value);
        }
    }

    fn reply_node(&mut self, reply_to: &ReplyTo, node: &ServerNode) {
        if let ReplyTo::Tag(tag) = reply_to {
            self.send_node(tag, node);
        }
    }

    fn push_tag(&mut self) -> String {
        self.next_push += 1;
        format!("s{}", self.next_push)
    }

    fn push_node(&mut self, node: &ServerNode) {
        let tag = self.push_tag();
        self.send_node(&tag, node);
    }

    /// A sealed server→client binary frame: `tag,` then the sealed node.
    fn send_node(&mut self, tag: &str, node: &ServerNode) {
        let Some(keys) = &self.keys else { return };
        let node: Node<'static> = node.to_node();
        let plain = match self.encoder.encode(&node) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::error!(error = %e, "node does not encode");
                return;
            }
        };
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut iv);
        let mut out = Vec::with_capacity(tag.len() + 1 + wa_crypto::sealed_len(plain.len()));
        out.extend_from_slice(tag.as_bytes());
        out.push(b',');
        keys.seal_into(&plain, &iv, &mut out);
        self.actions
            .push_back(Action::Send(OutMessage::Binary(out)));
    }

    /// Whether queue entry `seq` is new to this connection (and remembers it).
    fn remember(&mut self, seq: u64) -> bool {
        if self.delivered.len() >= MAX_REMEMBERED {
            self.delivered.clear();
        }
        self.delivered.insert(seq)
    }

    fn token(&mut self) -> String {
        let mut bytes = [0u8; 24];
        self.rng.fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    fn tokens(&mut self) -> Tokens {
        Tokens {
            client: self.token(),
            server: format!("1@{}", self.token()),
            browser: format!("1@{}", self.token()),
        }
    }
}

/// The effects carried by an outcome, for a connection that is gone or did not expect it.
pub(crate) fn effects_of(done: Done) -> Option<Effects> {
    match done {
        Done::Relay {
            result: Ok((_, effects)),
            ..
        }
        | Done::Set { effects, .. }
        | Done::PreKeys { effects, .. }
        | Done::LoggedOut { effects }
        | Done::Swept { effects, .. }
        | Done::Unlinked {
            result: Ok(effects),
            ..
        }
        | Done::Linked(Ok((_, effects))) => Some(effects),
        Done::Verified {
            result: Ok((_, effects)),
            ..
        }
        | Done::LinkApproved {
            result: Ok((_, effects)),
            ..
        } => Some(effects),
        _ => None,
    }
}

pub(crate) fn refusal_json(r: &Refusal) -> Value {
    json::status(r.status, Some(&r.reason))
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
