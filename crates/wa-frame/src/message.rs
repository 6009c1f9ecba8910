//! Typed JSON messages from the server (PROTOCOL.md §2, §2.6).
//!
//! A server command is an array whose first element names its kind (`["Conn",{...}]`); a
//! response to a request is an object (`{"status":200,...}`). Every typed message keeps the
//! fields it does not know in `extra`, and [`ServerMessage::to_json`] writes them back, so a
//! message read and written again is the same JSON (except that an explicit `null` in a typed
//! field reads as absent and is written back absent). Kinds without a type here (`Contact`,
//! `Status`, anything new) are [`ServerMessage::Unknown`], never an error.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::response::Response;

/// A JSON message from the server.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// `["Conn",{...}]`: connection info and credentials after a QR scan, a login or a
    /// challenge.
    Conn(Box<Conn>),
    /// `["Stream", state, ...]`, e.g. `["Stream","update",false,"0.2.7314"]`, `["Stream","asleep"]`.
    Stream(Stream),
    /// `["Props",{...}]`: server limits.
    Props(Props),
    /// `["Cmd",{"type":...}]`: a command (challenge, disconnect, update).
    Cmd(Cmd),
    /// `["Msg",{"cmd":"ack",...}]`: the ack of one message.
    Msg(MsgAck),
    /// `["MsgInfo",{"cmd":"acks",...}]`: the ack of one or more messages.
    MsgInfo(MsgInfoAcks),
    /// `["Presence",{...}]`: a contact's presence.
    Presence(Presence),
    /// `["Chat",{...}]`: a chat event (e.g. group participants).
    Chat(Chat),
    /// `["Blocklist",{...}]`: the blocked contacts.
    Blocklist(Blocklist),
    /// `["Pong",bool]`: answer to `["admin","test"]`, whether the phone is reachable.
    Pong(bool),
    /// An object: the response to a request (`{"status":200,"ref":...}`).
    Response(Response),
    /// Any other JSON (an unknown kind, `Contact`, `Status`, ...), kept as it is.
    Unknown(Value),
}

impl ServerMessage {
    /// Reads a server message.
    ///
    /// # Errors
    ///
    /// [`MessageError`] when a message of a known kind does not have that kind's shape (for
    /// example `["Conn", 5]`). The error holds the whole JSON value, so nothing is lost.
    pub fn from_json(value: Value) -> Result<Self, MessageError> {
        let kind = match &value {
            Value::Object(_) => {
                let Value::Object(map) = value else {
                    return Ok(Self::Unknown(value));
                };
                return Ok(Self::Response(Response::from_map(map)));
            }
            Value::Array(items) => match items.first().and_then(Value::as_str) {
                Some(kind) => kind.to_owned(),
                None => return Ok(Self::Unknown(value)),
            },
            _ => return Ok(Self::Unknown(value)),
        };
        let parsed = match kind.as_str() {
            "Conn" => body(&value).map(|conn| Self::Conn(Box::new(conn))),
            "Stream" => Stream::from_items(&value).map(Self::Stream),
            "Props" => body(&value).map(Self::Props),
            "Cmd" => single_object(&value).map(|map| Self::Cmd(Cmd::from_map(map.clone()))),
            "Msg" => body(&value).map(Self::Msg),
            "MsgInfo" => body(&value).map(Self::MsgInfo),
            "Presence" => body(&value).map(Self::Presence),
            "Chat" => body(&value).map(Self::Chat),
            "Blocklist" => body(&value).map(Self::Blocklist),
            "Pong" => match value.as_array().map(Vec::as_slice) {
                Some([_, Value::Bool(up)]) => Ok(Self::Pong(*up)),
                _ => Err("expected [\"Pong\", bool]".to_owned()),
            },
            _ => return Ok(Self::Unknown(value)),
        };
        parsed.map_err(|detail| MessageError {
            kind,
            detail,
            value,
        })
    }

    /// The message as JSON: for a message read by [`from_json`](Self::from_json), the same
    /// JSON (object keys may come out in another order).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Conn(conn) => tagged("Conn", &**conn),
            Self::Stream(stream) => {
                let mut items = vec![json!("Stream"), json!(stream.state)];
                items.extend(stream.args.iter().cloned());
                Value::Array(items)
            }
            Self::Props(props) => tagged("Props", props),
            Self::Cmd(cmd) => json!(["Cmd", cmd.to_map()]),
            Self::Msg(ack) => tagged("Msg", ack),
            Self::MsgInfo(acks) => tagged("MsgInfo", acks),
            Self::Presence(presence) => tagged("Presence", presence),
            Self::Chat(chat) => tagged("Chat", chat),
            Self::Blocklist(blocklist) => tagged("Blocklist", blocklist),
            Self::Pong(up) => json!(["Pong", up]),
            Self::Response(response) => Value::Object(response.to_map()),
            Self::Unknown(value) => value.clone(),
        }
    }
}

