//! The JSON side of the web client's socket that `wa-frame` leaves untyped: the JSON queries and
//! actions a client sends, the replies (objects with a `status`) this project's server writes,
//! and typed constructors for the server's JSON pushes (acks, presence, group changes, commands).
//!
//! Requests and server messages themselves are `wa-frame`'s [`wa_frame::Request`] and
//! [`wa_frame::ServerMessage`]; this module adds what their `Query`, `Action` and `Response`
//! variants carry.

use serde_json::{Map, Value, json};
use wa_frame::{MsgAck, Response};

use crate::error::WireError;
use crate::ids::{Jid, parse_jid};
use crate::msg::{AckNotice, GroupNotice, GroupOp, PresenceNotice};

/// A JSON query or action from a web client (the `Query` and `Action` forms of
/// [`wa_frame::Request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonRequest {
    /// `["query","mediaConn"]`: where and how to upload media.
    MediaConn,
    /// `["query","exist",jid]`: does this number have an account?
    Exist(Jid),
    /// `["query","Status",jid]`: a user's status text.
    Status(Jid),
    /// `["query","GroupMetadata",jid]`: a group's subject and members.
    GroupMetadata(Jid),
    /// `["action","presence","subscribe",jid]`: receive a contact's presence.
    SubscribePresence(Jid),
}

impl JsonRequest {
    /// The request.
    pub fn to_request(&self) -> wa_frame::Request {
        use wa_frame::Request;
        match self {
            JsonRequest::MediaConn => Request::query_media_conn(),
            JsonRequest::Exist(jid) => Request::query_exist(&jid.to_string()),
            JsonRequest::Status(jid) => Request::query_status(&jid.to_string()),
            JsonRequest::GroupMetadata(jid) => Request::query_group_metadata(&jid.to_string()),
            JsonRequest::SubscribePresence(jid) => Request::presence_subscribe(&jid.to_string()),
        }
    }

    /// Reads a `query` or `action` request; `Ok(None)` for other requests (`admin ...`).
    ///
    /// # Errors
    /// On an unknown query or action, or a malformed JID.
    pub fn from_request(request: &wa_frame::Request) -> Result<Option<JsonRequest>, WireError> {
        use wa_frame::Request;
        let strs = |args: &[Value]| -> Vec<Option<String>> {
            args.iter().map(|v| v.as_str().map(str::to_owned)).collect()
        };
        let jid = |shape: &'static str, text: &str| parse_jid(shape, "jid", text);
        match request {
            Request::Query(args) => match strs(args).as_slice() {
                [Some(kind)] if kind == "mediaConn" => Ok(Some(JsonRequest::MediaConn)),
                [Some(kind), Some(j)] if kind == "exist" => {
                    Ok(Some(JsonRequest::Exist(jid("query exist", j)?)))
                }
                [Some(kind), Some(j)] if kind == "Status" => {
                    Ok(Some(JsonRequest::Status(jid("query Status", j)?)))
                }
                [Some(kind), Some(j)] if kind == "GroupMetadata" => Ok(Some(
                    JsonRequest::GroupMetadata(jid("query GroupMetadata", j)?),
                )),
                _ => Err(WireError::new("query", "unknown JSON query")),
            },
            Request::Action(args) => match strs(args).as_slice() {
                [Some(a), Some(b), Some(j)] if a == "presence" && b == "subscribe" => Ok(Some(
                    JsonRequest::SubscribePresence(jid("action presence subscribe", j)?),
                )),
                _ => Err(WireError::new("action", "unknown JSON action")),
            },
            _ => Ok(None),
        }
    }
}

/// A bare status reply, `{"status": code}`, with an optional human-readable `reason` (this
/// project's addition: clients show it).
pub fn status(code: u16, reason: Option<&str>) -> Value {
    let mut map = Map::new();
    map.insert("status".to_owned(), json!(code));
    if let Some(reason) = reason {
        map.insert("reason".to_owned(), json!(reason));
    }
    Value::Object(map)
}

