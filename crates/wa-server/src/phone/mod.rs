//! The phone: the primary device of an account, as a library ([`Phone`]) and as the server
//! side of its connection.
//!
//! In the real system the phone spoke its own protocol to the server; that protocol is out of
//! scope here, so this crate defines a small one: JSON objects over a WebSocket at `/phone`.
//!
//! | phone → server | answer |
//! | --- | --- |
//! | `{"cmd":"hello","number":"15551234567","name":"Alice","secret"?:"...","phone"?:{...}}` (first) | `{"event":"ready","wid":"15551234567@c.us","created":true}`, then queued messages |
//! | `{"cmd":"link","id":1,"qr":"<ref>,<public key>,<client id>"}` | `{"event":"result","id":1,"data":{"client_id":...,"browser":...,"linked_at":...}}` |
//! | `{"cmd":"send","id":2,"to":"<jid>","message_id":"3EB0...","text":"hi"}` (or `"message"`: base64 `Message` protobuf) | `{"event":"result","id":2,"data":{"message_id":...}}` once stored, then `ack` events |
//! | `{"cmd":"received","chat":"<jid>","message_id":"...","participant"?:"<jid>"}` | — (delivery receipt) |
//! | `{"cmd":"read","id":3,"chat":"<jid>","message_id":"..."}` | `result` |
//! | `{"cmd":"presence","id":4,"type":"available","to"?:"<jid>"}`, `{"cmd":"subscribe","id":5,"jid":"<jid>"}` | `result` |
//! | `{"cmd":"devices","id":6}` | `result` with `data`: `[{"client_id","browser","linked_at"}]` |
//! | `{"cmd":"unlink","id":7,"client_id":"..."}` | `result` (the client is disconnected, its tokens revoked) |
//! | `{"cmd":"group","id":8,"op":"create","subject":"...","participants":["<jid>",...]}` (or `jid` and `add`, `remove`, `promote`, `demote`, `subject`, `leave`) | `result` (`data.gid` for create) |
//!
//! Failures answer `{"event":"error","id":N,"status":404,"error":"..."}`. The server pushes
//! `{"event":"message","message_id","chat","sender","from_me","t","text"?,"info":<base64 WebMessageInfo>}`,
//! `{"event":"ack","message_id","ack":1|2|3,"from","to","participant"?,"t"}`,
//! `{"event":"presence","jid","type","t","chat"?}`,
//! `{"event":"group","jid","op","author","participants","subject"?}` and `{"event":"replaced"}`.
//!
//! The phone is a device of its account like any linked client: it gets every message, and its
//! delivery receipt counts (the [`Phone`] sends one for every incoming message).
//!
//! Anyone who can reach `/phone` can create an account for a number, and act as the phone of
//! any account without a secret: a reference server for trusted networks, not a verification
//! service. Give the phone a secret ([`PhoneOptions::secret`]) to keep others out of an
//! account once created.

pub(crate) mod server;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use self::wire::{Command, WireEvent};

/// How to connect a phone.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PhoneOptions {
    /// The server: `ws://host:port` (any path is replaced by `/phone`), or `http://host:port`.
    pub url: String,
    /// The phone number, digits only.
    pub number: String,
    /// The display name.
    pub name: String,
    /// A secret that guards the account: set when the account is created, required after.
    pub secret: Option<String>,
    /// Send a delivery receipt for every incoming message. Default `true`.
    pub auto_receipts: bool,
    /// How long a command waits for its answer. Default 10 s.
    pub request_timeout: Duration,
}

