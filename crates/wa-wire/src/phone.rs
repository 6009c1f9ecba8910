//! The phone's socket (this project's protocol, docs/PROTOCOL.md "The phone protocol"): one JSON
//! object per WebSocket text message.
//!
//! The phone sends [`PhoneRequest`]s, each with a numeric `id` that its answer carries: a
//! [`PhoneEvent::Result`] whose `data` is the request's answer type, or a [`PhoneEvent::Error`].
//! The server pushes the other [`PhoneEvent`]s.
//!
//! | request | answer `data` |
//! | --- | --- |
//! | `register {number, name}`: ask for a verification code, delivered out of band | [`Empty`] |
//! | `verify {number, code, name, identity, phone?}`: prove the code, bind the number to this phone's identity | [`Ready`] |
//! | `hello {number}`: start logging in | [`Challenge`] |
//! | `auth {signature}`: the phone's Ed25519 signature over [`auth_message`] | [`Ready`] |
//! | `keys {upload}` | [`KeyCount`] |
//! | `devices {users}` | [`DeviceLists`] |
//! | `prekeys {devices}` | [`Claims`] |
//! | `relay {relay}` | [`Stored`]; error 409 carries `missing` and `extra` devices |
//! | `receipt {receipt}`, `presence {presence}`, `subscribe {jid}` | [`Empty`] |
//! | `group {action}` | [`GroupCreated`] (`gid` for create) |
//! | `group_metadata {jid}` | [`crate::json::GroupMetadata`] as JSON |
//! | `link {qr, attestation}`: approve a web client's QR code | [`Linked`] |
//! | `linked {}`: the linked web clients | [`LinkedDevices`] |
//! | `unlink {client_id}` | [`Empty`] |
//! | `media_conn {}` | [`MediaAuth`] |
//! | `ping {}` (keepalive) | [`Empty`] |
//! | `mirror_send {device, frames}`: frames for a mirror-mode client | [`Empty`] |
//! | `mirror_challenge {ref, expected}` | [`Empty`] |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::Jid;
use crate::keys::{Claimed, DeviceList, IdentityKeys, KeyUpload, Signature};
use crate::msg::{
    AckNotice, GroupAction, GroupNotice, Incoming, Notification, PresenceNotice, PresenceSet,
    Receipt, Relay,
};
use crate::read::b64;

/// What the phone tells about itself (shown to its linked web clients in the `Conn`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PhoneInfo {
    /// `android`, `iphone`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// WhatsApp version, e.g. `2.21.4.18`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_version: Option<String>,
    /// OS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_manufacturer: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
}

/// The most receipts one [`PhoneRequest::Receipts`] may carry.
pub const MAX_RECEIPTS: usize = 64;

