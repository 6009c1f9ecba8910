//! One web client connection (`/ws`): the server side of PROTOCOL.md §1–§3 as
//! `wa-session` speaks it.
//!
//! Before keys exist a connection may only `admin init` (get a QR ref), reref, log in with
//! tokens, ping, and ask whether the phone is up; a binary frame then closes it. After a QR
//! scan or a login, binary requests are opened with the device's keys, answered under their
//! tag, and pushes (messages, acks, presence, group changes) go out under `s<n>` tags.
//!
//! **Architecture Invariant:** a connection acts only as the account its keys belong to: the
//! sender, author and reader of everything it does come from the login, never from the
//! request.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use rand_chacha::ChaCha20Rng;
use rand_core::Rng as _;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use wa_binary::{Encoder, Node, Policy};
use wa_crypto::SessionKeys;
use wa_frame::{Direction, Frame, Init, Login, LoginMode, Metric, Request, WsMessage};

use crate::accounts::conn_json;
use crate::error::Refusal;
use crate::groups::GroupRequest;
use crate::hub::{Delivery, DisconnectKind, Grant, Outbox, Push, RefEntry};
use crate::jid::{ChatJid, DeviceKey, valid_client_id};
use crate::rate::Limiter;
use crate::relay::Me;
use crate::shared::{Metrics, Shared, now_ms, now_secs};
use crate::store;

/// What to send to the client.
#[derive(Debug)]
pub(crate) enum Out {
    Text(String),
    Binary(Vec<u8>),
    Close,
}

/// Forgets the seqs of delivered messages beyond this many (a duplicate is then possible,
/// never a loss).
const MAX_REMEMBERED: usize = 100_000;

/// Runs one web client connection until it closes.
pub(crate) async fn serve<S>(shared: Arc<Shared>, mut ws: WebSocketStream<S>, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let id = shared.hub.next_conn_id();
    let (outbox, mut rx) = Outbox::new(id, shared.config.limits.push_queue);
    let mut conn = WebConn::new(Arc::clone(&shared), outbox, peer);
    let mut shutdown = shared.shutdown.clone();
    let idle = shared.config.idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
    tracing::debug!(%peer, conn = id, "web client connected");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let outs = tokio::select! {
            msg = ws.next() => {
                deadline = tokio::time::Instant::now() + idle;
                match msg {
                    Some(Ok(Message::Text(text))) => conn.on_text(text.as_str()).await,
                    Some(Ok(Message::Binary(bytes))) => conn.on_binary(&bytes).await,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => Vec::new(),
                    Some(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "web socket failed");
                        break;
                    }
                }
            }
            Some(push) = rx.recv() => conn.on_push(push),
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, "idle: closing");
                break;
            }
            _ = shutdown.changed() => break,
        };
        if !send_all(&mut ws, outs).await {
            break;
        }
        if conn.outbox.lagged() {
            tracing::warn!(%peer, "client does not keep up with its pushes: closing");
            Metrics::inc(&shared.metrics.closed_for_abuse);
            break;
        }
    }
    conn.cleanup();
    let _ = ws.close(None).await;
    tracing::debug!(%peer, conn = id, "web client gone");
}

/// Sends every message; `false` when the connection is to close.
pub(crate) async fn send_all<S>(ws: &mut WebSocketStream<S>, outs: Vec<Out>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    if outs.is_empty() {
        return true;
    }
    let mut open = true;
    for out in outs {
        let result = match out {
            Out::Text(text) => ws.feed(Message::text(text)).await,
            Out::Binary(bytes) => ws.feed(Message::binary(bytes)).await,
            Out::Close => {
                open = false;
                break;
            }
        };
        if result.is_err() {
            return false;
        }
    }
    ws.flush().await.is_ok() && open
}