impl PhoneOptions {
    /// Options for `number` named `name` on the server at `url`.
    pub fn new(url: &str, number: &str, name: &str) -> PhoneOptions {
        PhoneOptions {
            url: url.to_owned(),
            number: number.to_owned(),
            name: name.to_owned(),
            secret: None,
            auto_receipts: true,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A web client linked to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkedDevice {
    /// Its client id.
    pub client_id: String,
    /// How it described itself (`long / short`).
    pub browser: String,
    /// When it was linked (Unix seconds).
    pub linked_at: u64,
}

/// A message that reached the phone.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IncomingMessage {
    /// The message id.
    pub id: String,
    /// The chat: the other user (`n@c.us`) or the group.
    pub chat: String,
    /// Who sent it (`n@c.us`).
    pub sender: String,
    /// Sent by this account (from another of its devices).
    pub from_me: bool,
    /// The text, for text messages.
    pub text: Option<String>,
    /// When the server stored it (Unix seconds).
    pub timestamp: u64,
    /// The whole message.
    pub info: Box<wa_proto::WebMessageInfo>,
}

/// Something that happened to the phone.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// A message arrived (a delivery receipt went back already if `auto_receipts`).
    Message(IncomingMessage),
    /// A message this account sent reached a level: 1 stored, 2 delivered, 3 read.
    Ack {
        /// The message id.
        id: String,
        /// The level.
        level: u8,
        /// Who caused it (the sender for 1, the recipient for 2 and 3).
        from: String,
        /// The chat.
        to: String,
    },
    /// A contact's presence.
    Presence {
        /// Whose.
        jid: String,
        /// `available`, `unavailable`, `composing`, ...
        kind: String,
        /// In which group, for typing in a group.
        chat: Option<String>,
    },
    /// A group changed.
    Group {
        /// The group.
        jid: String,
        /// `create`, `add`, `remove`, `promote`, `demote`, `subject`, `leave`.
        op: String,
        /// Who did it.
        author: String,
        /// Whom it concerns.
        participants: Vec<String>,
        /// The subject, for `create` and `subject`.
        subject: Option<String>,
    },
    /// The connection ended; `replaced` if another connection took over as this phone.
    Disconnected {
        /// Whether another phone connection replaced this one.
        replaced: bool,
    },
}

/// What went wrong for the phone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The URL is not a server URL.
    #[error("bad server URL: {0}")]
    BadUrl(String),
    /// Could not connect.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused the command.
    #[error("refused ({status}): {reason}")]
    Refused {
        /// The status, HTTP style (400, 401, 403, 404, 429...).
        status: u16,
        /// Why.
        reason: String,
    },
    /// The connection is closed.
    #[error("the phone connection is closed")]
    Closed,
    /// No answer in time.
    #[error("no answer from the server in time")]
    Timeout,
    /// The server said something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// How often an idle phone pings the server.
const KEEPALIVE: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Option<Value>, PhoneError>>>>>;

/// A phone connected to a server: the primary device of its account.
///
/// ```no_run
/// # async fn run() -> Result<(), wa_server::phone::PhoneError> {
/// use wa_server::phone::{Phone, PhoneEvent};
///
/// let mut phone = Phone::connect("ws://127.0.0.1:8080", "15551234567", "Alice").await?;
/// phone.link("1@abc,BASE64KEY=,CLIENTID==").await?;
/// let id = phone.send_text("15559876543@c.us", "hello").await?;
/// while let Some(event) = phone.next_event().await {
///     if let PhoneEvent::Ack { id: acked, level: 3, .. } = event {
///         assert_eq!(acked, id);
///         break;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Phone {
    wid: String,
    created: bool,
    commands: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedReceiver<PhoneEvent>,
    pending: Pending,
    next_id: AtomicU64,
    timeout: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `/phone` URL of a server URL.
fn phone_url(url: &str) -> Result<String, PhoneError> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("ws" | "http", rest)) => ("ws", rest),
        Some(("wss" | "https", rest)) => ("wss", rest),
        Some((other, _)) => return Err(PhoneError::BadUrl(format!("scheme {other:?}"))),
        None => ("ws", url),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(PhoneError::BadUrl(url.to_owned()));
    }
    Ok(format!("{scheme}://{authority}/phone"))
}

fn random_id() -> Result<String, PhoneError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| PhoneError::Connect(format!("no randomness: {e}")))?;
    Ok(format!("3EB0{}", hex::encode_upper(bytes)))
}

