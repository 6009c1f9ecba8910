//! The phone protocol on the wire: one JSON object per WebSocket text message.
//!
//! Phone → server: objects with a `cmd` field; those that expect an answer carry a numeric
//! `id`, answered by `{"event":"result","id":N,...}` or `{"event":"error","id":N,...}`.
//! Server → phone: objects with an `event` field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::PhoneInfo;

/// Phone → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub(crate) enum Command {
    /// The first message: who the phone is. Creates the account on first use; `secret`, if
    /// given when the account is created, is required from then on.
    Hello {
        number: String,
        #[serde(default)]
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<PhoneInfo>,
    },
    /// Approve a QR code shown by a web client.
    Link { id: u64, qr: String },
    /// Send a message: a text, or a base64 `Message` protobuf.
    Send {
        id: u64,
        to: String,
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Delivery receipt for a message the phone got (`chat` as the phone sees it).
    Received {
        chat: String,
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        participant: Option<String>,
    },
    /// Read receipt.
    Read {
        id: u64,
        chat: String,
        message_id: String,
    },
    /// Own presence (`available`, `unavailable`, `composing`, `paused`, `recording`).
    Presence {
        id: u64,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Subscribe to a user's presence.
    Subscribe { id: u64, jid: String },
    /// List the linked web clients.
    Devices { id: u64 },
    /// Unlink a web client.
    Unlink { id: u64, client_id: String },
    /// A group operation, as in the binary protocol.
    Group {
        id: u64,
        op: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jid: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default)]
        participants: Vec<String>,
    },
}

impl Command {
    /// The id a command is answered under, if it has one.
    pub(crate) fn id(&self) -> Option<u64> {
        match self {
            Command::Hello { .. } | Command::Received { .. } => None,
            Command::Link { id, .. }
            | Command::Send { id, .. }
            | Command::Read { id, .. }
            | Command::Presence { id, .. }
            | Command::Subscribe { id, .. }
            | Command::Devices { id }
            | Command::Unlink { id, .. }
            | Command::Group { id, .. } => Some(*id),
        }
    }
}

/// Server → phone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum WireEvent {
    /// Answer to `hello`.
    Ready { wid: String, created: bool },
    /// A command succeeded.
    Result {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
    /// A command (or the connection) failed.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        status: u16,
        error: String,
    },
    /// A message for the phone (base64 `WebMessageInfo`, plus its main fields in clear).
    Message {
        message_id: String,
        chat: String,
        sender: String,
        from_me: bool,
        t: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        info: String,
    },
    /// Ticks for a message the account sent.
    Ack {
        message_id: String,
        ack: u8,
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        participant: Option<String>,
        t: u64,
    },
    /// A contact's presence.
    Presence {
        jid: String,
        #[serde(rename = "type")]
        kind: String,
        t: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat: Option<String>,
    },
    /// A group changed.
    Group {
        jid: String,
        op: String,
        author: String,
        participants: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    /// Another connection took over as this phone.
    Replaced,
}