/// Phone → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PhoneRequest {
    /// Ask for a verification code for `number`; the server delivers it out of band (a text
    /// message in the real system; this server's code sender).
    Register {
        /// The request id.
        id: u64,
        /// The phone number, digits only.
        number: String,
        /// The display name.
        #[serde(default)]
        name: String,
    },
    /// Prove the code and bind the account to this phone's identity keys. A number that had
    /// another phone gets this one instead: every contact is told that its identity changed, and
    /// its linked web clients are unlinked.
    Verify {
        /// The request id.
        id: u64,
        /// The phone number.
        number: String,
        /// The code that was delivered.
        code: String,
        /// The display name.
        #[serde(default)]
        name: String,
        /// The phone's identity keys.
        identity: IdentityKeys,
        /// About the phone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<PhoneInfo>,
    },
    /// Start logging in as the phone of `number`.
    Hello {
        /// The request id.
        id: u64,
        /// The phone number.
        number: String,
    },
    /// The answer to the login challenge.
    Auth {
        /// The request id.
        id: u64,
        /// Ed25519 signature of [`auth_message`] with the phone's identity key.
        signature: Signature,
    },
    /// Publish key material.
    Keys {
        /// The request id.
        id: u64,
        /// The keys.
        upload: KeyUpload,
    },
    /// Device lists of users.
    Devices {
        /// The request id.
        id: u64,
        /// The users.
        users: Vec<Jid>,
    },
    /// Claim one-time keys of devices.
    PreKeys {
        /// The request id.
        id: u64,
        /// The devices.
        devices: Vec<Jid>,
    },
    /// Send an end-to-end encrypted message.
    Relay {
        /// The request id.
        id: u64,
        /// The message.
        relay: Relay,
    },
    /// A receipt for a message the phone received.
    Receipt {
        /// The request id.
        id: u64,
        /// The receipt.
        receipt: Receipt,
    },
    /// Receipts for several messages the phone received, in one request and one answer (as
    /// WhatsApp's own receipts carry a list of further message ids): what a phone sends for
    /// messages that arrived together. Between 1 and [`MAX_RECEIPTS`] of them; each counts
    /// against the account's budget as a receipt of its own.
    Receipts {
        /// The request id.
        id: u64,
        /// The receipts.
        receipts: Vec<Receipt>,
    },
    /// Set the own presence.
    Presence {
        /// The request id.
        id: u64,
        /// The presence.
        presence: PresenceSet,
    },
    /// Receive a contact's presence.
    Subscribe {
        /// The request id.
        id: u64,
        /// The contact.
        jid: Jid,
    },
    /// A group operation.
    Group {
        /// The request id.
        id: u64,
        /// The operation.
        action: GroupAction,
    },
    /// A group's subject and members.
    GroupMetadata {
        /// The request id.
        id: u64,
        /// The group.
        jid: Jid,
    },
    /// Approve the QR code a web client shows.
    Link {
        /// The request id.
        id: u64,
        /// The QR text: `ref,public key,client id` (legacy) or with the client's identity keys
        /// appended (`ref,public key,client id,curve25519,ed25519`: an end-to-end client).
        qr: String,
        /// For an end-to-end client: the phone's signature over the client's identity keys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attestation: Option<Signature>,
        /// For a legacy client (a mirror of this phone): the login secret the phone made for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mirror: Option<MirrorLink>,
    },
    /// The linked web clients.
    Linked {
        /// The request id.
        id: u64,
    },
    /// Unlink a web client.
    Unlink {
        /// The request id.
        id: u64,
        /// Its client id.
        client_id: String,
    },
    /// Upload auth for the media service.
    MediaConn {
        /// The request id.
        id: u64,
    },
    /// Keepalive: answered with an empty result.
    Ping {
        /// The request id.
        id: u64,
    },
    /// Frames for a mirror-mode web client of this phone, sealed with that client's keys (the
    /// server passes them on unread).
    MirrorSend {
        /// The request id.
        id: u64,
        /// The client's device address.
        device: Jid,
        /// The frames, in order.
        frames: Vec<MirrorFrame>,
    },
    /// The answer a mirror client's challenge expects (the server cannot compute it: it does not
    /// have the client's keys).
    MirrorChallenge {
        /// The request id.
        id: u64,
        /// The ref the waiting connection named.
        r#ref: String,
        /// `HMAC-SHA256(mac_key, challenge)`.
        #[serde(with = "b64")]
        expected: Vec<u8>,
    },
}

impl PhoneRequest {
    /// The request id its answer carries.
    pub fn id(&self) -> u64 {
        match self {
            PhoneRequest::Register { id, .. }
            | PhoneRequest::Verify { id, .. }
            | PhoneRequest::Hello { id, .. }
            | PhoneRequest::Auth { id, .. }
            | PhoneRequest::Keys { id, .. }
            | PhoneRequest::Devices { id, .. }
            | PhoneRequest::PreKeys { id, .. }
            | PhoneRequest::Relay { id, .. }
            | PhoneRequest::Receipt { id, .. }
            | PhoneRequest::Receipts { id, .. }
            | PhoneRequest::Presence { id, .. }
            | PhoneRequest::Subscribe { id, .. }
            | PhoneRequest::Group { id, .. }
            | PhoneRequest::GroupMetadata { id, .. }
            | PhoneRequest::Link { id, .. }
            | PhoneRequest::Linked { id }
            | PhoneRequest::Unlink { id, .. }
            | PhoneRequest::MediaConn { id }
            | PhoneRequest::Ping { id }
            | PhoneRequest::MirrorSend { id, .. }
            | PhoneRequest::MirrorChallenge { id, .. } => *id,
        }
    }