impl Phone {
    /// Connects as the phone of `number` (creating the account on first use).
    ///
    /// # Errors
    /// When the URL is bad, the server cannot be reached, or refuses the phone.
    pub async fn connect(url: &str, number: &str, name: &str) -> Result<Phone, PhoneError> {
        Phone::connect_with(PhoneOptions::new(url, number, name)).await
    }

    /// Connects with options.
    ///
    /// # Errors
    /// As [`Phone::connect`].
    pub async fn connect_with(options: PhoneOptions) -> Result<Phone, PhoneError> {
        let url = phone_url(&options.url)?;
        let connect = tokio_tungstenite::connect_async(url.as_str());
        let (mut ws, _) = tokio::time::timeout(options.request_timeout, connect)
            .await
            .map_err(|_| PhoneError::Timeout)?
            .map_err(|e| PhoneError::Connect(e.to_string()))?;
        let hello = Command::Hello {
            number: options.number.clone(),
            name: options.name.clone(),
            secret: options.secret.clone(),
            phone: Some(crate::model::PhoneInfo {
                platform: Some("wa-rs".to_owned()),
                wa_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                device_manufacturer: Some("wa-rs".to_owned()),
                device_model: Some("wa phone".to_owned()),
                os_version: Some(std::env::consts::OS.to_owned()),
            }),
        };
        let hello =
            serde_json::to_string(&hello).map_err(|e| PhoneError::Protocol(e.to_string()))?;
        ws.send(Message::text(hello))
            .await
            .map_err(|e| PhoneError::Connect(e.to_string()))?;
        let first = tokio::time::timeout(options.request_timeout, ws.next())
            .await
            .map_err(|_| PhoneError::Timeout)?;
        let (wid, created) = match first {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<WireEvent>(text.as_str())
            {
                Ok(WireEvent::Ready { wid, created }) => (wid, created),
                Ok(WireEvent::Error { status, error, .. }) => {
                    return Err(PhoneError::Refused {
                        status,
                        reason: error,
                    });
                }
                _ => return Err(PhoneError::Protocol(format!("unexpected {text}"))),
            },
            _ => return Err(PhoneError::Closed),
        };
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let task = tokio::spawn(run(
            ws,
            command_rx,
            commands.clone(),
            event_tx,
            Arc::clone(&pending),
            options.auto_receipts,
        ));
        Ok(Phone {
            wid,
            created,
            commands,
            events,
            pending,
            next_id: AtomicU64::new(1),
            timeout: options.request_timeout,
            task,
        })
    }

    /// The account's JID, `n@c.us`.
    pub fn wid(&self) -> &str {
        &self.wid
    }

    /// Whether connecting created the account.
    pub fn created(&self) -> bool {
        self.created
    }

