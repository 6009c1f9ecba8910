//! Messages and what happens to them, independent of the socket they cross: the end-to-end
//! relay a sender submits, the copy a device receives, receipts, presence, group changes and
//! the server's notifications. [`crate::web`] writes them as nodes, [`crate::phone`] as JSON.
//!
//! Metadata (recipient, id, timestamp, kind) is in the clear, as the server needs it to route
//! and count; the content is only ever ciphertext.

use serde::{Deserialize, Serialize};
use wa_binary::Node;

use crate::error::WireError;
use crate::ids::{Chat, Jid, check_message_id, parse_chat, parse_device, parse_jid, parse_user};
use crate::read::{self, b64};

/// What kind of content a message carries: metadata the server may see (and count in
/// quotas), never the content itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// A text message.
    Text,
    /// A media message (the body is on the media service, encrypted with a key that is only in
    /// the ciphertext).
    Media,
    /// Key material only (a group session key for devices that lacked it).
    Key,
    /// A history export is ready (the phone to a newly linked device).
    History,
    /// Any other kind, as sent (at most 32 characters of `a-z0-9_`).
    Other(String),
}

impl From<String> for ContentKind {
    fn from(text: String) -> ContentKind {
        ContentKind::known(&text).unwrap_or(ContentKind::Other(text))
    }
}

/// A named kind without a copy of its text; any other kind copied.
impl From<&str> for ContentKind {
    fn from(text: &str) -> ContentKind {
        ContentKind::known(text).unwrap_or_else(|| ContentKind::Other(text.to_owned()))
    }
}

impl From<ContentKind> for String {
    fn from(kind: ContentKind) -> String {
        kind.as_str().to_owned()
    }
}

/// As its written form, a string.
impl Serialize for ContentKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// From any string, as [`ContentKind::from`] reads it; a known kind without copying the text
/// (every relay a server decodes carries one).
impl<'de> Deserialize<'de> for ContentKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Kind;

        impl serde::de::Visitor<'_> for Kind {
            type Value = ContentKind;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a content kind")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ContentKind, E> {
                Ok(ContentKind::from(text))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<ContentKind, E> {
                Ok(ContentKind::from(text))
            }
        }

        deserializer.deserialize_string(Kind)
    }
}

impl ContentKind {
    /// The kind `text` names, if it is one of the named variants.
    fn known(text: &str) -> Option<ContentKind> {
        Some(match text {
            "text" => ContentKind::Text,
            "media" => ContentKind::Media,
            "key" => ContentKind::Key,
            "history" => ContentKind::History,
            _ => return None,
        })
    }

    /// The written form.
    pub fn as_str(&self) -> &str {
        match self {
            ContentKind::Text => "text",
            ContentKind::Media => "media",
            ContentKind::Key => "key",
            ContentKind::History => "history",
            ContentKind::Other(other) => other,
        }
    }

    fn parse(shape: &'static str, text: &str) -> Result<ContentKind, WireError> {
        if text.is_empty()
            || text.len() > 32
            || !text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(WireError::bad(
                shape,
                "kind",
                format!("{text:?} is not a content kind"),
            ));
        }
        Ok(ContentKind::from(text.to_owned()))
    }
}

/// The two kinds of Olm message: a pre-key message starts a session, a normal one continues it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OlmType {
    /// `pkmsg`: carries what the receiver needs to create the session.
    #[serde(rename = "pkmsg")]
    PreKey,
    /// `msg`: on an established session.
    #[serde(rename = "msg")]
    Normal,
}

impl OlmType {
    /// The written form, `pkmsg` or `msg`.
    pub fn as_str(self) -> &'static str {
        match self {
            OlmType::PreKey => "pkmsg",
            OlmType::Normal => "msg",
        }
    }

    fn parse(shape: &'static str, text: &str) -> Result<OlmType, WireError> {
        match text {
            "pkmsg" => Ok(OlmType::PreKey),
            "msg" => Ok(OlmType::Normal),
            other => Err(WireError::bad(
                shape,
                "type",
                format!("{other:?} is not pkmsg or msg"),
            )),
        }
    }
}

