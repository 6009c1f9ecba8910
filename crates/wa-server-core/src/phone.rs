//! One phone connection (`/phone`): the server side of this project's phone protocol
//! ([`wa_wire::phone`]), as a state machine.
//!
//! A phone registers a number with a code delivered out of band and binds it to its identity key
//! (`register`, `verify`), or logs in by signing a fresh challenge with that key (`hello`,
//! `auth`). Until then it may do nothing else, and it must finish within
//! [`Config::phone_login_timeout`](crate::Config::phone_login_timeout).
//!
//! **Architecture Invariant:** a phone connection acts only as the account whose identity key
//! signed its challenge (or proved its code); nothing it sends names another account as itself.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng as _};
use wa_frame::OutMessage;
use wa_wire::Jid;
use wa_wire::ids::{user_jid, valid_number};
use wa_wire::link::QrCode;
use wa_wire::phone::{
    Challenge, Claims, DeviceLists, Empty, GroupCreated, KeyCount, Linked, LinkedDevices,
    MAX_RECEIPTS, MediaAuth, PhoneEvent, PhoneRequest, Ready, Stored, auth_message,
};
use zeroize::Zeroizing;

use crate::action::{Action, DisconnectKind, Push};
use crate::budget::{Budgets, Kind};
use crate::config::Config;
use crate::job::{Issued, Job, JobId, Outcome, Refusal};
use crate::jobs::accounts::{self, Verification};
use crate::jobs::relay::{self, RelayLimits, RelayRefused, SetLimits, SetRequest};
use crate::jobs::{Done, Effects, Me, ReplyTo, groups, keys, verify_signature};
use crate::maps::Set;
use crate::rate::Limiter;
use crate::store::StoreError;
use crate::web::effects_of;
use wa_wire::Time;

/// Queue entries a phone connection remembers having delivered (see the web connection).
const MAX_REMEMBERED: usize = 100_000;

enum State {
    Fresh,
    Challenged {
        number: String,
        nonce: [u8; 32],
        ed25519: [u8; 32],
    },
    /// (Shared with the jobs of its requests.)
    Authenticated(Arc<Me>),
}

/// The server side of one phone's socket, without IO.
pub struct PhoneConnection {
    config: Arc<Config>,
    rng: ChaCha20Rng,
    actions: VecDeque<Action>,
    /// Its jobs, and outcomes that came early.
    jobs: Issued,
    state: State,
    login_deadline: Option<Time>,
    idle_deadline: Time,
    limiter: Limiter,
    /// `link` requests waiting for their web client: `(ref, request id, deadline)`.
    pending_links: Vec<(String, u64, Time)>,
    delivered: Set<u64>,
    budgets: Option<Arc<Mutex<Budgets>>>,
    peer: Option<IpAddr>,
    closed: bool,
}

impl std::fmt::Debug for PhoneConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.state {
            State::Authenticated(me) => Some(me.number.as_str()),
            _ => None,
        };
        f.debug_struct("PhoneConnection")
            .field("number", &who)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Links a phone may wait for at once.
const MAX_PENDING_LINKS: usize = 8;

impl PhoneConnection {
    /// A new connection at `now`, its randomness (codes, nonces) drawn from `seed`.
    pub fn new(config: Arc<Config>, seed: [u8; 32], now: Time) -> PhoneConnection {
        PhoneConnection {
            login_deadline: Some(now + config.phone_login_timeout),
            idle_deadline: now + config.idle_timeout,
            limiter: Limiter::new(&config.limits, now),
            config,
            rng: ChaCha20Rng::from_seed(seed),
            actions: VecDeque::new(),
            jobs: Issued::default(),
            state: State::Fresh,
            pending_links: Vec::new(),
            delivered: Set::default(),
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

    /// When [`PhoneConnection::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.closed {
            return None;
        }
        let links = self.pending_links.iter().map(|(_, _, t)| *t);
        links
            .chain(self.login_deadline)
            .chain(std::iter::once(self.idle_deadline))
            .min()
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The account, once logged in.
    pub fn number(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated(me) => Some(&me.number),
            _ => None,
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.closed {
            return;
        }
        if self.login_deadline.is_some_and(|t| t <= now) || self.idle_deadline <= now {
            return self.close();
        }
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_links)
            .into_iter()
            .partition(|(_, _, t)| *t <= now);
        self.pending_links = waiting;
        for (_, id, _) in due {
            self.send(&PhoneEvent::error(
                Some(id),
                410,
                "the web client did not finish linking",
            ));
        }
    }