    /// The JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes a request from its JSON text: the same as `serde_json::from_str`, faster for
    /// the requests a busy phone sends most.
    ///
    /// - A relay or a receipt written exactly as [`Self::to_text`] writes it (no whitespace,
    ///   no escapes) is read by hand, without serde.
    /// - Otherwise, serde buffers an internally tagged enum whole (every string copied, every
    ///   number boxed) before it decodes the variant the tag names; a text that starts with
    ///   the tag of a `relay`, a `receipt` or `receipts` is decoded in place as that variant.
    /// - Any error there, and any other text, goes the general way, so what is accepted and
    ///   each error's message are the same.
    pub fn from_text(text: &str) -> serde_json::Result<PhoneRequest> {
        if let Some(request) = crate::canonical::request(text) {
            return Ok(request);
        }
        // A variant's fields, and the tag again: a second `cmd` is an error, as in the general
        // way.
        #[derive(Deserialize)]
        struct RelayFields<'a> {
            #[serde(borrow)]
            cmd: std::borrow::Cow<'a, str>,
            id: u64,
            relay: Relay,
        }
        #[derive(Deserialize)]
        struct ReceiptFields<'a> {
            #[serde(borrow)]
            cmd: std::borrow::Cow<'a, str>,
            id: u64,
            receipt: Receipt,
        }
        #[derive(Deserialize)]
        struct ReceiptsFields<'a> {
            #[serde(borrow)]
            cmd: std::borrow::Cow<'a, str>,
            id: u64,
            receipts: Vec<Receipt>,
        }
        let fast = in_place(text, "relay", |f: &RelayFields<'_>| &f.cmd)
            .map(|f| PhoneRequest::Relay {
                id: f.id,
                relay: f.relay,
            })
            .or_else(|| {
                in_place(text, "receipt", |f: &ReceiptFields<'_>| &f.cmd).map(|f| {
                    PhoneRequest::Receipt {
                        id: f.id,
                        receipt: f.receipt,
                    }
                })
            })
            .or_else(|| {
                in_place(text, "receipts", |f: &ReceiptsFields<'_>| &f.cmd).map(|f| {
                    PhoneRequest::Receipts {
                        id: f.id,
                        receipts: f.receipts,
                    }
                })
            });
        match fast {
            Some(request) => Ok(request),
            None => serde_json::from_str(text),
        }
    }
}

/// `text` decoded in place as the fields of the variant tagged `cmd` (`F`, which reads the tag
/// again: `tag` gives it back, and a second `cmd` is an error, as in the general way); `None`
/// for a text that does not start with that tag, and for any error.
fn in_place<'a, F: Deserialize<'a>>(
    text: &'a str,
    cmd: &str,
    tag: fn(&F) -> &std::borrow::Cow<'a, str>,
) -> Option<F> {
    text.strip_prefix(r#"{"cmd":""#)?
        .strip_prefix(cmd)?
        .starts_with(r#"","#)
        .then(|| serde_json::from_str(text).ok())
        .flatten()
        .filter(|f| tag(f) == cmd)
}

/// Server → phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PhoneEvent {
    /// A request succeeded; `data` is its answer type (see the table in the module docs).
    Result {
        /// The request id.
        id: u64,
        /// The answer.
        #[serde(default)]
        data: Value,
    },
    /// A request (or the connection, without `id`) failed.
    Error {
        /// The request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// An HTTP-like status.
        status: u16,
        /// Why.
        error: String,
        /// For a 409 answering a relay: devices not encrypted for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<Jid>,
        /// For a 409 answering a relay: devices encrypted for that are not recipients.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        extra: Vec<Jid>,
    },
    /// A message for the phone.
    Message {
        /// It.
        message: Incoming,
    },
    /// A tick for a message the account sent.
    Ack {
        /// It.
        ack: AckNotice,
    },
    /// A contact's presence.
    Presence {
        /// It.
        presence: PresenceNotice,
    },
    /// A group changed.
    Group {
        /// It.
        change: GroupNotice,
    },
    /// The key directory has news.
    Notification {
        /// It.
        notification: Notification,
    },
    /// A web client finished linking (its `Conn` went out).
    Linked {
        /// Its client id.
        client_id: String,
        /// Its device address.
        device: Jid,
    },
    /// Another connection logged in as this phone: this one is closed.
    Replaced,
    /// A frame a mirror-mode web client sent, still sealed with its keys.
    MirrorFrame {
        /// The client's device address.
        device: Jid,
        /// The whole WebSocket message.
        frame: MirrorFrame,
    },
    /// A mirror client logged in: send it what it should show (chat and contact lists, recent
    /// messages).
    MirrorOnline {
        /// The client's device address.
        device: Jid,
    },
    /// A mirror client logging in with tokens one rotation old must answer a challenge only the
    /// phone can check: answer with [`PhoneRequest::MirrorChallenge`].
    MirrorChallenge {
        /// The client's device address.
        device: Jid,
        /// The ref to answer to.
        r#ref: String,
        /// The challenge.
        #[serde(with = "b64")]
        challenge: Vec<u8>,
    },
}

/// A legacy client linked as a mirror of its phone: the `secret` of its `Conn` (PROTOCOL.md
/// §2.3), made by the phone from the QR code's public key, and the SHA-256 (hex) of its logout
/// token, so that the server can check an HTTP logout without the client's keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorLink {
    /// Base64 of the 144-byte secret.
    pub secret: String,
    /// SHA-256 (hex) of the logout token: the base64 text of `HMAC-SHA256(mac_key, enc_key)`,
    /// as the client sends it in `m` (PROTOCOL.md §2.6), so the server can check an offline
    /// logout without the keys.
    pub logout_hash: String,
}