/// One Olm ciphertext for one device.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmPayload {
    /// Pre-key or normal.
    #[serde(rename = "type")]
    pub kind: OlmType,
    /// The Olm message bytes.
    #[serde(with = "b64")]
    pub body: Vec<u8>,
}

impl std::fmt::Debug for OlmPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OlmPayload({}, {} bytes)",
            self.kind.as_str(),
            self.body.len()
        )
    }
}

/// One device a relay is for, with its ciphertext. For a group message, a device that already
/// has the sender's group key is listed without one: the sender covers every device, and the
/// server checks the list against the recipients' devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayTarget {
    /// The device.
    pub device: Jid,
    /// Its ciphertext (the message itself, or for groups the group key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub olm: Option<OlmPayload>,
}

/// An end-to-end encrypted message as its sender relays it.
///
/// Node (a child of `["action", {type: "relay", epoch}]`, metric MESSAGE, tag = id):
/// `["enc", {to, id, kind}, [["skmsg", null, <Megolm bytes>]?, ["olm", {to, type?}, <Olm bytes>?], ...]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    /// The chat: a user or a group.
    pub to: Jid,
    /// The message id.
    pub id: String,
    /// What it carries.
    pub kind: ContentKind,
    /// For groups: the Megolm message, the same for every member.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64::option")]
    pub group: Option<Vec<u8>>,
    /// Every device it is for: the recipients' and the sender's own other devices.
    pub targets: Vec<RelayTarget>,
}

/// Devices one relay may address at most (a group of 257 members with 6 devices each).
pub const MAX_RELAY_TARGETS: usize = 257 * 6;

impl Relay {
    const SHAPE: &'static str = "enc";

    /// The chat, checked.
    ///
    /// # Errors
    /// When `to` is neither a user nor a group.
    pub fn chat(&self) -> Result<Chat, WireError> {
        Chat::from_jid(&self.to)
    }

    /// The `enc` node.
    pub fn to_node(&self) -> Node<'static> {
        let mut children = Vec::with_capacity(self.targets.len() + 1);
        if let Some(group) = &self.group {
            children.push(Node::new("skmsg").with_bytes(group.clone()));
        }
        for target in &self.targets {
            let node = Node::new("olm").with_attr("to", target.device.to_wire_string());
            children.push(match &target.olm {
                Some(olm) => node
                    .with_attr("type", olm.kind.as_str())
                    .with_bytes(olm.body.clone()),
                None => node,
            });
        }
        Node::new("enc")
            .with_attr("to", self.to.to_wire_string())
            .with_attr("id", self.id.clone())
            .with_attr("kind", self.kind.as_str().to_owned())
            .with_children(children)
    }

    /// Reads an `enc` node.
    ///
    /// # Errors
    /// On a malformed address, id, kind or child, a repeated device, or too many targets.
    pub fn from_node(node: &Node<'_>) -> Result<Relay, WireError> {
        read::expect_tag(node, Self::SHAPE, "enc")?;
        let to = parse_chat(Self::SHAPE, "to", read::attr(node, Self::SHAPE, "to")?)?;
        let id = check_message_id(Self::SHAPE, "id", read::attr(node, Self::SHAPE, "id")?)?;
        let kind = ContentKind::parse(Self::SHAPE, read::attr(node, Self::SHAPE, "kind")?)?;
        if node.children().len() > MAX_RELAY_TARGETS + 1 {
            return Err(WireError::new(Self::SHAPE, "too many targets"));
        }
        let mut group = None;
        let mut targets: Vec<RelayTarget> = Vec::with_capacity(node.children().len());
        let mut seen = std::collections::HashSet::with_capacity(node.children().len());
        for child in node.children() {
            match child.tag() {
                "skmsg" if group.is_none() => {
                    group = Some(read::bytes(child, Self::SHAPE)?.to_vec());
                }
                "olm" => {
                    let device =
                        parse_device(Self::SHAPE, "to", read::attr(child, Self::SHAPE, "to")?)?;
                    let olm = match child.attr("type") {
                        Some(kind) => Some(OlmPayload {
                            kind: OlmType::parse(Self::SHAPE, kind)?,
                            body: read::bytes(child, Self::SHAPE)?.to_vec(),
                        }),
                        None => None,
                    };
                    if !seen.insert(device.clone()) {
                        return Err(WireError::bad(
                            Self::SHAPE,
                            "to",
                            format!("{device} listed twice"),
                        ));
                    }
                    targets.push(RelayTarget { device, olm });
                }
                other => {
                    return Err(WireError::new(
                        Self::SHAPE,
                        format!("unexpected child `{other}`"),
                    ));
                }
            }
        }
        Ok(Relay {
            to: to.jid().clone(),
            id,
            kind,
            group,
            targets,
        })
    }
}