/// The answer to a relay.
///
/// `{"status":200,"t":secs}` when stored (ack 1); `{"status":409,"missing":[devices],
/// "extra":[devices]}` when the sender did not encrypt for exactly the recipients' current
/// devices (it fetches their lists again and retries, as with Signal-Server's mismatched
/// devices); any other status with a `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayReply {
    /// Stored.
    Stored {
        /// The server's timestamp of the message (Unix seconds).
        t: u64,
    },
    /// The targets do not match the current devices.
    Mismatch {
        /// Devices the sender did not encrypt for.
        missing: Vec<Jid>,
        /// Devices the sender encrypted for that are not (or no longer) recipients.
        extra: Vec<Jid>,
    },
    /// Refused.
    Refused {
        /// The status.
        status: u16,
        /// Why.
        reason: String,
    },
}

impl RelayReply {
    /// The JSON object.
    pub fn to_json(&self) -> Value {
        match self {
            RelayReply::Stored { t } => json!({"status": 200, "t": t}),
            RelayReply::Mismatch { missing, extra } => json!({
                "status": 409,
                "missing": missing.iter().map(Jid::to_string).collect::<Vec<_>>(),
                "extra": extra.iter().map(Jid::to_string).collect::<Vec<_>>(),
            }),
            RelayReply::Refused {
                status: code,
                reason,
            } => status(*code, Some(reason)),
        }
    }

    /// Reads a reply.
    ///
    /// # Errors
    /// When it has no status, or a 409 has malformed device lists.
    pub fn from_response(response: &Response) -> Result<RelayReply, WireError> {
        const SHAPE: &str = "relay reply";
        match response.status {
            Some(200) => Ok(RelayReply::Stored {
                t: response.get("t").and_then(Value::as_u64).unwrap_or(0),
            }),
            Some(409) => {
                let list = |field: &'static str| -> Result<Vec<Jid>, WireError> {
                    let items = response
                        .get(field)
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                    if items.len() > crate::msg::MAX_RELAY_TARGETS {
                        return Err(WireError::new(SHAPE, "too many devices"));
                    }
                    items
                        .iter()
                        .map(|v| {
                            let text = v
                                .as_str()
                                .ok_or_else(|| WireError::bad(SHAPE, field, "not a string"))?;
                            crate::ids::parse_device(SHAPE, field, text)
                        })
                        .collect()
                };
                Ok(RelayReply::Mismatch {
                    missing: list("missing")?,
                    extra: list("extra")?,
                })
            }
            Some(code) => Ok(RelayReply::Refused {
                status: code,
                reason: response
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            }),
            None => Err(WireError::new(SHAPE, "no status")),
        }
    }
}

/// The media service's answer to an upload (PROTOCOL.md §6, the 2020 form):
/// `{"url": "...", "direct_path": "..."}`. The URL carries a capability; the direct path is the
/// same without the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaUploaded {
    /// Where the encrypted body can be downloaded.
    pub url: String,
    /// The path part of `url`.
    pub direct_path: Option<String>,
}

impl MediaUploaded {
    /// The longest URL accepted.
    pub const MAX_URL: usize = 2048;

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("url".to_owned(), json!(self.url));
        if let Some(path) = &self.direct_path {
            map.insert("direct_path".to_owned(), json!(path));
        }
        Value::Object(map)
    }

    /// Reads an upload answer.
    ///
    /// # Errors
    /// When `url` is missing, not a string or longer than [`MediaUploaded::MAX_URL`], or
    /// `direct_path` is not a string.
    pub fn from_value(value: &Value) -> Result<MediaUploaded, WireError> {
        const SHAPE: &str = "media upload reply";
        let text = |field: &'static str| -> Result<Option<String>, WireError> {
            match value.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() <= MediaUploaded::MAX_URL => Ok(Some(s.clone())),
                Some(Value::String(_)) => Err(WireError::bad(SHAPE, field, "too long")),
                Some(_) => Err(WireError::bad(SHAPE, field, "not a string")),
            }
        };
        Ok(MediaUploaded {
            url: text("url")?.ok_or_else(|| WireError::bad(SHAPE, "url", "missing"))?,
            direct_path: text("direct_path")?,
        })
    }
}

