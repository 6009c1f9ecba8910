//! The server side of a phone connection (`/phone`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use prost::Message as _;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::wire::{Command, WireEvent};
use crate::accounts::Hello;
use crate::error::Refusal;
use crate::groups::GroupRequest;
use crate::hub::{DisconnectKind, Outbox, Push};
use crate::jid::{ChatJid, DeviceKey, user_jid};
use crate::rate::Limiter;
use crate::relay::Me;
use crate::shared::{Metrics, Shared};
use crate::web::{Out, send_all};

/// How long a phone has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

fn event(e: &WireEvent) -> Out {
    // Serializing these plain structs cannot fail; an empty object would only stand for a bug.
    Out::Text(serde_json::to_string(e).unwrap_or_else(|_| "{}".to_owned()))
}

fn error(id: Option<u64>, refusal: &Refusal) -> Out {
    event(&WireEvent::Error {
        id,
        status: refusal.status,
        error: refusal.reason.clone(),
    })
}

/// Runs one phone connection until it closes.
pub(crate) async fn serve<S>(shared: Arc<Shared>, mut ws: WebSocketStream<S>, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Some((me, created)) = hello(&shared, &mut ws, peer).await else {
        let _ = ws.close(None).await;
        return;
    };
    let id = shared.hub.next_conn_id();
    let (outbox, mut rx) = Outbox::new(id, shared.config.limits.push_queue);
    if let Some(old) = shared.hub.register(&me.device, &me.number, outbox.clone()) {
        old.push(Push::Disconnect(DisconnectKind::Replaced));
    } else {
        shared.phone_reachable(&me.number, true);
    }
    tracing::info!(%peer, number = %me.number, "phone connected");
    let mut conn = PhoneConn {
        shared: Arc::clone(&shared),
        me,
        outbox,
        limiter: Limiter::new(&shared.config.limits, Instant::now()),
        delivered: std::collections::HashSet::new(),
    };
    let mut outs = vec![event(&WireEvent::Ready {
        wid: conn.me.wid(),
        created,
    })];
    match shared.queued(&conn.me.device) {
        Ok(queued) => {
            for delivery in queued {
                outs.extend(conn.deliver(delivery.seq, &delivery.info));
            }
        }
        Err(e) => tracing::error!(error = %e, "reading the queue failed"),
    }
    let mut open = send_all(&mut ws, outs).await;
    let mut shutdown = shared.shutdown.clone();
    let idle = shared.config.idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
    while open && !*shutdown.borrow() {
        let outs = tokio::select! {
            msg = ws.next() => {
                deadline = tokio::time::Instant::now() + idle;
                match msg {
                    Some(Ok(Message::Text(text))) => conn.on_text(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => vec![Out::Close],
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => Vec::new(),
                }
            }
            Some(push) = rx.recv() => conn.on_push(push),
            () = tokio::time::sleep_until(deadline) => break,
            _ = shutdown.changed() => break,
        };
        open = send_all(&mut ws, outs).await;
        if conn.outbox.lagged() {
            Metrics::inc(&shared.metrics.closed_for_abuse);
            break;
        }
    }
    if shared.hub.unregister(&conn.me.device, conn.outbox.id) {
        shared.phone_reachable(&conn.me.number, false);
    }
    shared.hub.drop_conn(conn.outbox.id);
    let _ = ws.close(None).await;
    tracing::info!(%peer, number = %conn.me.number, "phone gone");
}

/// Waits for `hello` and creates or checks the account.
async fn hello<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    peer: SocketAddr,
) -> Option<(Me, bool)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let first = tokio::time::timeout(HELLO_TIMEOUT, ws.next())
        .await
        .ok()??
        .ok()?;
    let Message::Text(text) = first else {
        return None;
    };
    let refuse =
        |status: u16, reason: &str| vec![error(None, &Refusal::new(status, reason)), Out::Close];
    let command = match serde_json::from_str::<Command>(text.as_str()) {
        Ok(Command::Hello {
            number,
            name,
            secret,
            phone,
        }) => Hello {
            number,
            name,
            secret,
            phone: phone.unwrap_or_default(),
        },
        _ => {
            send_all(ws, refuse(400, "the first message must be hello")).await;
            return None;
        }
    };
    match shared.hello(command).await {
        Ok((account, created)) => {
            if created {
                tracing::info!(%peer, number = %account.number, "account created");
            }
            let me = Me {
                device: DeviceKey::phone(&account.number),
                number: account.number,
                name: account.name,
            };
            Some((me, created))
        }
        Err(refusal) => {
            tracing::info!(%peer, %refusal, "phone refused");
            send_all(ws, vec![error(None, &refusal), Out::Close]).await;
            None
        }
    }
}