/// An end-to-end encrypted message as a device receives it.
///
/// Node (children of `["action", {add: "relay"}]`):
/// `["enc", {from, chat, id, t, kind}, [["skmsg", null, <bytes>]?, ["olm", {type}, <bytes>]?]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    /// The sending device.
    pub from: Jid,
    /// The chat as the receiver sees it: the sender for a message between two users (the
    /// recipient, for a copy of the account's own message on its other devices), or the group.
    pub chat: Jid,
    /// The message id.
    pub id: String,
    /// When the server stored it (Unix seconds).
    pub t: u64,
    /// What it carries.
    pub kind: ContentKind,
    /// For groups: the Megolm message.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64::option")]
    pub group: Option<Vec<u8>>,
    /// This device's Olm ciphertext, if the sender made one for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub olm: Option<OlmPayload>,
}

impl Incoming {
    const SHAPE: &'static str = "enc";

    /// The `enc` node.
    pub fn to_node(&self) -> Node<'static> {
        let mut children = Vec::with_capacity(2);
        if let Some(group) = &self.group {
            children.push(Node::new("skmsg").with_bytes(group.clone()));
        }
        if let Some(olm) = &self.olm {
            children.push(
                Node::new("olm")
                    .with_attr("type", olm.kind.as_str())
                    .with_bytes(olm.body.clone()),
            );
        }
        Node::new("enc")
            .with_attr("from", self.from.to_wire_string())
            .with_attr("chat", self.chat.to_wire_string())
            .with_attr("id", self.id.clone())
            .with_attr("t", self.t.to_string())
            .with_attr("kind", self.kind.as_str().to_owned())
            .with_children(children)
    }

    /// Reads an `enc` node.
    ///
    /// # Errors
    /// On a malformed attribute or child.
    pub fn from_node(node: &Node<'_>) -> Result<Incoming, WireError> {
        read::expect_tag(node, Self::SHAPE, "enc")?;
        let mut group = None;
        let mut olm = None;
        for child in node.children() {
            match child.tag() {
                "skmsg" if group.is_none() => {
                    group = Some(read::bytes(child, Self::SHAPE)?.to_vec())
                }
                "olm" if olm.is_none() => {
                    olm = Some(OlmPayload {
                        kind: OlmType::parse(Self::SHAPE, read::attr(child, Self::SHAPE, "type")?)?,
                        body: read::bytes(child, Self::SHAPE)?.to_vec(),
                    });
                }
                other => {
                    return Err(WireError::new(
                        Self::SHAPE,
                        format!("unexpected child `{other}`"),
                    ));
                }
            }
        }
        Ok(Incoming {
            from: parse_device(Self::SHAPE, "from", read::attr(node, Self::SHAPE, "from")?)?,
            chat: parse_chat(Self::SHAPE, "chat", read::attr(node, Self::SHAPE, "chat")?)?
                .jid()
                .clone(),
            id: check_message_id(Self::SHAPE, "id", read::attr(node, Self::SHAPE, "id")?)?,
            t: read::num(node, Self::SHAPE, "t")?,
            kind: ContentKind::parse(Self::SHAPE, read::attr(node, Self::SHAPE, "kind")?)?,
            group,
            olm,
        })
    }
}