struct WebConn {
    shared: Arc<Shared>,
    outbox: Outbox,
    peer: SocketAddr,
    client_id: Option<String>,
    browser: String,
    current_ref: Option<String>,
    /// When the current ref stops being scannable.
    ref_expires: Option<Instant>,
    rerefs: u32,
    keys: Option<SessionKeys>,
    me: Option<Me>,
    next_tag: u64,
    next_preempt: u64,
    rng: ChaCha20Rng,
    limiter: Limiter,
    delivered: HashSet<u64>,
    encoder: Encoder<'static>,
    /// A challenge sent (PROTOCOL.md §2.5): the client id and the answer it must give.
    challenge: Option<(String, zeroize::Zeroizing<[u8; 32]>)>,
}

fn text(tag: &str, value: &Value) -> Out {
    Out::Text(format!("{tag},{value}"))
}

fn status(tag: &str, status: u16) -> Out {
    text(tag, &json!({ "status": status }))
}

fn attr<'n>(node: &'n Node<'_>, key: &str) -> Result<&'n str, Refusal> {
    node.attr(key)
        .ok_or_else(|| Refusal::bad_request(format!("`{}` without `{key}`", node.tag())))
}

impl WebConn {
    fn new(shared: Arc<Shared>, outbox: Outbox, peer: SocketAddr) -> WebConn {
        let limits = &shared.config.limits;
        let limiter = Limiter::new(limits, Instant::now());
        let rng = shared.conn_rng();
        WebConn {
            shared,
            outbox,
            peer,
            client_id: None,
            browser: String::new(),
            current_ref: None,
            ref_expires: None,
            rerefs: 0,
            keys: None,
            me: None,
            next_tag: 0,
            next_preempt: 0,
            challenge: None,
            rng,
            limiter,
            delivered: HashSet::new(),
            encoder: Encoder::new(Policy::Server),
        }
    }

    fn push_tag(&mut self) -> String {
        self.next_tag += 1;
        format!("s{}", self.next_tag)
    }

    fn push_text(&mut self, value: &Value) -> Out {
        let tag = self.push_tag();
        text(&tag, value)
    }

    fn cleanup(&mut self) {
        let hub = &self.shared.hub;
        if let Some(r) = self.current_ref.take() {
            hub.remove_ref(&r);
        }
        if let Some(me) = &self.me {
            hub.unregister(&me.device, self.outbox.id);
        }
        hub.drop_conn(self.outbox.id);
    }

    // ---- Text ---------------------------------------------------------------------------------