/// The answer to a key upload: `{"status":200,"count":n}`, the one-time keys the server now
/// holds for the device.
pub fn keys_reply(count: u32) -> Value {
    json!({"status": 200, "count": count})
}

/// Reads a key upload answer.
///
/// # Errors
/// When the status is not 200 or `count` is missing.
pub fn read_keys_reply(response: &Response) -> Result<u32, WireError> {
    if response.status != Some(200) {
        return Err(WireError::new(
            "keys reply",
            format!("status {:?}", response.status),
        ));
    }
    response
        .get("count")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| WireError::missing("keys reply", "count"))
}

/// Where and how to upload media: `{"status":200,"media_conn":{"auth","ttl","hosts":[{"hostname"}],
/// "max_bytes"}}`. `max_bytes` is this project's addition, so clients refuse a file that is too
/// large before uploading it. `Debug` hides the auth token.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaConn {
    /// The upload auth token.
    pub auth: String,
    /// How long the answer stays valid, in seconds.
    pub ttl: u64,
    /// Upload hosts (`host:port`).
    pub hosts: Vec<String>,
    /// The largest upload the hosts take, when said.
    pub max_bytes: Option<u64>,
}

impl std::fmt::Debug for MediaConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaConn")
            .field("ttl", &self.ttl)
            .field("hosts", &self.hosts)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl MediaConn {
    /// The reply.
    pub fn to_json(&self) -> Value {
        let mut conn = json!({
            "auth": self.auth,
            "ttl": self.ttl,
            "hosts": self.hosts.iter().map(|h| json!({"hostname": h})).collect::<Vec<_>>(),
        });
        if let (Some(max), Some(map)) = (self.max_bytes, conn.as_object_mut()) {
            map.insert("max_bytes".to_owned(), json!(max));
        }
        json!({"status": 200, "media_conn": conn})
    }

    /// Reads the reply.
    ///
    /// # Errors
    /// When `media_conn.auth` is missing.
    pub fn from_response(response: &Response) -> Result<MediaConn, WireError> {
        const SHAPE: &str = "mediaConn";
        let conn = response
            .get("media_conn")
            .ok_or_else(|| WireError::missing(SHAPE, "media_conn"))?;
        Ok(MediaConn {
            auth: conn
                .get("auth")
                .and_then(Value::as_str)
                .ok_or_else(|| WireError::missing(SHAPE, "auth"))?
                .to_owned(),
            ttl: conn.get("ttl").and_then(Value::as_u64).unwrap_or(0),
            hosts: conn
                .get("hosts")
                .and_then(Value::as_array)
                .map(|hosts| {
                    hosts
                        .iter()
                        .filter_map(|h| {
                            h.get("hostname").and_then(Value::as_str).map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            max_bytes: conn.get("max_bytes").and_then(Value::as_u64),
        })
    }
}

/// A member of a group, as `GroupMetadata` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The member.
    pub jid: Jid,
    /// Whether an admin.
    pub is_admin: bool,
}

/// The answer to `["query","GroupMetadata",jid]`: `{"status":200,"id","owner","subject",
/// "creation","participants":[{"id","isAdmin"}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// The group.
    pub id: Jid,
    /// Its creator.
    pub owner: Jid,
    /// Its subject.
    pub subject: String,
    /// When it was created (Unix seconds).
    pub creation: u64,
    /// Its members.
    pub participants: Vec<Participant>,
}

impl GroupMetadata {
    /// The reply.
    pub fn to_json(&self) -> Value {
        json!({
            "status": 200,
            "id": self.id.to_string(),
            "owner": self.owner.to_string(),
            "subject": self.subject,
            "creation": self.creation,
            "participants": self.participants.iter().map(|p| json!({
                "id": p.jid.to_string(),
                "isAdmin": p.is_admin,
            })).collect::<Vec<_>>(),
        })
    }

    /// Reads the reply from its JSON object (as the phone's answer carries it).
    ///
    /// # Errors
    /// When it is not an object, or as [`GroupMetadata::from_response`].
    pub fn from_value(value: Value) -> Result<GroupMetadata, WireError> {
        match value {
            Value::Object(map) => GroupMetadata::from_response(&Response::from_map(map)),
            _ => Err(WireError::new("GroupMetadata", "not an object")),
        }
    }

    /// Reads the reply.
    ///
    /// # Errors
    /// On a missing or malformed field.
    pub fn from_response(response: &Response) -> Result<GroupMetadata, WireError> {
        const SHAPE: &str = "GroupMetadata";
        let string = |key: &'static str| {
            response
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| WireError::missing(SHAPE, key))
        };
        let items = response
            .get("participants")
            .and_then(Value::as_array)
            .ok_or_else(|| WireError::missing(SHAPE, "participants"))?;
        if items.len() > crate::msg::MAX_GROUP_PARTICIPANTS {
            return Err(WireError::new(SHAPE, "too many participants"));
        }
        let participants = items
            .iter()
            .map(|p| {
                let id = p
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| WireError::missing(SHAPE, "participants.id"))?;
                Ok(Participant {
                    jid: parse_jid(SHAPE, "participants.id", id)?,
                    is_admin: p.get("isAdmin").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(GroupMetadata {
            id: parse_jid(SHAPE, "id", string("id")?)?,
            owner: parse_jid(SHAPE, "owner", string("owner")?)?,
            subject: string("subject")?.to_owned(),
            creation: response
                .get("creation")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            participants,
        })
    }
}

/// The answer to a group operation: `{"status":200}`, with `"gid"` for a created group.
pub fn group_reply(gid: Option<&Jid>) -> Value {
    match gid {
        Some(gid) => json!({"status": 200, "gid": gid.to_string()}),
        None => json!({"status": 200}),
    }
}

/// The answer to `["query","Status",jid]`: `{"status": "<text>"}` (the user's status line;
/// this server keeps none and answers the empty text), or `{"status":404}`.
pub fn status_text_reply(text: &str) -> Value {
    json!({"status": text})
}

/// An ack push, `["Msg",{"cmd":"ack","id","ack","from","to","participant"?,"t"}]`
/// (PROTOCOL.md §2.6): `from` is always the message's sender and `to` its chat; in a group,
/// `participant` is the member whose device acknowledged.
pub fn ack(notice: &AckNotice) -> Value {
    let mut map = Map::new();
    map.insert("cmd".to_owned(), json!("ack"));
    map.insert("id".to_owned(), json!(notice.id));
    map.insert("ack".to_owned(), json!(notice.level));
    map.insert("from".to_owned(), json!(notice.sender.to_string()));
    map.insert("to".to_owned(), json!(notice.chat.to_string()));
    if let Some(p) = &notice.participant {
        map.insert("participant".to_owned(), json!(p.to_string()));
    }
    map.insert("t".to_owned(), json!(notice.t));
    json!(["Msg", Value::Object(map)])
}

/// Reads an ack push (`Msg`, or `MsgInfo` with one id) into a notice; `None` when a field is
/// missing or malformed.
pub fn read_ack(ack: &MsgAck) -> Option<AckNotice> {
    Some(AckNotice {
        id: ack.id.clone(),
        level: u8::try_from(ack.ack.0).ok()?,
        sender: ack.from.as_deref()?.parse().ok()?,
        chat: ack.to.as_deref()?.parse().ok()?,
        participant: ack.participant.as_deref().and_then(|p| p.parse().ok()),
        t: ack.t.unwrap_or(0),
    })
}

/// A presence push, `["Presence",{"id","type","participant"?,"t"}]`: `id` is the user, or for a
/// chat state in a group, the group with the user as `participant`.
pub fn presence(notice: &PresenceNotice) -> Value {
    let mut map = Map::new();
    map.insert(
        "id".to_owned(),
        json!(notice.group.as_ref().unwrap_or(&notice.jid).to_string()),
    );
    map.insert("type".to_owned(), json!(notice.state.as_str()));
    if notice.group.is_some() {
        map.insert("participant".to_owned(), json!(notice.jid.to_string()));
    }
    map.insert("t".to_owned(), json!(notice.t));
    json!(["Presence", Value::Object(map)])
}

/// A group change push, `["Chat",{"id","cmd":"action","data":[op, author, [members]],
/// "subject"?}]`.
pub fn group_change(notice: &GroupNotice) -> Value {
    let mut map = Map::new();
    map.insert("id".to_owned(), json!(notice.group.to_string()));
    map.insert("cmd".to_owned(), json!("action"));
    map.insert(
        "data".to_owned(),
        json!([
            notice.op.as_str(),
            notice.author.to_string(),
            notice
                .participants
                .iter()
                .map(Jid::to_string)
                .collect::<Vec<_>>()
        ]),
    );
    if let Some(subject) = &notice.subject {
        map.insert("subject".to_owned(), json!(subject));
    }
    json!(["Chat", Value::Object(map)])
}

/// Reads a `Chat` push; `Ok(None)` when it is not a group action.
///
/// # Errors
/// On a malformed group action.
pub fn read_group_change(chat: &wa_frame::Chat) -> Result<Option<GroupNotice>, WireError> {
    const SHAPE: &str = "Chat action";
    if chat.cmd != "action" {
        return Ok(None);
    }
    let Some(Value::Array(data)) = &chat.data else {
        return Ok(None);
    };
    let [
        Value::String(op),
        Value::String(author),
        Value::Array(members),
    ] = data.as_slice()
    else {
        return Err(WireError::new(SHAPE, "data is not [op, author, [members]]"));
    };
    let op =
        GroupOp::parse(op).ok_or_else(|| WireError::bad(SHAPE, "data", "unknown operation"))?;
    if members.len() > crate::msg::MAX_GROUP_PARTICIPANTS {
        return Err(WireError::new(SHAPE, "too many members"));
    }
    Ok(Some(GroupNotice {
        group: parse_jid(SHAPE, "id", &chat.id)?,
        op,
        author: parse_jid(SHAPE, "data", author)?,
        participants: members
            .iter()
            .map(|m| {
                let text = m
                    .as_str()
                    .ok_or_else(|| WireError::bad(SHAPE, "data", "member is not a string"))?;
                parse_jid(SHAPE, "data", text)
            })
            .collect::<Result<_, _>>()?,
        subject: chat
            .extra
            .get("subject")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }))
}

/// `["Stream","asleep"]`: the phone is unreachable.
pub fn stream_asleep() -> Value {
    json!(["Stream", "asleep"])
}

/// `["Stream","update",false,version]`, sent after the `Conn`.
pub fn stream_update(version: &str) -> Value {
    json!(["Stream", "update", false, version])
}

/// `["Props",{...}]`, sent after the `Conn` and `Stream`.
pub fn props(image_max_kbytes: u64, max_participants: u64, video_max_edge: u64) -> Value {
    json!(["Props", {
        "imageMaxKBytes": image_max_kbytes,
        "maxParticipants": max_participants,
        "videoMaxEdge": video_max_edge,
    }])
}

/// `["Cmd",{"type":"disconnect","kind":"replaced"}]`: another connection took over.
pub fn replaced() -> Value {
    json!(["Cmd", {"type": "disconnect", "kind": "replaced"}])
}

/// `["Cmd",{"type":"disconnect"}]`: this device was unlinked.
pub fn unlinked() -> Value {
    json!(["Cmd", {"type": "disconnect"}])
}

/// `["Cmd",{"type":"update"}]`: this client version is rejected.
pub fn update_required() -> Value {
    json!(["Cmd", {"type": "update"}])
}

/// `["Cmd",{"type":"challenge","challenge":b64}]`.
pub fn challenge(challenge_b64: &str) -> Value {
    json!(["Cmd", {"type": "challenge", "challenge": challenge_b64}])
}

/// `["Pong",reachable]`: the answer to `["admin","test"]`.
pub fn pong(reachable: bool) -> Value {
    json!(["Pong", reachable])
}

/// The answer to `admin init`: `{"status":200,"ref","ttl","update":false,"curr","time"}`.
pub fn init_reply(r#ref: &str, ttl_ms: u64, curr: &str, time_ms: u64) -> Value {
    json!({"status": 200, "ref": r#ref, "ttl": ttl_ms, "update": false, "curr": curr, "time": time_ms})
}

/// The answer to a reref: 200 with a new ref, 304 with the current one, or 429.
pub fn reref_reply(status: u16, r#ref: Option<&str>, ttl_ms: u64) -> Value {
    match r#ref {
        Some(r) => json!({"status": status, "ref": r, "ttl": ttl_ms}),
        None => json!({"status": status}),
    }
}

/// What a `Conn` says about a linked or logged-in client (PROTOCOL.md §2.2). `Debug` hides the
/// tokens and the secret.
pub struct ConnFields<'a> {
    /// For `admin login`.
    pub client_token: &'a str,
    /// For `admin login` and the challenge answer.
    pub server_token: &'a str,
    /// For logging out without a socket.
    pub browser_token: &'a str,
    /// The key schedule's input, after a QR scan.
    pub secret: Option<&'a str>,
    /// The account.
    pub wid: &'a Jid,
    /// Its display name.
    pub pushname: &'a str,
    /// Its phone.
    pub phone: &'a crate::phone::PhoneInfo,
    /// Whether the phone is connected.
    pub connected: bool,
    /// The QR ref this `Conn` answers.
    pub r#ref: Option<&'a str>,
    /// An end-to-end client's device number within the account (this project's extension:
    /// `"device"`).
    pub device: Option<u8>,
}

impl std::fmt::Debug for ConnFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnFields")
            .field("wid", self.wid)
            .finish_non_exhaustive()
    }
}

/// `["Conn",{...}]`.
pub fn conn(fields: &ConnFields<'_>) -> Value {
    let mut conn = wa_frame::Conn::default();
    conn.battery = Some(100);
    conn.browser_token = Some(fields.browser_token.to_owned());
    conn.client_token = Some(fields.client_token.to_owned());
    conn.server_token = Some(fields.server_token.to_owned());
    conn.secret = fields.secret.map(str::to_owned);
    conn.wid = Some(fields.wid.to_string());
    conn.pushname = Some(fields.pushname.to_owned());
    conn.platform = Some(
        fields
            .phone
            .platform
            .clone()
            .unwrap_or_else(|| "wa-rs".to_owned()),
    );
    let mut phone = wa_frame::Phone::default();
    phone.wa_version = Some(
        fields
            .phone
            .wa_version
            .clone()
            .unwrap_or_else(|| "2.21.0".to_owned()),
    );
    phone.mcc = Some("000".to_owned());
    phone.mnc = Some("000".to_owned());
    phone.os_version = Some(
        fields
            .phone
            .os_version
            .clone()
            .unwrap_or_else(|| "1".to_owned()),
    );
    phone.device_manufacturer = Some(
        fields
            .phone
            .device_manufacturer
            .clone()
            .unwrap_or_else(|| "wa-rs".to_owned()),
    );
    phone.device_model = Some(
        fields
            .phone
            .device_model
            .clone()
            .unwrap_or_else(|| "wa phone".to_owned()),
    );
    phone.os_build_number = Some("wa-rs".to_owned());
    conn.phone = Some(phone);
    conn.plugged = Some(true);
    conn.lc = Some("ZZ".to_owned());
    conn.lg = Some("en".to_owned());
    conn.tos = Some(0);
    conn.is24h = Some(true);
    conn.connected = Some(fields.connected);
    conn.proto_version = Some(vec![0, 17]);
    conn.bin_version = Some(10);
    conn.r#ref = fields.r#ref.map(str::to_owned);
    conn.features = Some(json!({}));
    if let Some(device) = fields.device {
        conn.extra.insert("device".to_owned(), json!(device));
    }
    wa_frame::ServerMessage::Conn(Box::new(conn)).to_json()
}