fn tagged(kind: &str, body: &impl Serialize) -> Value {
    // The types here serialize to objects of strings, numbers and nested JSON values: this
    // cannot fail, and `Null` would only stand for a bug.
    json!([kind, serde_json::to_value(body).unwrap_or(Value::Null)])
}

/// The object of `[kind, {...}]`.
fn single_object(value: &Value) -> Result<&Map<String, Value>, String> {
    match value.as_array().map(Vec::as_slice) {
        Some([_, Value::Object(map)]) => Ok(map),
        _ => Err("expected [kind, {...}]".to_owned()),
    }
}

/// The object of `[kind, {...}]` as a `T`.
fn body<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    match value.as_array().map(Vec::as_slice) {
        Some([_, object @ Value::Object(_)]) => {
            T::deserialize(object).map_err(|err| err.to_string())
        }
        _ => Err("expected [kind, {...}]".to_owned()),
    }
}

/// A server message of a known kind whose shape is wrong. Holds the whole message.
#[derive(Debug, Error)]
#[error("malformed {kind:?} message: {detail}")]
pub struct MessageError {
    kind: String,
    detail: String,
    value: Value,
}

impl MessageError {
    /// The message kind (`"Conn"`, `"Cmd"`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The message as received.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The message as received, to keep or log.
    pub fn into_value(self) -> Value {
        self.value
    }
}

/// `["Conn",{...}]`: who is logged in, the tokens to persist, and (after a QR scan) the `secret`
/// for the key schedule. Tokens change with every `Conn`: persist them again each time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Conn {
    /// The phone's battery, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<i64>,
    /// For logging out without a socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_token: Option<String>,
    /// For `admin login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// For `admin login` and the challenge answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_token: Option<String>,
    /// Base64 of 144 bytes: the input of the key schedule (only after a QR scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The own JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wid: Option<String>,
    /// The own display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushname: Option<String>,
    /// The phone's platform (`android`, `iphone`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    /// Whether the phone is charging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugged: Option<bool>,
    /// Country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lc: Option<String>,
    /// Language code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lg: Option<String>,
    /// Terms-of-service state (`>= 2` is a ban).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos: Option<i64>,
    /// 24-hour clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is24h: Option<bool>,
    /// Whether the phone is connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// Protocol version, e.g. `[0, 17]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_version: Option<Vec<u64>>,
    /// Binary node encoding version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_version: Option<u64>,
    /// The QR ref this `Conn` answers.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<String>,
    /// Feature switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Value>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The phone of a [`Conn`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Phone {
    /// E.g. `2.20.123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_version: Option<String>,
    /// Mobile country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcc: Option<String>,
    /// Mobile network code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnc: Option<String>,
    /// Operating system version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_manufacturer: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
    /// Operating system build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_build_number: Option<String>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `["Stream", state, ...]`. The meaning of the elements after the state is not documented, so
/// they are kept as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// `"update"`, `"asleep"`, ...
    pub state: String,
    /// The elements after the state, e.g. `[false, "0.2.7314"]` for an update.
    pub args: Vec<Value>,
}

impl Stream {
    fn from_items(value: &Value) -> Result<Self, String> {
        match value.as_array().map(Vec::as_slice) {
            Some([_, Value::String(state), args @ ..]) => Ok(Self {
                state: state.clone(),
                args: args.to_vec(),
            }),
            _ => Err("expected [\"Stream\", state, ...]".to_owned()),
        }
    }

    /// `["Stream","asleep"]`: the phone is unreachable.
    pub fn is_asleep(&self) -> bool {
        self.state == "asleep"
    }

    /// For `["Stream","update",_,"<version>"]`, the server's web version.
    pub fn update_version(&self) -> Option<&str> {
        if self.state != "update" {
            return None;
        }
        self.args.iter().rev().find_map(Value::as_str)
    }
}

/// `["Props",{...}]`: server limits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Props {
    /// Largest image to send, in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_max_k_bytes: Option<u64>,
    /// Most participants of a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u64>,
    /// Longest edge of a video, in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_max_edge: Option<u64>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `["Cmd",{"type":...}]`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Cmd {
    /// `{"type":"challenge","challenge":"<base64>"}`: prove the session keys (answer with
    /// `["admin","challenge",...]`).
    Challenge {
        /// The base64 challenge.
        challenge: String,
        /// Every other field.
        extra: Map<String, Value>,
    },
    /// `{"type":"disconnect"}`; with `"kind":"replaced"` another client took over: stop, and
    /// do not reconnect automatically.
    Disconnect {
        /// Why, e.g. `"replaced"`.
        kind: Option<String>,
        /// Every other field.
        extra: Map<String, Value>,
    },
    /// `{"type":"update"}`: this client version is rejected.
    Update {
        /// Every other field.
        extra: Map<String, Value>,
    },
    /// Any other command (or a known one with an unexpected shape), as received.
    Other(Map<String, Value>),
}