    async fn on_text(&mut self, message: &str) -> Vec<Out> {
        let limits = &self.shared.config.limits.frame;
        let frame = match Frame::parse(WsMessage::Text(message), Direction::ClientToServer, limits)
        {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "bad text frame");
                return Vec::new();
            }
        };
        match frame {
            Frame::Keepalive => {
                if !self.limiter.allow(false) {
                    return Vec::new();
                }
                vec![Out::Text(format!("!{}", now_ms()))]
            }
            Frame::Json { tag, payload } => {
                let tag = tag.as_str().to_owned();
                if !self.limiter.allow(false) {
                    Metrics::inc(&self.shared.metrics.rate_limited);
                    return vec![status(&tag, 429)];
                }
                self.on_request(&tag, Request::from_json(payload)).await
            }
            _ => Vec::new(),
        }
    }

    async fn on_request(&mut self, tag: &str, request: Request) -> Vec<Out> {
        match request {
            Request::Init(init) => self.init(tag, init),
            Request::Reref => self.reref(tag),
            Request::Login(login) => self.login(tag, login).await,
            Request::Challenge(answer) => self.challenge_answer(tag, &answer).await,
            Request::Disconnect => self.logout().await,
            Request::Test => {
                let up = self
                    .me
                    .as_ref()
                    .is_some_and(|me| self.shared.phone_online(&me.number));
                vec![text(tag, &json!(["Pong", up]))]
            }
            Request::Query(args) => match &self.me {
                Some(me) => {
                    let me = me.clone();
                    self.query(tag, &me, &args)
                }
                None => vec![status(tag, 401)],
            },
            Request::Action(args) => match &self.me {
                Some(_) => self.action(tag, &args),
                None => vec![status(tag, 401)],
            },
            _ => vec![status(tag, 400)],
        }
    }

    fn init(&mut self, tag: &str, init: Init) -> Vec<Out> {
        if self.me.is_some() {
            return vec![status(tag, 400)];
        }
        if init.version < self.shared.config.min_client_version {
            tracing::debug!(peer = %self.peer, version = ?init.version, "client too old");
            let update = self.push_text(&json!(["Cmd", {"type": "update"}]));
            return vec![update, Out::Close];
        }
        if !valid_client_id(&init.client_id) {
            return vec![status(tag, 400)];
        }
        self.client_id = Some(init.client_id);
        self.browser = format!("{} / {}", init.browser.long, init.browser.short)
            .chars()
            .take(64)
            .collect();
        self.rerefs = 0;
        let r = self.new_ref();
        vec![text(
            tag,
            &json!({
                "status": 200,
                "ref": r,
                "ttl": self.ttl_ms(),
                "update": false,
                "curr": "2.2142.12",
                "time": now_ms(),
            }),
        )]
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.shared.config.ref_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn new_ref(&mut self) -> String {
        let hub = &self.shared.hub;
        if let Some(old) = self.current_ref.take() {
            hub.remove_ref(&old);
        }
        let r = format!("1@{}", self.shared.token());
        if let Some(client_id) = &self.client_id {
            hub.add_ref(
                &r,
                RefEntry {
                    client_id: client_id.clone(),
                    browser: self.browser.clone(),
                    expires: Instant::now() + self.shared.config.ref_ttl,
                    outbox: self.outbox.clone(),
                },
            );
        }
        self.current_ref = Some(r.clone());
        self.ref_expires = Some(Instant::now() + self.shared.config.ref_ttl);
        r
    }

    fn reref(&mut self, tag: &str) -> Vec<Out> {
        if self.client_id.is_none() || self.me.is_some() {
            return vec![status(tag, 400)];
        }
        if self.rerefs >= self.shared.config.max_rerefs {
            return vec![status(tag, 429)];
        }
        self.rerefs += 1;
        // Asked well before the current ref expires: 304, keep showing it (for what is left
        // of its time). A ref about to expire (a tenth of its life left, as when the client's
        // timer fires on time) is replaced instead.
        let now = Instant::now();
        let grace = self.shared.config.ref_ttl / 10;
        if let (Some(r), Some(expires)) = (&self.current_ref, self.ref_expires)
            && expires > now + grace
        {
            let left = u64::try_from((expires - now).as_millis()).unwrap_or(u64::MAX);
            return vec![text(tag, &json!({"status": 304, "ref": r, "ttl": left}))];
        }
        let r = self.new_ref();
        vec![text(
            tag,
            &json!({"status": 200, "ref": r, "ttl": self.ttl_ms()}),
        )]
    }

    async fn login(&mut self, tag: &str, login: Login) -> Vec<Out> {
        if self.me.is_some() {
            return vec![status(tag, 405)];
        }
        let Some(client_id) = self.client_id.clone() else {
            return vec![status(tag, 400)];
        };
        if login.client_id != client_id {
            return vec![status(tag, 401)];
        }
        let own_jid = match &login.mode {
            LoginMode::Reconnect { own_jid } => Some(own_jid.as_str()),
            _ => None,
        };
        match self
            .shared
            .login(
                &client_id,
                &login.client_token,
                &login.server_token,
                own_jid,
            )
            .await
        {
            Ok(grant) => {
                tracing::info!(peer = %self.peer, client = %client_id, number = %grant.account.number, "logged in");
                let mut outs = vec![status(tag, 200)];
                outs.extend(self.become_linked(grant));
                outs
            }
            Err(refusal) => {
                // Tokens one rotation old: the client lost the Conn that rotated them. It may
                // prove its keys instead (PROTOCOL.md §2.5).
                if refusal.status == 401
                    && let Ok(Some(device)) = self
                        .shared
                        .challengeable(&client_id, &login.client_token, &login.server_token)
                        .await
                    && let Some(keys) = device.keys()
                {
                    let mut challenge = [0u8; 32];
                    self.rng.fill_bytes(&mut challenge);
                    let expected = zeroize::Zeroizing::new(keys.challenge_response(&challenge));
                    self.challenge = Some((client_id.clone(), expected));
                    tracing::info!(peer = %self.peer, client = %client_id, "challenging old tokens");
                    use base64::Engine as _;
                    let text = base64::engine::general_purpose::STANDARD.encode(challenge);
                    return vec![
                        self.push_text(&json!(["Cmd", {"type": "challenge", "challenge": text}])),
                    ];
                }
                tracing::info!(peer = %self.peer, client = %client_id, %refusal, "login refused");
                vec![status(tag, refusal.status)]
            }
        }
    }

    /// The answer to a challenge: HMAC-SHA256 of the challenge under the session's MAC key,
    /// compared in constant time; right, the tokens rotate and a new `Conn` follows.
    async fn challenge_answer(
        &mut self,
        tag: &str,
        answer: &wa_frame::ChallengeAnswer,
    ) -> Vec<Out> {
        use base64::Engine as _;
        use subtle::ConstantTimeEq as _;
        let Some((client_id, expected)) = self.challenge.take() else {
            return vec![status(tag, 400)];
        };
        let given = base64::engine::general_purpose::STANDARD
            .decode(answer.answer.as_bytes())
            .unwrap_or_default();
        let right: bool = given.as_slice().ct_eq(expected.as_slice()).into();
        if !right || answer.client_id != client_id {
            tracing::info!(peer = %self.peer, client = %client_id, "challenge failed");
            return vec![status(tag, 401)];
        }
        match self.shared.grant_challenged(&client_id).await {
            Ok(grant) => {
                let mut outs = vec![status(tag, 200)];
                outs.extend(self.become_linked(grant));
                outs
            }
            Err(refusal) => vec![status(tag, refusal.status)],
        }
    }

    /// Keys and identity installed after a scan or a login: `Conn`, then the chat and contact
    /// lists, then the queue.
    fn become_linked(&mut self, grant: Grant) -> Vec<Out> {
        let Some(keys) = grant.device.keys() else {
            tracing::error!(client = %grant.device.client_id, "stored keys do not decode");
            return vec![Out::Close];
        };
        let number = grant.account.number.clone();
        let device = DeviceKey::web(&grant.device.client_id);
        self.keys = Some(keys);
        self.me = Some(Me {
            number: number.clone(),
            device: device.clone(),
            name: grant.account.name.clone(),
        });
        if let Some(r) = self.current_ref.take() {
            self.shared.hub.remove_ref(&r);
        }
        if let Some(old) = self
            .shared
            .hub
            .register(&device, &number, self.outbox.clone())
        {
            old.push(Push::Disconnect(DisconnectKind::Replaced));
        }
        let conn = conn_json(&grant, self.shared.phone_online(&number));
        let mut outs = vec![self.push_text(&conn)];
        let lists = [
            self.shared.chat_list(&number),
            self.shared.contact_list(&number),
        ];
        for list in lists {
            match list {
                Ok(node) => {
                    self.next_preempt += 1;
                    let tag = format!("preempt-{}-{}", now_secs(), self.next_preempt);
                    outs.extend(self.seal(&tag, &node));
                }
                Err(e) => tracing::error!(error = %e, "chat or contact list failed"),
            }
        }
        match self.shared.queued(&device) {
            Ok(queued) => {
                for delivery in queued {
                    outs.extend(self.deliver(&delivery));
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the queue failed"),
        }
        outs
    }

    async fn logout(&mut self) -> Vec<Out> {
        if let Some(me) = self.me.take() {
            if let Some(client_id) = me.device.client_id() {
                match self.shared.unlink(client_id).await {
                    Ok(_) => tracing::info!(client = %client_id, "logged out"),
                    Err(e) => tracing::warn!(client = %client_id, error = %e, "logout failed"),
                }
            }
            self.shared.hub.unregister(&me.device, self.outbox.id);
        }
        self.keys = None;
        vec![Out::Close]
    }

    fn query(&mut self, tag: &str, me: &Me, args: &[Value]) -> Vec<Out> {
        let arg = |i: usize| args.get(i).and_then(Value::as_str);
        match arg(0) {
            Some("mediaConn") => {
                let auth = self.shared.token();
                let ttl = self.shared.config.media_auth_ttl;
                self.shared
                    .hub
                    .add_media_auth(&auth, &me.number, Instant::now() + ttl);
                vec![text(
                    tag,
                    &json!({
                        "status": 200,
                        "media_conn": {
                            "auth": auth,
                            "ttl": ttl.as_secs(),
                            "hosts": [{"hostname": self.shared.media_host}],
                        }
                    }),
                )]
            }
            Some("GroupMetadata") => match arg(1).map(|jid| self.shared.group_metadata(me, jid)) {
                Some(Ok(meta)) => vec![text(tag, &meta)],
                Some(Err(r)) => vec![status(tag, r.status)],
                None => vec![status(tag, 400)],
            },
            Some("exist") => {
                let exists = match arg(1).and_then(ChatJid::parse) {
                    Some(ChatJid::User(n)) => {
                        store::read(&*self.shared.store, |txn| crate::model::account(txn, &n))
                            .ok()
                            .flatten()
                            .is_some()
                    }
                    _ => false,
                };
                vec![status(tag, if exists { 200 } else { 404 })]
            }
            _ => vec![status(tag, 400)],
        }
    }

    fn action(&mut self, tag: &str, args: &[Value]) -> Vec<Out> {
        let strs: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        match strs.as_slice() {
            ["presence", "subscribe", jid] => match self.shared.subscribe(&self.outbox, jid) {
                Ok(()) => vec![status(tag, 200)],
                Err(r) => vec![status(tag, r.status)],
            },
            _ => vec![status(tag, 400)],
        }
    }

    // ---- Binary -------------------------------------------------------------------------------

    async fn on_binary(&mut self, message: &[u8]) -> Vec<Out> {
        let limits = &self.shared.config.limits;
        let (tag, payload, header) = match Frame::parse(
            WsMessage::Binary(message),
            Direction::ClientToServer,
            &limits.frame,
        ) {
            Ok(Frame::Binary {
                tag,
                payload,
                header,
            }) => (tag.as_str().to_owned(), payload, header),
            Ok(_) | Err(_) => {
                tracing::debug!(peer = %self.peer, "bad binary frame: closing");
                return self.abuse();
            }
        };
        let (Some(keys), Some(me)) = (&self.keys, self.me.clone()) else {
            tracing::warn!(peer = %self.peer, "binary frame before keys: closing");
            return self.abuse();
        };
        let receipt = header.is_some_and(|h| h.metric == Metric::RECEIVED);
        if !self.limiter.allow(receipt) {
            Metrics::inc(&self.shared.metrics.rate_limited);
            return vec![status(&tag, 429)];
        }
        let plain = match keys.open(&payload) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "binary frame fails to open: closing");
                return self.abuse();
            }
        };
        let decoder = wa_binary::Decoder::new().with_limits(limits.node);
        let node = match decoder.decode(&plain) {
            Ok(node) => node.into_owned(),
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "node does not decode");
                return vec![status(&tag, 400)];
            }
        };
        self.on_node(&tag, &me, &node).await
    }

    fn abuse(&self) -> Vec<Out> {
        Metrics::inc(&self.shared.metrics.closed_for_abuse);
        vec![Out::Close]
    }

    async fn on_node(&mut self, tag: &str, me: &Me, node: &Node<'_>) -> Vec<Out> {
        match (node.tag(), node.attr("type")) {
            ("action", Some("relay")) => {
                let info = node
                    .child("message")
                    .and_then(Node::bytes)
                    .and_then(|b| wa_proto::WebMessageInfo::decode(b).ok());
                let Some(info) = info else {
                    return vec![status(tag, 400)];
                };
                // Queued now, in order; the answer comes once it is durable, while this
                // connection goes on reading (its next messages join the same commit).
                let ticket = match self.shared.relay_submit(me, info) {
                    Ok(ticket) => ticket,
                    Err(r) => {
                        tracing::debug!(peer = %self.peer, refusal = %r, "message refused");
                        return vec![status(tag, r.status)];
                    }
                };
                let (shared, me, outbox, tag) = (
                    Arc::clone(&self.shared),
                    me.clone(),
                    self.outbox.clone(),
                    tag.to_owned(),
                );
                tokio::spawn(async move {
                    let answer = |code: u16| {
                        outbox.push(Push::Reply(format!("{tag},{}", json!({ "status": code }))));
                    };
                    if let Err(r) = shared.relay_finish(&me, ticket, answer).await {
                        tracing::debug!(refusal = %r, "message refused");
                    }
                });
                Vec::new()
            }
            ("action", Some("set")) => {
                let mut gid = None;
                let mut result = Ok(());
                for child in node.children() {
                    result = self.on_set(me, child, &mut gid).await;
                    if result.is_err() {
                        break;
                    }
                }
                match result {
                    Ok(()) => {
                        let mut reply = json!({"status": 200});
                        if let (Some(gid), Some(map)) = (gid, reply.as_object_mut()) {
                            map.insert("gid".to_owned(), Value::from(gid));
                        }
                        vec![text(tag, &reply)]
                    }
                    Err(r) => {
                        tracing::debug!(peer = %self.peer, refusal = %r, "request refused");
                        vec![status(tag, r.status)]
                    }
                }
            }
            ("query", Some("chat")) => match self.shared.chat_list(&me.number) {
                Ok(list) => self.seal(tag, &list).into_iter().collect(),
                Err(_) => vec![status(tag, 500)],
            },
            ("query", Some("contacts")) => match self.shared.contact_list(&me.number) {
                Ok(list) => self.seal(tag, &list).into_iter().collect(),
                Err(_) => vec![status(tag, 500)],
            },
            ("query", Some("message")) => {
                let count = node
                    .attr("count")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(50);
                let history = match node.attr("jid") {
                    Some(jid) => self
                        .shared
                        .history(&me.number, jid, count, node.attr("index")),
                    None => Err(Refusal::bad_request("history without jid")),
                };
                match history {
                    Ok(list) => self.seal(tag, &list).into_iter().collect(),
                    Err(r) => vec![status(tag, r.status)],
                }
            }
            _ => vec![status(tag, 400)],
        }
    }

    async fn on_set(
        &mut self,
        me: &Me,
        child: &Node<'_>,
        gid: &mut Option<String>,
    ) -> Result<(), Refusal> {
        match child.tag() {
            "received" => {
                if child.attr("type").is_some_and(|t| t != "message") {
                    return Ok(());
                }
                self.shared.received(
                    me,
                    attr(child, "jid")?,
                    attr(child, "index")?,
                    child.attr("participant"),
                )
            }
            "read" => {
                self.shared
                    .read(me, attr(child, "jid")?, attr(child, "index")?)
                    .await
            }
            "presence" => self
                .shared
                .presence(me, attr(child, "type")?, child.attr("to")),
            "group" => {
                let request = GroupRequest {
                    op: attr(child, "type")?.to_owned(),
                    jid: child.attr("jid").map(str::to_owned),
                    subject: child.attr("subject").map(str::to_owned),
                    participants: child
                        .children()
                        .iter()
                        .filter(|p| p.tag() == "participant")
                        .filter_map(|p| p.attr("jid").map(str::to_owned))
                        .collect(),
                };
                *gid = self.shared.group(me, request).await?;
                Ok(())
            }
            other => Err(Refusal::bad_request(format!("unknown request `{other}`"))),
        }
    }

    // ---- Pushes -------------------------------------------------------------------------------

    fn on_push(&mut self, push: Push) -> Vec<Out> {
        match push {
            Push::Deliver(delivery) => self.deliver(&delivery).into_iter().collect(),
            Push::Ack(ack) => {
                let mut body = json!({
                    "cmd": "ack",
                    "id": ack.id,
                    "ack": ack.level,
                    "from": ack.from,
                    "to": ack.to,
                    "t": ack.t,
                });
                if let (Some(p), Some(map)) = (&ack.participant, body.as_object_mut()) {
                    map.insert("participant".to_owned(), Value::from(p.clone()));
                }
                vec![self.push_text(&json!(["Msg", body]))]
            }
            Push::Presence(p) => {
                let body = match &p.chat {
                    Some(group) => {
                        json!({"id": group, "participant": p.jid, "type": p.kind, "t": p.t})
                    }
                    None => json!({"id": p.jid, "type": p.kind, "t": p.t}),
                };
                vec![self.push_text(&json!(["Presence", body]))]
            }
            Push::Group(g) => {
                let mut body = json!({
                    "id": g.jid,
                    "cmd": "action",
                    "data": [g.op, g.author, g.participants],
                });
                if let (Some(s), Some(map)) = (&g.subject, body.as_object_mut()) {
                    map.insert("subject".to_owned(), Value::from(s.clone()));
                }
                vec![self.push_text(&json!(["Chat", body]))]
            }
            Push::Linked(grant) => {
                if self.me.is_some() || self.client_id.as_deref() != Some(&grant.device.client_id) {
                    tracing::warn!(peer = %self.peer, "a link for another client: ignored");
                    return Vec::new();
                }
                tracing::info!(peer = %self.peer, number = %grant.account.number, "QR scanned: linked");
                self.become_linked(*grant)
            }
            Push::Reply(text) => vec![Out::Text(text)],
            Push::PhoneReachable(false) => vec![self.push_text(&json!(["Stream", "asleep"]))],
            Push::PhoneReachable(true) => Vec::new(),
            Push::Disconnect(DisconnectKind::Replaced) => {
                let cmd =
                    self.push_text(&json!(["Cmd", {"type": "disconnect", "kind": "replaced"}]));
                vec![cmd, Out::Close]
            }
            Push::Disconnect(DisconnectKind::Unlinked) => {
                let cmd = self.push_text(&json!(["Cmd", {"type": "disconnect"}]));
                vec![cmd, Out::Close]
            }
            Push::Disconnect(DisconnectKind::Shutdown) => vec![Out::Close],
        }
    }

    /// A message for this device, once per queue entry.
    fn deliver(&mut self, delivery: &Delivery) -> Option<Out> {
        if let Some(seq) = delivery.seq {
            if self.delivered.len() >= MAX_REMEMBERED {
                self.delivered.clear();
            }
            if !self.delivered.insert(seq) {
                return None;
            }
        }
        let node = Node::new("action")
            .with_attr("add", "relay")
            .with_children(vec![
                Node::new("message").with_bytes(delivery.info.as_slice()),
            ]);
        let tag = self.push_tag();
        let out = self.seal(&tag, &node)?;
        Metrics::inc(&self.shared.metrics.deliveries);
        Some(out)
    }

    /// A sealed server→client binary frame: `tag,` then the sealed node.
    fn seal(&mut self, tag: &str, node: &Node<'_>) -> Option<Out> {
        let keys = self.keys.as_ref()?;
        let plain = match self.encoder.encode(node) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::error!(error = %e, "node does not encode");
                return None;
            }
        };
        let mut iv = [0u8; 16];
        self.rng.fill_bytes(&mut iv);
        let mut out = Vec::with_capacity(tag.len() + 1 + wa_crypto::sealed_len(plain.len()));
        out.extend_from_slice(tag.as_bytes());
        out.push(b',');
        keys.seal_into(&plain, &iv, &mut out);
        Some(Out::Binary(out))
    }
}