/// What a receipt says about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptKind {
    /// The device has it (two ticks).
    Delivered,
    /// The user read it (blue ticks). Implies delivery.
    Read,
    /// The user played it (voice notes).
    Played,
}

/// A receipt a device sends for a message it received.
///
/// Nodes (children of `action set`): delivered is the legacy `["received", {type: "message",
/// index: id, jid: chat, owner: "false", participant?}]` (metric RECEIVED); read is `["read",
/// {jid: chat, index: id, owner: "false", count: "1", participant?}]` (metric READ); played is
/// `["received", {type: "played", ...}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Delivered, read or played.
    pub kind: ReceiptKind,
    /// The chat as the receiver sees it (the sender, or the group).
    pub chat: Jid,
    /// The message id.
    pub id: String,
    /// In a group: the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Jid>,
}

impl Receipt {
    const SHAPE: &'static str = "receipt";

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let node = match self.kind {
            ReceiptKind::Delivered | ReceiptKind::Played => Node::new("received")
                .with_attr(
                    "type",
                    if self.kind == ReceiptKind::Played {
                        "played"
                    } else {
                        "message"
                    },
                )
                .with_attr("index", self.id.clone())
                .with_attr("jid", self.chat.to_wire_string())
                .with_attr("owner", "false"),
            ReceiptKind::Read => Node::new("read")
                .with_attr("jid", self.chat.to_wire_string())
                .with_attr("index", self.id.clone())
                .with_attr("owner", "false")
                .with_attr("count", "1"),
        };
        match &self.participant {
            Some(p) => node.with_attr("participant", p.to_wire_string()),
            None => node,
        }
    }

    /// Reads a `received` or `read` node. A `received` of another type than `message` or
    /// `played` (`error`, ...) is `Ok(None)`.
    ///
    /// # Errors
    /// On a missing or malformed attribute.
    pub fn from_node(node: &Node<'_>) -> Result<Option<Receipt>, WireError> {
        let kind = match (node.tag(), node.attr("type")) {
            ("read", _) => ReceiptKind::Read,
            ("received", None | Some("message")) => ReceiptKind::Delivered,
            ("received", Some("played")) => ReceiptKind::Played,
            ("received", Some(_)) => return Ok(None),
            (other, _) => {
                return Err(WireError::new(
                    Self::SHAPE,
                    format!("expected `received` or `read`, found `{other}`"),
                ));
            }
        };
        let participant = node
            .attr("participant")
            .map(|p| parse_user(Self::SHAPE, "participant", p))
            .transpose()?;
        Ok(Some(Receipt {
            kind,
            chat: parse_chat(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?
                .jid()
                .clone(),
            id: check_message_id(
                Self::SHAPE,
                "index",
                read::attr(node, Self::SHAPE, "index")?,
            )?,
            participant,
        }))
    }
}

/// An own presence state (PROTOCOL.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceState {
    /// Online.
    Available,
    /// Offline.
    Unavailable,
    /// Typing (in a chat).
    Composing,
    /// Stopped typing.
    Paused,
    /// Recording a voice note.
    Recording,
}

impl PresenceState {
    /// The written form.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Available => "available",
            PresenceState::Unavailable => "unavailable",
            PresenceState::Composing => "composing",
            PresenceState::Paused => "paused",
            PresenceState::Recording => "recording",
        }
    }

    /// Reads the written form.
    pub fn parse(text: &str) -> Option<PresenceState> {
        Some(match text {
            "available" => PresenceState::Available,
            "unavailable" => PresenceState::Unavailable,
            "composing" => PresenceState::Composing,
            "paused" => PresenceState::Paused,
            "recording" => PresenceState::Recording,
            _ => return None,
        })
    }

    /// Whether it is a chat state (typing, recording) rather than online/offline.
    pub fn is_chat_state(self) -> bool {
        matches!(
            self,
            PresenceState::Composing | PresenceState::Paused | PresenceState::Recording
        )
    }
}

/// Setting the own presence: `["presence", {type, to?}]`, a child of `action set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceSet {
    /// The state.
    #[serde(rename = "type")]
    pub state: PresenceState,
    /// For chat states: the chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Jid>,
}