struct PhoneConn {
    shared: Arc<Shared>,
    me: Me,
    outbox: Outbox,
    limiter: Limiter,
    delivered: std::collections::HashSet<u64>,
}

impl PhoneConn {
    async fn on_text(&mut self, text: &str) -> Vec<Out> {
        if text.len() > self.shared.config.limits.frame.max_frame_len {
            return vec![Out::Close];
        }
        let command = match serde_json::from_str::<Command>(text) {
            Ok(command) => command,
            Err(e) => {
                return vec![error(
                    None,
                    &Refusal::bad_request(format!("bad command: {e}")),
                )];
            }
        };
        if !self
            .limiter
            .allow(matches!(command, Command::Received { .. }))
        {
            Metrics::inc(&self.shared.metrics.rate_limited);
            return vec![error(command.id(), &Refusal::new(429, "too many requests"))];
        }
        let (id, result) = self.run(command).await;
        match (id, result) {
            (_, Ok(None)) | (None, Ok(Some(_))) => Vec::new(),
            (Some(id), Ok(Some(data))) => vec![event(&WireEvent::Result {
                id,
                data: (!data.is_null()).then_some(data),
            })],
            (id, Err(refusal)) => vec![error(id, &refusal)],
        }
    }

    /// Runs a command: its id and its outcome (`None`: nothing to answer).
    async fn run(
        &mut self,
        command: Command,
    ) -> (Option<u64>, Result<Option<serde_json::Value>, Refusal>) {
        let shared = Arc::clone(&self.shared);
        let me = &self.me;
        match command {
            Command::Hello { .. } => (None, Err(Refusal::bad_request("hello twice"))),
            Command::Link { id, qr } => {
                let result = shared.link(&me.number, &qr).await.map(|linked| {
                    Some(json!({
                        "client_id": linked.client_id,
                        "browser": linked.browser,
                        "linked_at": linked.linked_at,
                    }))
                });
                (Some(id), result)
            }
            Command::Send {
                id,
                to,
                message_id,
                text,
                message,
            } => {
                let message = match (text, message) {
                    (Some(text), None) => wa_proto::Message {
                        conversation: Some(text),
                        ..Default::default()
                    },
                    (None, Some(b64)) => {
                        match STANDARD
                            .decode(b64.as_bytes())
                            .ok()
                            .and_then(|b| wa_proto::Message::decode(b.as_slice()).ok())
                        {
                            Some(message) => message,
                            None => {
                                return (
                                    Some(id),
                                    Err(Refusal::bad_request("message is not a base64 Message")),
                                );
                            }
                        }
                    }
                    _ => {
                        return (
                            Some(id),
                            Err(Refusal::bad_request("send needs text or message")),
                        );
                    }
                };
                let Some(chat) = ChatJid::parse(&to) else {
                    return (Some(id), Err(Refusal::bad_request("bad recipient")));
                };
                let info = wa_proto::WebMessageInfo {
                    key: wa_proto::MessageKey {
                        remote_jid: Some(chat.wire()),
                        from_me: Some(true),
                        id: Some(message_id),
                        participant: None,
                    },
                    message: Some(message),
                    ..Default::default()
                };
                let result = shared
                    .relay(me, info)
                    .await
                    .map(|id| Some(json!({ "message_id": id })));
                (Some(id), result)
            }
            Command::Received {
                chat,
                message_id,
                participant,
            } => {
                let result = shared.received(me, &chat, &message_id, participant.as_deref());
                (None, result.map(|()| None))
            }
            Command::Read {
                id,
                chat,
                message_id,
            } => (
                Some(id),
                shared
                    .read(me, &chat, &message_id)
                    .await
                    .map(|()| Some(serde_json::Value::Null)),
            ),
            Command::Presence { id, kind, to } => (
                Some(id),
                shared
                    .presence(me, &kind, to.as_deref())
                    .map(|()| Some(serde_json::Value::Null)),
            ),
            Command::Subscribe { id, jid } => (
                Some(id),
                shared
                    .subscribe(&self.outbox, &jid)
                    .map(|()| Some(serde_json::Value::Null)),
            ),
            Command::Devices { id } => (
                Some(id),
                shared.linked(&me.number).map(|devices| {
                    Some(json!(
                        devices
                            .iter()
                            .map(|d| json!({
                                "client_id": d.client_id,
                                "browser": d.browser,
                                "linked_at": d.linked_at,
                            }))
                            .collect::<Vec<_>>()
                    ))
                }),
            ),
            Command::Unlink { id, client_id } => (
                Some(id),
                shared
                    .unlink_of(&me.number, &client_id)
                    .await
                    .map(|()| Some(serde_json::Value::Null)),
            ),
            Command::Group {
                id,
                op,
                jid,
                subject,
                participants,
            } => {
                let request = GroupRequest {
                    op,
                    jid,
                    subject,
                    participants,
                };
                let result = shared
                    .group(me, request)
                    .await
                    .map(|gid| Some(gid.map_or(serde_json::Value::Null, |g| json!({ "gid": g }))));
                (Some(id), result)
            }
        }
    }