    /// The socket closed.
    pub fn handle_closed(&mut self, _now: Time) {
        self.closed = true;
    }

    /// One text message from the phone.
    pub fn handle_message(&mut self, now: Time, text: &str) {
        if self.closed {
            return;
        }
        self.idle_deadline = now + self.config.idle_timeout;
        if text.len() > self.config.limits.frame.max_frame_len {
            self.send(&PhoneEvent::error(None, 413, "message too large"));
            return self.close();
        }
        let request = match PhoneRequest::from_text(text) {
            Ok(request) => request,
            Err(e) => {
                return self.send(&PhoneEvent::error(
                    None,
                    400,
                    format!("not a phone request: {e}"),
                ));
            }
        };
        let id = request.id();
        let receipt = matches!(
            request,
            PhoneRequest::Receipt { .. } | PhoneRequest::Receipts { .. }
        );
        if !self.limiter.allow(now, receipt) {
            return self.send(&PhoneEvent::error(Some(id), 429, "too many requests"));
        }
        let me = match &self.state {
            State::Authenticated(me) => Some(Arc::clone(me)),
            _ => None,
        };
        match (request, me) {
            (PhoneRequest::Register { id, number, .. }, None) => {
                if !valid_number(&number) {
                    return self.send(&PhoneEvent::error(
                        Some(id),
                        400,
                        "not a phone number (5 to 20 digits)",
                    ));
                }
                // Codes cost the server a message to the number: budgeted per client address.
                if !self.spend(now, None, Kind::Register) {
                    return self.send(&PhoneEvent::error(
                        Some(id),
                        429,
                        "too many registration codes asked from this address: try again later",
                    ));
                }
                let code = Zeroizing::new(format!("{:06}", self.rng.next_u32() % 1_000_000));
                let ttl = u64::try_from(self.config.code_ttl.as_millis()).unwrap_or(u64::MAX);
                self.job(accounts::issue_code(id, number, code, now, ttl));
            }
            (
                PhoneRequest::Verify {
                    id,
                    number,
                    code,
                    name,
                    identity,
                    phone,
                },
                None,
            ) => {
                if !valid_number(&number) {
                    return self.send(&PhoneEvent::error(
                        Some(id),
                        400,
                        "not a phone number (5 to 20 digits)",
                    ));
                }
                let verification = Verification {
                    id,
                    number,
                    code: Zeroizing::new(code),
                    name: name.chars().take(64).collect(),
                    identity,
                    phone,
                    max_attempts: self.config.code_attempts,
                };
                self.job(accounts::verify(verification, now));
            }
            (PhoneRequest::Hello { id, number }, None) => {
                if !valid_number(&number) {
                    return self.send(&PhoneEvent::error(
                        Some(id),
                        400,
                        "not a phone number (5 to 20 digits)",
                    ));
                }
                self.job(accounts::hello(id, number));
            }
            (PhoneRequest::Auth { id, signature }, None) => {
                let State::Challenged {
                    number,
                    nonce,
                    ed25519,
                } = &self.state
                else {
                    return self.send(&PhoneEvent::error(Some(id), 400, "say hello first"));
                };
                if !verify_signature(ed25519, &auth_message(number, nonce), &signature) {
                    self.send(&PhoneEvent::error(
                        Some(id),
                        401,
                        "the signature does not verify",
                    ));
                    return self.close();
                }
                let number = number.clone();
                let Ok(wid) = user_jid(&number) else {
                    return self.close();
                };
                self.authenticated(&number);
                self.send_result(
                    id,
                    &Ready {
                        wid,
                        created: false,
                        identity_changed: false,
                    },
                );
            }
            (request, None) => {
                self.send(&PhoneEvent::error(
                    Some(request.id()),
                    401,
                    "log in first (hello and auth, or register and verify)",
                ));
            }
            (request, Some(me)) => self.on_request(now, me, request),
        }
    }