impl PresenceSet {
    const SHAPE: &'static str = "presence";

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let node = Node::new("presence").with_attr("type", self.state.as_str());
        match &self.to {
            Some(to) => node.with_attr("to", to.to_wire_string()),
            None => node,
        }
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On an unknown state or a malformed chat.
    pub fn from_node(node: &Node<'_>) -> Result<PresenceSet, WireError> {
        let text = read::attr(node, Self::SHAPE, "type")?;
        let state = PresenceState::parse(text).ok_or_else(|| {
            WireError::bad(
                Self::SHAPE,
                "type",
                format!("{text:?} is not a presence state"),
            )
        })?;
        let to = node
            .attr("to")
            .map(|to| parse_chat(Self::SHAPE, "to", to).map(|c| c.jid().clone()))
            .transpose()?;
        Ok(PresenceSet { state, to })
    }
}

/// A group operation (PROTOCOL.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupOp {
    /// Create a group.
    Create,
    /// Add participants.
    Add,
    /// Remove participants.
    Remove,
    /// Make participants admins.
    Promote,
    /// Take admin rights away.
    Demote,
    /// Change the subject.
    Subject,
    /// Leave.
    Leave,
}

impl GroupOp {
    /// The written form.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupOp::Create => "create",
            GroupOp::Add => "add",
            GroupOp::Remove => "remove",
            GroupOp::Promote => "promote",
            GroupOp::Demote => "demote",
            GroupOp::Subject => "subject",
            GroupOp::Leave => "leave",
        }
    }

    /// Reads the written form.
    pub fn parse(text: &str) -> Option<GroupOp> {
        Some(match text {
            "create" => GroupOp::Create,
            "add" => GroupOp::Add,
            "remove" => GroupOp::Remove,
            "promote" => GroupOp::Promote,
            "demote" => GroupOp::Demote,
            "subject" => GroupOp::Subject,
            "leave" => GroupOp::Leave,
            _ => return None,
        })
    }
}

/// Members one group operation may name at most.
pub const MAX_GROUP_PARTICIPANTS: usize = 1024;

/// Longest group subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// A group operation: `["group", {author, id, type, jid?, subject?}, [["participant", {jid}], ...]]`,
/// a child of `action set` (metric GROUP, flags 0x88).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAction {
    /// What to do.
    pub op: GroupOp,
    /// The group (absent for create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Jid>,
    /// The subject (create, subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The participants (create, add, remove, promote, demote).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Jid>,
}

impl GroupAction {
    const SHAPE: &'static str = "group";