impl Cmd {
    fn from_map(mut map: Map<String, Value>) -> Self {
        let kind = map.get("type").and_then(Value::as_str).map(str::to_owned);
        match kind.as_deref() {
            Some("challenge") if map.get("challenge").is_some_and(Value::is_string) => {
                let challenge = take_string(&mut map, "challenge");
                map.remove("type");
                Self::Challenge {
                    challenge,
                    extra: map,
                }
            }
            Some("disconnect") if map.get("kind").is_none_or(Value::is_string) => {
                let kind = map
                    .contains_key("kind")
                    .then(|| take_string(&mut map, "kind"));
                map.remove("type");
                Self::Disconnect { kind, extra: map }
            }
            Some("update") => {
                map.remove("type");
                Self::Update { extra: map }
            }
            _ => Self::Other(map),
        }
    }

    fn to_map(&self) -> Map<String, Value> {
        let (kind, extra, fields): (&str, &Map<String, Value>, Vec<(&str, &String)>) = match self {
            Self::Challenge { challenge, extra } => {
                ("challenge", extra, vec![("challenge", challenge)])
            }
            Self::Disconnect { kind, extra } => (
                "disconnect",
                extra,
                kind.iter().map(|k| ("kind", k)).collect(),
            ),
            Self::Update { extra } => ("update", extra, Vec::new()),
            Self::Other(map) => return map.clone(),
        };
        let mut map = extra.clone();
        map.insert("type".to_owned(), json!(kind));
        for (key, value) in fields {
            map.insert(key.to_owned(), json!(value));
        }
        map
    }

    /// Whether this is `{"type":"disconnect","kind":"replaced"}`: another client took over.
    pub fn is_replaced(&self) -> bool {
        matches!(self, Self::Disconnect { kind: Some(kind), .. } if kind == "replaced")
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> String {
    match map.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// An ack level (PROTOCOL.md §2.6): `WebMessageInfo.status` minus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ack(pub i64);

impl Ack {
    /// `-1`: the message failed.
    pub const ERROR: Self = Self(-1);
    /// `0`: not yet sent.
    pub const PENDING: Self = Self(0);
    /// `1`: the server stored it (one tick).
    pub const SERVER: Self = Self(1);
    /// `2`: delivered to the recipient's device (two ticks).
    pub const DELIVERED: Self = Self(2);
    /// `3`: read (blue ticks).
    pub const READ: Self = Self(3);
    /// `4`: played (voice notes).
    pub const PLAYED: Self = Self(4);
}

/// `["Msg",{"cmd":"ack",...}]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MsgAck {
    /// `"ack"`.
    pub cmd: String,
    /// The message id.
    pub id: String,
    /// The ack level.
    pub ack: Ack,
    /// Sender JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recipient JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For groups: the participant who acked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u64>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `id` of a `MsgInfo`: one message id or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MsgIds {
    /// One message id.
    One(String),
    /// Several message ids.
    Many(Vec<String>),
}

impl MsgIds {
    /// The ids as a slice-like iterator.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Self::One(id) => (Some(id.as_str()), &[][..]),
            Self::Many(ids) => (None, ids.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// `["MsgInfo",{"cmd":"acks",...}]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MsgInfoAcks {
    /// `"acks"` (or `"ack"`).
    pub cmd: String,
    /// The message ids.
    pub id: MsgIds,
    /// The ack level.
    pub ack: Ack,
    /// Sender JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Recipient JID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For groups: the participant who acked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u64>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a [`Presence`] says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PresenceType {
    /// Online.
    Available,
    /// Offline.
    Unavailable,
    /// Typing.
    Composing,
    /// Stopped typing.
    Paused,
    /// Recording a voice note.
    Recording,
    /// Anything else, as received.
    Other(String),
}

impl From<String> for PresenceType {
    fn from(text: String) -> Self {
        match text.as_str() {
            "available" => Self::Available,
            "unavailable" => Self::Unavailable,
            "composing" => Self::Composing,
            "paused" => Self::Paused,
            "recording" => Self::Recording,
            _ => Self::Other(text),
        }
    }
}

impl From<PresenceType> for String {
    fn from(presence: PresenceType) -> Self {
        match presence {
            PresenceType::Available => "available".to_owned(),
            PresenceType::Unavailable => "unavailable".to_owned(),
            PresenceType::Composing => "composing".to_owned(),
            PresenceType::Paused => "paused".to_owned(),
            PresenceType::Recording => "recording".to_owned(),
            PresenceType::Other(text) => text,
        }
    }
}

/// `["Presence",{"id":jid,"type":...}]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Presence {
    /// The contact (or group) JID.
    pub id: String,
    /// What the contact is doing.
    #[serde(rename = "type")]
    pub kind: PresenceType,
    /// In groups: who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    /// Unix seconds (last seen, for `unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<u64>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `["Chat",{"id":jid,"cmd":...,"data":...}]`, e.g. group participant changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Chat {
    /// The chat JID.
    pub id: String,
    /// The command, e.g. `"action"`.
    pub cmd: String,
    /// The command's data, e.g. `["add", author, [jids]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `["Blocklist",{"id":n,"blocklist":[jids]}]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Blocklist {
    /// A version number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The blocked JIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocklist: Option<Vec<String>>,
    /// Every other field, as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