    fn on_push(&mut self, push: Push) -> Vec<Out> {
        match push {
            Push::Deliver(delivery) => self
                .deliver(delivery.seq, &delivery.info)
                .into_iter()
                .collect(),
            Push::Ack(ack) => vec![event(&WireEvent::Ack {
                message_id: ack.id.clone(),
                ack: ack.level,
                from: ack.from.clone(),
                to: ack.to.clone(),
                participant: ack.participant.clone(),
                t: ack.t,
            })],
            Push::Presence(p) => vec![event(&WireEvent::Presence {
                jid: p.jid.clone(),
                kind: p.kind.clone(),
                t: p.t,
                chat: p.chat.clone(),
            })],
            Push::Group(g) => vec![event(&WireEvent::Group {
                jid: g.jid.clone(),
                op: g.op.clone(),
                author: g.author.clone(),
                participants: g.participants.clone(),
                subject: g.subject.clone(),
            })],
            Push::Disconnect(DisconnectKind::Replaced) => {
                vec![event(&WireEvent::Replaced), Out::Close]
            }
            Push::Disconnect(_) => vec![Out::Close],
            Push::Linked(_) | Push::PhoneReachable(_) | Push::Reply(_) => Vec::new(),
        }
    }

    fn deliver(&mut self, seq: Option<u64>, info: &[u8]) -> Option<Out> {
        if let Some(seq) = seq {
            if self.delivered.len() >= 100_000 {
                self.delivered.clear();
            }
            if !self.delivered.insert(seq) {
                return None;
            }
        }
        let decoded = wa_proto::WebMessageInfo::decode(info).ok()?;
        let chat = decoded.key.remote_jid.as_deref().and_then(ChatJid::parse)?;
        let from_me = decoded.key.from_me == Some(true);
        let sender = if from_me {
            self.me.wid()
        } else {
            match (
                &chat,
                decoded.key.participant.as_deref().and_then(ChatJid::parse),
            ) {
                (ChatJid::Group(_), Some(ChatJid::User(n))) => user_jid(&n),
                (ChatJid::User(n), _) => user_jid(n),
                _ => return None,
            }
        };
        let text = decoded.message.as_ref().and_then(|m| {
            m.conversation.clone().or_else(|| {
                m.extended_text_message
                    .as_ref()
                    .and_then(|e| e.text.clone())
            })
        });
        Metrics::inc(&self.shared.metrics.deliveries);
        Some(event(&WireEvent::Message {
            message_id: decoded.key.id.clone().unwrap_or_default(),
            chat: chat.json(),
            sender,
            from_me,
            t: decoded.message_timestamp.unwrap_or(0),
            text,
            info: STANDARD.encode(info),
        }))
    }
}