    async fn request(
        &self,
        make: impl FnOnce(u64) -> Command,
    ) -> Result<Option<Value>, PhoneError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let text =
            serde_json::to_string(&make(id)).map_err(|e| PhoneError::Protocol(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, tx);
        }
        self.commands.send(text).map_err(|_| PhoneError::Closed)?;
        let result = tokio::time::timeout(self.timeout, rx).await;
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
        match result {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(PhoneError::Closed),
            Err(_) => Err(PhoneError::Timeout),
        }
    }

    /// Approves the QR code a web client shows (`ref,public key,client id`): the client is
    /// linked to this account. Linking a sixth client unlinks the oldest.
    ///
    /// # Errors
    /// [`PhoneError::Refused`] when the code is unknown, expired or malformed.
    pub async fn link(&self, qr: &str) -> Result<LinkedDevice, PhoneError> {
        let data = self
            .request(|id| Command::Link {
                id,
                qr: qr.to_owned(),
            })
            .await?
            .unwrap_or_default();
        linked_device(&data).ok_or_else(|| PhoneError::Protocol(format!("link answer {data}")))
    }

    /// Sends a text message to a user (`n@c.us`) or group; returns its id once the server
    /// stored it (ack 1 follows as an event).
    ///
    /// # Errors
    /// [`PhoneError::Refused`] for an unknown recipient (404) or a group the account is not in.
    pub async fn send_text(&self, to: &str, text: &str) -> Result<String, PhoneError> {
        let message_id = random_id()?;
        self.request(|id| Command::Send {
            id,
            to: to.to_owned(),
            message_id: message_id.clone(),
            text: Some(text.to_owned()),
            message: None,
        })
        .await?;
        Ok(message_id)
    }

    /// Sends any message (media messages, for instance); returns its id once stored.
    ///
    /// # Errors
    /// As [`Phone::send_text`].
    pub async fn send_message(
        &self,
        to: &str,
        message: &wa_proto::Message,
    ) -> Result<String, PhoneError> {
        let message_id = random_id()?;
        self.request(|id| Command::Send {
            id,
            to: to.to_owned(),
            message_id: message_id.clone(),
            text: None,
            message: Some(STANDARD.encode(message.encode_to_vec())),
        })
        .await?;
        Ok(message_id)
    }

    /// Marks message `id` of `chat` read: its sender gets ack 3.
    ///
    /// # Errors
    /// When the connection is closed or the server refuses.
    pub async fn read(&self, chat: &str, message_id: &str) -> Result<(), PhoneError> {
        self.request(|id| Command::Read {
            id,
            chat: chat.to_owned(),
            message_id: message_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Sets the own presence (`available`, `unavailable`, or a typing state with `to`).
    ///
    /// # Errors
    /// When the connection is closed or the server refuses.
    pub async fn set_presence(&self, kind: &str, to: Option<&str>) -> Result<(), PhoneError> {
        self.request(|id| Command::Presence {
            id,
            kind: kind.to_owned(),
            to: to.map(str::to_owned),
        })
        .await
        .map(drop)
    }

    /// Subscribes to a user's presence (the current state comes at once as an event).
    ///
    /// # Errors
    /// When the connection is closed or the server refuses.
    pub async fn subscribe(&self, jid: &str) -> Result<(), PhoneError> {
        self.request(|id| Command::Subscribe {
            id,
            jid: jid.to_owned(),
        })
        .await
        .map(drop)
    }

    /// The linked web clients, oldest first.
    ///
    /// # Errors
    /// When the connection is closed.
    pub async fn devices(&self) -> Result<Vec<LinkedDevice>, PhoneError> {
        let data = self.request(|id| Command::Devices { id }).await?;
        Ok(data
            .as_ref()
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(linked_device).collect())
            .unwrap_or_default())
    }

    /// Unlinks a web client: it is disconnected and its tokens stop working.
    ///
    /// # Errors
    /// [`PhoneError::Refused`] (404) when no such client is linked to this account.
    pub async fn unlink(&self, client_id: &str) -> Result<(), PhoneError> {
        self.request(|id| Command::Unlink {
            id,
            client_id: client_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// A group operation: `create` (with `subject` and participants; returns the group JID),
    /// or `add`, `remove`, `promote`, `demote`, `subject`, `leave` on group `jid`.
    ///
    /// # Errors
    /// [`PhoneError::Refused`]: 403 when not allowed, 404 for an unknown group or account.
    pub async fn group(
        &self,
        op: &str,
        jid: Option<&str>,
        subject: Option<&str>,
        participants: &[&str],
    ) -> Result<Option<String>, PhoneError> {
        let data = self
            .request(|id| Command::Group {
                id,
                op: op.to_owned(),
                jid: jid.map(str::to_owned),
                subject: subject.map(str::to_owned),
                participants: participants.iter().map(|p| (*p).to_owned()).collect(),
            })
            .await?;
        Ok(data
            .as_ref()
            .and_then(|d| d.get("gid"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// The next event; `None` once the connection is closed and every event was taken.
    pub async fn next_event(&mut self) -> Option<PhoneEvent> {
        self.events.recv().await
    }

    /// Closes the connection.
    pub async fn close(self) {
        drop(self);
    }
}

fn linked_device(data: &Value) -> Option<LinkedDevice> {
    Some(LinkedDevice {
        client_id: data.get("client_id")?.as_str()?.to_owned(),
        browser: data
            .get("browser")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        linked_at: data.get("linked_at").and_then(Value::as_u64).unwrap_or(0),
    })
}

async fn run<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    mut commands: mpsc::UnboundedReceiver<String>,
    loopback: mpsc::UnboundedSender<String>,
    events: mpsc::UnboundedSender<PhoneEvent>,
    pending: Pending,
    auto_receipts: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut replaced = false;
    // The server closes connections that stay silent; a ping now and then keeps an idle
    // phone connected.
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        tokio::select! {
            _ = keepalive.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                if ws.send(Message::text(command)).await.is_err() {
                    break;
                }
            }
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(event) = serde_json::from_str::<WireEvent>(text.as_str()) else {
                    tracing::debug!(%text, "unknown phone event");
                    continue;
                };
                match event {
                    WireEvent::Result { id, data } => answer(&pending, id, Ok(data)),
                    WireEvent::Error { id: Some(id), status, error } => {
                        answer(&pending, id, Err(PhoneError::Refused { status, reason: error }));
                    }
                    WireEvent::Error { id: None, status, error } => {
                        tracing::warn!(status, %error, "server error");
                    }
                    WireEvent::Replaced => replaced = true,
                    other => {
                        if let Some(event) = to_event(other) {
                            if let (true, PhoneEvent::Message(m)) = (auto_receipts, &event)
                                && !m.from_me
                            {
                                let receipt = Command::Received {
                                    chat: m.chat.clone(),
                                    message_id: m.id.clone(),
                                    participant: m.info.key.participant.clone(),
                                };
                                if let Ok(text) = serde_json::to_string(&receipt) {
                                    let _ = loopback.send(text);
                                }
                            }
                            let _ = events.send(event);
                        }
                    }
                }
            }
        }
    }
    if let Ok(mut pending) = pending.lock() {
        for (_, waiter) in pending.drain() {
            let _ = waiter.send(Err(PhoneError::Closed));
        }
    }
    let _ = events.send(PhoneEvent::Disconnected { replaced });
}

fn answer(pending: &Pending, id: u64, result: Result<Option<Value>, PhoneError>) {
    let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
    if let Some(waiter) = waiter {
        let _ = waiter.send(result);
    }
}

fn to_event(event: WireEvent) -> Option<PhoneEvent> {
    Some(match event {
        WireEvent::Message {
            message_id,
            chat,
            sender,
            from_me,
            t,
            text,
            info,
        } => {
            let bytes = STANDARD.decode(info.as_bytes()).ok()?;
            let info = wa_proto::WebMessageInfo::decode(bytes.as_slice()).ok()?;
            PhoneEvent::Message(IncomingMessage {
                id: message_id,
                chat,
                sender,
                from_me,
                text,
                timestamp: t,
                info: Box::new(info),
            })
        }
        WireEvent::Ack {
            message_id,
            ack,
            from,
            to,
            ..
        } => PhoneEvent::Ack {
            id: message_id,
            level: ack,
            from,
            to,
        },
        WireEvent::Presence {
            jid, kind, chat, ..
        } => PhoneEvent::Presence { jid, kind, chat },
        WireEvent::Group {
            jid,
            op,
            author,
            participants,
            subject,
        } => PhoneEvent::Group {
            jid,
            op,
            author,
            participants,
            subject,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            phone_url("ws://127.0.0.1:80/ws").unwrap(),
            "ws://127.0.0.1:80/phone"
        );
        assert_eq!(phone_url("http://h:1").unwrap(), "ws://h:1/phone");
        assert_eq!(phone_url("https://h/x/y").unwrap(), "wss://h/phone");
        assert_eq!(phone_url("h:2").unwrap(), "ws://h:2/phone");
        assert!(phone_url("ftp://h").is_err());
        assert!(phone_url("ws:///x").is_err());
    }
}