    /// The node, with the acting user as `author` and the request id as `id` (the server acts
    /// as the connection's own account whatever `author` says).
    pub fn to_node(&self, author: &Jid, id: &str) -> Node<'static> {
        let mut node = Node::new("group")
            .with_attr("author", author.to_wire_string())
            .with_attr("id", id.to_owned())
            .with_attr("type", self.op.as_str());
        if let Some(group) = &self.group {
            node = node.with_attr("jid", group.to_wire_string());
        }
        if let Some(subject) = &self.subject {
            node = node.with_attr("subject", subject.clone());
        }
        if self.participants.is_empty() {
            return node;
        }
        node.with_children(
            self.participants
                .iter()
                .map(|p| Node::new("participant").with_attr("jid", p.to_wire_string()))
                .collect(),
        )
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On an unknown operation, a malformed address, or too many participants.
    pub fn from_node(node: &Node<'_>) -> Result<GroupAction, WireError> {
        read::expect_tag(node, Self::SHAPE, "group")?;
        let text = read::attr(node, Self::SHAPE, "type")?;
        let op = GroupOp::parse(text).ok_or_else(|| {
            WireError::bad(
                Self::SHAPE,
                "type",
                format!("{text:?} is not a group operation"),
            )
        })?;
        let group = node
            .attr("jid")
            .map(|g| parse_jid(Self::SHAPE, "jid", g))
            .transpose()?;
        if let Some(group) = &group
            && !crate::ids::is_group_jid(group)
        {
            return Err(WireError::bad(
                Self::SHAPE,
                "jid",
                format!("{group} is not a group"),
            ));
        }
        let subject = node.attr("subject").map(str::to_owned);
        if subject.as_ref().is_some_and(|s| s.len() > MAX_SUBJECT_LEN) {
            return Err(WireError::bad(
                Self::SHAPE,
                "subject",
                "longer than 256 bytes",
            ));
        }
        if node.children().len() > MAX_GROUP_PARTICIPANTS {
            return Err(WireError::new(Self::SHAPE, "too many participants"));
        }
        let participants = node
            .children()
            .iter()
            .map(|p| {
                read::expect_tag(p, Self::SHAPE, "participant")?;
                parse_user(
                    Self::SHAPE,
                    "participant",
                    read::attr(p, Self::SHAPE, "jid")?,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GroupAction {
            op,
            group,
            subject,
            participants,
        })
    }
}

/// Something the server tells a device about the key directory.
///
/// Node: `["notification", {type: "identity" | "devices", jid, t}]` or `["notification", {type:
/// "prekeys", count}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Notification {
    /// A user registered a new phone: its identity (and its security code with everyone)
    /// changed, and its linked devices were unlinked.
    Identity {
        /// The user.
        jid: Jid,
        /// When (Unix seconds).
        t: u64,
    },
    /// A user's devices changed (one linked or unlinked): fetch the list again before sending.
    Devices {
        /// The user.
        jid: Jid,
        /// When (Unix seconds).
        t: u64,
    },
    /// This device has few one-time keys left on the server: upload more.
    PreKeys {
        /// How many are left.
        count: u32,
    },
}

impl Notification {
    const SHAPE: &'static str = "notification";

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let node = Node::new("notification");
        match self {
            Notification::Identity { jid, t } | Notification::Devices { jid, t } => {
                let kind = if matches!(self, Notification::Identity { .. }) {
                    "identity"
                } else {
                    "devices"
                };
                node.with_attr("type", kind)
                    .with_attr("jid", jid.to_wire_string())
                    .with_attr("t", t.to_string())
            }
            Notification::PreKeys { count } => node
                .with_attr("type", "prekeys")
                .with_attr("count", count.to_string()),
        }
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On an unknown type or a malformed attribute.
    pub fn from_node(node: &Node<'_>) -> Result<Notification, WireError> {
        read::expect_tag(node, Self::SHAPE, "notification")?;
        match read::attr(node, Self::SHAPE, "type")? {
            kind @ ("identity" | "devices") => {
                let jid = parse_user(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?;
                let t = read::num(node, Self::SHAPE, "t")?;
                Ok(if kind == "identity" {
                    Notification::Identity { jid, t }
                } else {
                    Notification::Devices { jid, t }
                })
            }
            "prekeys" => Ok(Notification::PreKeys {
                count: read::num(node, Self::SHAPE, "count")?,
            }),
            other => Err(WireError::bad(
                Self::SHAPE,
                "type",
                format!("unknown notification {other:?}"),
            )),
        }
    }
}

/// A tick for a message an account sent, as the server tells the sender's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckNotice {
    /// The message id.
    pub id: String,
    /// 1 stored, 2 delivered, 3 read, 4 played.
    pub level: u8,
    /// The message's sender (a user).
    pub sender: Jid,
    /// The message's chat: the recipient, or the group.
    pub chat: Jid,
    /// In a group: the member whose device acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Jid>,
    /// When (Unix seconds).
    pub t: u64,
}

/// A contact's presence, as the server tells subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceNotice {
    /// Whose.
    pub jid: Jid,
    /// What.
    #[serde(rename = "type")]
    pub state: PresenceState,
    /// For a chat state in a group: the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Jid>,
    /// When (Unix seconds).
    pub t: u64,
}

/// A group change, as the server tells the members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupNotice {
    /// The group.
    pub group: Jid,
    /// What happened.
    pub op: GroupOp,
    /// Who did it.
    pub author: Jid,
    /// The members concerned.
    #[serde(default)]
    pub participants: Vec<Jid>,
    /// The subject (create, subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}