impl std::fmt::Debug for MirrorLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MirrorLink { .. }")
    }
}

/// One WebSocket message to or from a mirror client, opaque to the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "lowercase")]
pub enum MirrorFrame {
    /// A text message.
    Text(String),
    /// A binary message (base64 in JSON).
    Binary(#[serde(with = "b64")] Vec<u8>),
}

impl std::fmt::Debug for MirrorFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MirrorFrame::Text(t) => write!(f, "Text({} bytes)", t.len()),
            MirrorFrame::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

impl PhoneEvent {
    /// The JSON text: the same as `serde_json::to_string`, faster for the events a busy server
    /// sends most: a [`PhoneEvent::Message`], whose ciphertexts' base64 is written straight
    /// into the text (serde_json would scan it byte by byte for characters to escape, and
    /// base64 has none), and a [`PhoneEvent::Ack`], written field by field.
    pub fn to_text(&self) -> String {
        let fast = match self {
            PhoneEvent::Message { message } => message_text(message),
            PhoneEvent::Ack { ack } => ack_text(ack),
            _ => None,
        };
        fast.unwrap_or_else(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// A result with a typed answer.
    pub fn result<T: Serialize>(id: u64, data: &T) -> PhoneEvent {
        PhoneEvent::Result {
            id,
            data: serde_json::to_value(data).unwrap_or(Value::Null),
        }
    }

    /// The JSON text of [`PhoneEvent::result`]`(id, data)`, with `data` written directly
    /// instead of through a [`Value`] (which a busy server's every answer paid for). The same
    /// JSON value; an object's keys come in `data`'s own order rather than sorted.
    pub fn result_text<T: Serialize>(id: u64, data: &T) -> String {
        #[derive(Serialize)]
        struct Answer<'a, T> {
            event: &'static str,
            id: u64,
            data: &'a T,
        }
        let answer = Answer {
            event: "result",
            id,
            data,
        };
        // (What cannot be written as JSON goes the general way, which answers `null`.)
        serde_json::to_string(&answer).unwrap_or_else(|_| PhoneEvent::result(id, data).to_text())
    }

    /// An error answering request `id`.
    pub fn error(id: Option<u64>, status: u16, error: impl Into<String>) -> PhoneEvent {
        PhoneEvent::Error {
            id,
            status,
            error: error.into(),
            missing: Vec::new(),
            extra: Vec::new(),
        }
    }
}

/// The JSON text of a [`PhoneEvent::Message`], written field by field in serde's order, with
/// every string still escaped by serde_json, but its ciphertexts' base64 (most of the text,
/// and an alphabet JSON never escapes) encoded straight into the text instead of into a
/// string of its own that serde_json then scans byte by byte. `None` if serde_json failed on a
/// part (it does not, on these types): the caller goes the general way.
fn message_text(message: &Incoming) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    let b64_len = |bytes: &[u8]| bytes.len().div_ceil(3) * 4;
    let capacity = 160
        + message.id.len()
        + message.group.as_deref().map_or(0, b64_len)
        + message.olm.as_ref().map_or(0, |o| b64_len(&o.body));
    let mut out = Vec::with_capacity(capacity);
    let m = message;
    field(
        &mut out,
        br#"{"event":"message","message":{"from":"#,
        &m.from,
    )?;
    field(&mut out, br#","chat":"#, &m.chat)?;
    field(&mut out, br#","id":"#, &m.id)?;
    field(&mut out, br#","t":"#, &m.t)?;
    field(&mut out, br#","kind":"#, &m.kind.as_str())?;
    let mut text = String::from_utf8(out).ok()?;
    if let Some(group) = &m.group {
        text.push_str(r#","group":""#);
        STANDARD.encode_string(group, &mut text);
        text.push('"');
    }
    if let Some(olm) = &m.olm {
        text.push_str(r#","olm":{"type":""#);
        text.push_str(olm.kind.as_str());
        text.push_str(r#"","body":""#);
        STANDARD.encode_string(&olm.body, &mut text);
        text.push('"');
        text.push('}');
    }
    text.push_str("}}");
    Some(text)
}

/// The JSON text of a [`PhoneEvent::Ack`] (a tick, which every receipt that counts sends),
/// written field by field in serde's order, each value as serde_json writes it: without the
/// general way's tagged enum and struct machinery. `None` if serde_json failed on a part (it
/// does not, on these types): the caller goes the general way.
fn ack_text(ack: &AckNotice) -> Option<String> {
    let mut out = Vec::with_capacity(120 + ack.id.len());
    field(&mut out, br#"{"event":"ack","ack":{"id":"#, &ack.id)?;
    field(&mut out, br#","level":"#, &ack.level)?;
    field(&mut out, br#","sender":"#, &ack.sender)?;
    field(&mut out, br#","chat":"#, &ack.chat)?;
    if let Some(participant) = &ack.participant {
        field(&mut out, br#","participant":"#, participant)?;
    }
    field(&mut out, br#","t":"#, &ack.t)?;
    out.extend_from_slice(b"}}");
    String::from_utf8(out).ok()
}

/// Writes `head`, then `value` as serde_json writes it.
fn field(out: &mut Vec<u8>, head: &[u8], value: &impl Serialize) -> Option<()> {
    out.extend_from_slice(head);
    serde_json::to_writer(&mut *out, value).ok()
}

/// What the phone signs to log in: a domain separator, the number and the server's nonce.
pub fn auth_message(number: &str, nonce: &[u8]) -> Vec<u8> {
    let mut message = b"wa-rs phone auth v1\0".to_vec();
    message.extend_from_slice(number.as_bytes());
    message.push(0);
    message.extend_from_slice(nonce);
    message
}

/// An answer without data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Logged in as the phone of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// The account (`<number>@c.us`).
    pub wid: Jid,
    /// Whether `verify` created the account (false: it existed, with this or another phone).
    #[serde(default)]
    pub created: bool,
    /// Whether the phone's identity changed with this `verify`.
    #[serde(default)]
    pub identity_changed: bool,
}

/// The login challenge: sign [`auth_message`] of the number and this nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// 32 random bytes.
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
}

/// One-time keys the server holds for the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// How many.
    pub count: u32,
}

/// Device lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLists {
    /// One per user asked for (an empty `devices` for a number without an account).
    pub lists: Vec<DeviceList>,
}

/// Claimed pre-keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// One per device asked for.
    pub claimed: Vec<Claimed>,
}

/// A message was stored (ack 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The server's timestamp (Unix seconds).
    pub t: u64,
}

/// The answer to a group operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCreated {
    /// The new group, for create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<Jid>,
}

/// A web client was linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    /// Its client id.
    pub client_id: String,
    /// Its device address.
    pub device: Jid,
}

/// One linked web client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedDevice {
    /// Its client id.
    pub client_id: String,
    /// Its device address.
    pub device: Jid,
    /// How it described itself (`long / short`).
    pub browser: String,
    /// When it was linked (Unix seconds).
    pub linked_at: u64,
    /// Whether it is a mirror of the phone (a legacy client) rather than an end-to-end
    /// endpoint of its own.
    #[serde(default)]
    pub mirror: bool,
}

/// The linked web clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedDevices {
    /// Oldest first.
    pub devices: Vec<LinkedDevice>,
}

/// Upload auth for the media service.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaAuth {
    /// The auth token.
    pub auth: String,
    /// Upload hosts (`host:port`).
    pub hosts: Vec<String>,
    /// Seconds it stays valid.
    pub ttl: u64,
    /// The largest upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

impl std::fmt::Debug for MediaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaAuth")
            .field("hosts", &self.hosts)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