    fn on_request(&mut self, now: Time, me: Arc<Me>, request: PhoneRequest) {
        let id = request.id();
        let kind = match &request {
            PhoneRequest::Relay { .. } => Some(Kind::Send),
            PhoneRequest::Receipt { .. } | PhoneRequest::Receipts { .. } => Some(Kind::Receipt),
            PhoneRequest::Presence { .. } => Some(Kind::Presence),
            PhoneRequest::Ping { .. }
            | PhoneRequest::MirrorSend { .. }
            | PhoneRequest::MirrorChallenge { .. } => None,
            _ => Some(Kind::Query),
        };
        // Receipts in one request count as many as they are.
        let units = match &request {
            PhoneRequest::Receipts { receipts, .. } => {
                if !(1..=MAX_RECEIPTS).contains(&receipts.len()) {
                    return self.send(&PhoneEvent::error(
                        Some(id),
                        400,
                        format!("receipts: 1 to {MAX_RECEIPTS} of them"),
                    ));
                }
                receipts.len()
            }
            _ => 1,
        };
        if let Some(kind) = kind
            && !(0..units).all(|_| self.spend(now, Some(&me.number), kind))
        {
            return self.send(&PhoneEvent::error(
                Some(id),
                429,
                "over this account's budget: slow down",
            ));
        }
        let reply_to = ReplyTo::Id(id);
        let set = |item| vec![item];
        match request {
            PhoneRequest::Keys { upload, .. } => {
                let limits = self.set_limits();
                self.job(relay::set(
                    reply_to,
                    me,
                    set(SetRequest::Keys(upload)),
                    now,
                    limits,
                ));
            }
            PhoneRequest::Devices { users, .. } => {
                if users.len() > wa_wire::web::MAX_QUERY_ITEMS {
                    return self.send(&PhoneEvent::error(Some(id), 413, "too many users"));
                }
                self.job(keys::device_lists(reply_to, users));
            }
            PhoneRequest::PreKeys { devices, .. } => {
                if devices.len() > wa_wire::web::MAX_QUERY_ITEMS {
                    return self.send(&PhoneEvent::error(Some(id), 413, "too many devices"));
                }
                let low = self.config.limits.low_one_time_keys;
                self.job(keys::claim(reply_to, devices, low));
            }
            PhoneRequest::Relay { relay: message, .. } => {
                let size: usize = message.group.as_ref().map_or(0, Vec::len)
                    + message
                        .targets
                        .iter()
                        .filter_map(|t| t.olm.as_ref())
                        .map(|o| o.body.len())
                        .sum::<usize>();
                if size > self.config.limits.max_relay_bytes
                    || message.targets.len() > wa_wire::msg::MAX_RELAY_TARGETS
                {
                    return self.send(&PhoneEvent::error(Some(id), 413, "message too large"));
                }
                if !wa_wire::ids::valid_message_id(&message.id) {
                    return self.send(&PhoneEvent::error(Some(id), 400, "not a message id"));
                }
                let limits = RelayLimits::of(&self.config);
                self.job(relay::relay(
                    reply_to,
                    me,
                    message,
                    now,
                    limits,
                    relay::AckOne::OtherDevices,
                ));
            }
            PhoneRequest::Receipt { receipt, .. } => {
                let limits = self.set_limits();
                self.job(relay::set(
                    reply_to,
                    me,
                    set(SetRequest::Receipt(receipt)),
                    now,
                    limits,
                ));
            }
            PhoneRequest::Receipts { receipts, .. } => {
                let limits = self.set_limits();
                self.job(relay::set(
                    reply_to,
                    me,
                    receipts.into_iter().map(SetRequest::Receipt).collect(),
                    now,
                    limits,
                ));
            }
            PhoneRequest::Presence { presence, .. } => {
                let limits = self.set_limits();
                self.job(relay::set(
                    reply_to,
                    me,
                    set(SetRequest::Presence(presence)),
                    now,
                    limits,
                ));
            }
            PhoneRequest::Group { action, .. } => {
                let limits = self.set_limits();
                self.job(relay::set(
                    reply_to,
                    me,
                    set(SetRequest::Group(action)),
                    now,
                    limits,
                ));
            }
            PhoneRequest::Subscribe { jid, .. } => self.job(relay::subscribe(reply_to, me, jid)),
            PhoneRequest::GroupMetadata { jid, .. } => {
                self.job(groups::metadata(reply_to, me, jid))
            }
            PhoneRequest::Link {
                qr,
                attestation,
                mirror,
                ..
            } => {
                let qr = match QrCode::parse(&qr) {
                    Ok(qr) => qr,
                    Err(e) => return self.send(&PhoneEvent::error(Some(id), 400, e.to_string())),
                };
                if self.pending_links.len() >= MAX_PENDING_LINKS {
                    return self.send(&PhoneEvent::error(Some(id), 429, "too many links at once"));
                }
                self.job(accounts::approve_link(
                    id,
                    me.number.clone(),
                    qr,
                    attestation,
                    mirror,
                    now,
                ));
            }
            PhoneRequest::Linked { .. } => self.job(accounts::linked(id, me.number.clone())),
            PhoneRequest::Unlink { client_id, .. } => self.job(accounts::unlink(
                reply_to,
                me.number.clone(),
                client_id,
                now,
            )),
            PhoneRequest::MediaConn { .. } => {
                let auth = self.token();
                let expires = (now + self.config.media_auth_ttl).as_secs();
                self.job(relay::media_auth(
                    reply_to,
                    me.number.clone(),
                    auth,
                    expires,
                ));
            }
            PhoneRequest::Ping { .. } => self.send_result(id, &Empty {}),
            PhoneRequest::MirrorSend { device, frames, .. } => {
                // Only to a device of this account (the server does not check what the frames
                // say: it cannot open them).
                if wa_wire::ids::number_of(&device) != Some(me.number.as_str())
                    || wa_wire::ids::device_of(&device) == 0
                {
                    return self.send(&PhoneEvent::error(
                        Some(id),
                        403,
                        "not a device of this account",
                    ));
                }
                self.actions.push_back(Action::Push {
                    target: crate::action::Target::Device(device),
                    push: Push::MirrorSend { frames },
                });
                self.send_result(id, &Empty {});
            }
            PhoneRequest::MirrorChallenge {
                r#ref, expected, ..
            } => {
                if !r#ref.starts_with("challenge@") {
                    return self.send(&PhoneEvent::error(Some(id), 400, "not a challenge ref"));
                }
                self.actions.push_back(Action::Push {
                    target: crate::action::Target::Ref(r#ref),
                    push: Push::MirrorChallengeAnswer { expected },
                });
                self.send_result(id, &Empty {});
            }
            PhoneRequest::Register { .. }
            | PhoneRequest::Verify { .. }
            | PhoneRequest::Hello { .. }
            | PhoneRequest::Auth { .. } => {
                self.send(&PhoneEvent::error(Some(id), 400, "already logged in"));
            }
            _ => self.send(&PhoneEvent::error(Some(id), 400, "unknown request")),
        }
    }

    fn set_limits(&self) -> SetLimits {
        SetLimits::of(&self.config)
    }

    fn authenticated(&mut self, number: &str) {
        let Some(me) = Me::new(number, 0) else {
            return self.close();
        };
        self.login_deadline = None;
        self.actions.push_back(Action::Register {
            number: me.number.clone(),
            device: me.address.clone(),
        });
        self.job(relay::queue(me.address.clone(), 10_000));
        self.state = State::Authenticated(Arc::new(me));
    }

    /// A push from another connection.
    pub fn handle_push(&mut self, _now: Time, push: Push) {
        if self.closed {
            return;
        }
        if !matches!(self.state, State::Authenticated(_)) {
            // Before login only a shutdown concerns it.
            if let Push::Disconnect(_) = push {
                self.close();
            }
            return;
        }
        match push {
            Push::Deliver { seq, message } if self.remember(seq) => {
                self.send(&PhoneEvent::Message { message })
            }
            Push::Resync => {
                if let State::Authenticated(me) = &self.state {
                    let device = me.address.clone();
                    self.job(relay::queue(device, 10_000));
                }
            }
            Push::Ack(ack) => self.send(&PhoneEvent::Ack { ack }),
            Push::Presence(presence) => self.send(&PhoneEvent::Presence { presence }),
            Push::Group(change) => self.send(&PhoneEvent::Group { change }),
            Push::Notification(notification) => {
                self.send(&PhoneEvent::Notification { notification })
            }
            Push::LinkDone {
                r#ref,
                client_id,
                device,
            } => {
                if let Some(pos) = self.pending_links.iter().position(|(r, _, _)| *r == r#ref) {
                    let (_, id, _) = self.pending_links.remove(pos);
                    self.send_result(
                        id,
                        &Linked {
                            client_id: client_id.clone(),
                            device: device.clone(),
                        },
                    );
                }
                self.send(&PhoneEvent::Linked { client_id, device });
            }
            Push::Disconnect(DisconnectKind::Replaced) => {
                self.send(&PhoneEvent::Replaced);
                self.close();
            }
            Push::Disconnect(_) => self.close(),
            Push::Mirror { device, frame } => self.send(&PhoneEvent::MirrorFrame { device, frame }),
            Push::MirrorOnline { device } => self.send(&PhoneEvent::MirrorOnline { device }),
            Push::MirrorChallenge {
                device,
                r#ref,
                challenge,
            } => {
                self.send(&PhoneEvent::MirrorChallenge {
                    device,
                    r#ref,
                    challenge,
                });
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
                tracing::error!(job = id.0, error = %e, "store job failed: closing the phone connection");
                self.send(&PhoneEvent::error(None, 500, "server error"));
                return self.close();
            }
        };
        if self.closed {
            if let Some(effects) = effects_of(done) {
                self.push_all(effects);
            }
            return;
        }
        match done {
            Done::CodeIssued { id, result } => match result {
                Ok((number, code)) => {
                    self.actions.push_back(Action::DeliverCode { number, code });
                    self.send_result(id, &Empty {});
                }
                Err(r) => self.refuse(id, &r),
            },
            Done::Verified { id, result } => match result {
                Ok((ready, effects)) => {
                    self.push_all(effects);
                    let number = wa_wire::ids::number_of(&ready.wid).map(str::to_owned);
                    if let Some(number) = number {
                        self.authenticated(&number);
                    }
                    self.send_result(id, &ready);
                }
                Err(r) => self.refuse(id, &r),
            },
            Done::Hello {
                id,
                number,
                identity,
            } => match identity {
                Ok(ed25519) => {
                    let mut nonce = [0u8; 32];
                    self.rng.fill_bytes(&mut nonce);
                    self.state = State::Challenged {
                        number,
                        nonce,
                        ed25519,
                    };
                    self.send_result(
                        id,
                        &Challenge {
                            nonce: nonce.to_vec(),
                        },
                    );
                }
                Err(r) => self.refuse(id, &r),
            },
            Done::Relay { reply_to, result } => {
                let ReplyTo::Id(id) = reply_to else { return };
                match result {
                    Ok((t, effects)) => {
                        self.push_all(effects);
                        self.send_result(id, &Stored { t });
                    }
                    Err(RelayRefused::Mismatch { missing, extra }) => {
                        self.send(&PhoneEvent::Error {
                            id: Some(id),
                            status: 409,
                            error:
                                "the message is not encrypted for exactly the recipients' devices"
                                    .to_owned(),
                            missing,
                            extra,
                        })
                    }
                    Err(RelayRefused::Refused(r)) => self.refuse(id, &r),
                }
            }
            Done::Set {
                reply_to,
                result,
                effects,
            } => {
                self.push_all(effects);
                let ReplyTo::Id(id) = reply_to else { return };
                match result {
                    Ok(ok) => match (ok.gid, ok.key_count) {
                        (Some(gid), _) => self.send_result(id, &GroupCreated { gid: Some(gid) }),
                        (None, Some(count)) => self.send_result(id, &KeyCount { count }),
                        (None, None) => self.send_result(id, &Empty {}),
                    },
                    Err(r) => self.refuse(id, &r),
                }
            }
            Done::Devices {
                reply_to: ReplyTo::Id(id),
                lists,
            } => self.send_result(id, &DeviceLists { lists }),
            Done::PreKeys {
                reply_to,
                claimed,
                effects,
            } => {
                self.push_all(effects);
                if let ReplyTo::Id(id) = reply_to {
                    self.send_result(id, &Claims { claimed });
                }
            }
            Done::GroupMetadata {
                reply_to: ReplyTo::Id(id),
                result,
            } => match result {
                Ok(meta) => self.send(&PhoneEvent::Result {
                    id,
                    data: meta.to_json(),
                }),
                Err(r) => self.refuse(id, &r),
            },
            Done::Subscribe {
                reply_to: ReplyTo::Id(id),
                jid,
                allowed,
            } => {
                if allowed {
                    self.actions.push_back(Action::Subscribe(jid));
                    self.send_result(id, &Empty {});
                } else {
                    self.send(&PhoneEvent::error(Some(id), 403, "no chat with this user"));
                }
            }
            Done::LinkApproved { id, result } => match result {
                Ok((r, effects)) => {
                    self.push_all(effects);
                    self.pending_links
                        .push((r, id, now + self.config.link_timeout));
                }
                Err(refusal) => self.refuse(id, &refusal),
            },
            Done::LinkedDevices { id, devices } => self.send_result(id, &LinkedDevices { devices }),
            Done::Unlinked { reply_to, result } => {
                let ReplyTo::Id(id) = reply_to else { return };
                match result {
                    Ok(effects) => {
                        self.push_all(effects);
                        self.send_result(id, &Empty {});
                    }
                    Err(r) => self.refuse(id, &r),
                }
            }
            Done::MediaAuth {
                reply_to: ReplyTo::Id(id),
                auth,
            } => self.send_result(
                id,
                &MediaAuth {
                    auth,
                    hosts: vec![self.config.media_host.clone()],
                    ttl: self.config.media_auth_ttl.as_secs(),
                    max_bytes: Some(self.config.limits.max_media_len),
                },
            ),
            Done::Queue(items) => {
                for (seq, message) in items {
                    if self.remember(seq) {
                        self.send(&PhoneEvent::Message { message });
                    }
                }
            }
            other => {
                if let Some(effects) = effects_of(other) {
                    self.push_all(effects);
                }
            }
        }
    }

    fn refuse(&mut self, id: u64, refusal: &Refusal) {
        self.send(&PhoneEvent::error(
            Some(id),
            refusal.status,
            refusal.reason.clone(),
        ));
    }

    fn remember(&mut self, seq: u64) -> bool {
        if self.delivered.len() >= MAX_REMEMBERED {
            self.delivered.clear();
        }
        self.delivered.insert(seq)
    }

    fn token(&mut self) -> String {
        use base64::Engine as _;
        let mut bytes = [0u8; 24];
        self.rng.fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

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

    fn send(&mut self, event: &PhoneEvent) {
        self.actions
            .push_back(Action::Send(OutMessage::Text(event.to_text())));
    }

    /// Answers request `id` with `data` ([`PhoneEvent::result_text`]: no JSON value built).
    fn send_result<T: serde::Serialize>(&mut self, id: u64, data: &T) {
        self.actions
            .push_back(Action::Send(OutMessage::Text(PhoneEvent::result_text(
                id, data,
            ))));
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.actions.push_back(Action::Close);
        }
    }
}

/// The phone's own address, for a number.
pub fn phone_address(number: &str) -> Option<Jid> {
    user_jid(number).ok()
}
