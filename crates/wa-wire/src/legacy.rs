//! The legacy protocol's readable shapes (PROTOCOL.md §3.4): `WebMessageInfo` pushes, the chat
//! and contact lists, and the history query. This server never builds them from stored
//! messages (it keeps none): a phone answers them for its mirror-mode web clients, and the
//! project's session still reads them, so that it can stand in for a legacy client.

use prost::Message as _;
use wa_binary::Node;
use wa_proto::prost;

use crate::error::WireError;
use crate::ids::{Chat, Jid, check_message_id, parse_chat, parse_jid};
use crate::msg::Receipt;
use crate::read;

/// Why a batch of messages is pushed: the `add` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Add {
    /// `relay`: live.
    Relay,
    /// `last`: the latest history, after login.
    Last,
    /// `before`: older history, answering a query.
    Before,
    /// Any other value (`update`, `unread`, ...).
    Other(String),
}

impl Add {
    /// The written form.
    pub fn as_str(&self) -> &str {
        match self {
            Add::Relay => "relay",
            Add::Last => "last",
            Add::Before => "before",
            Add::Other(other) => other,
        }
    }

    /// Reads the written form.
    pub fn parse(text: &str) -> Add {
        match text {
            "relay" => Add::Relay,
            "last" => Add::Last,
            "before" => Add::Before,
            other => Add::Other(other.to_owned()),
        }
    }
}

/// One child of a legacy `action` push.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionChild {
    /// A readable message.
    Message(Box<wa_proto::WebMessageInfo>),
    /// A receipt (acks as nodes: `received` of type `read`, `message`, `played`).
    Receipt(Receipt),
    /// Anything else, kept.
    Other(Node<'static>),
}

/// A legacy push: `["action", {add, ...}, [message | received | ...]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPush {
    /// Why it is pushed.
    pub add: Add,
    /// Its children.
    pub children: Vec<ActionChild>,
}

impl ActionPush {
    const SHAPE: &'static str = "action";

    /// A push of messages.
    pub fn messages(
        add: Add,
        messages: impl IntoIterator<Item = wa_proto::WebMessageInfo>,
    ) -> ActionPush {
        ActionPush {
            add,
            children: messages
                .into_iter()
                .map(|m| ActionChild::Message(Box::new(m)))
                .collect(),
        }
    }

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        Node::new("action")
            .with_attr("add", self.add.as_str().to_owned())
            .with_children(
                self.children
                    .iter()
                    .map(|child| match child {
                        ActionChild::Message(info) => {
                            Node::new("message").with_bytes(info.encode_to_vec())
                        }
                        ActionChild::Receipt(receipt) => receipt.to_node(),
                        ActionChild::Other(node) => node.clone(),
                    })
                    .collect(),
            )
    }

    /// Reads the node. A `message` whose bytes are not a `WebMessageInfo` is an error for the
    /// whole push; unknown children are kept.
    ///
    /// # Errors
    /// On a missing `add`, an undecodable message or a malformed receipt.
    pub fn from_node(node: &Node<'_>) -> Result<ActionPush, WireError> {
        read::expect_tag(node, Self::SHAPE, "action")?;
        let add = Add::parse(read::attr(node, Self::SHAPE, "add")?);
        let mut children = Vec::with_capacity(node.children().len());
        for child in node.children() {
            children.push(match child.tag() {
                "message" => ActionChild::Message(Box::new(message(child)?)),
                "received" | "read" => match Receipt::from_node(child)? {
                    Some(receipt) => ActionChild::Receipt(receipt),
                    None => ActionChild::Other(child.clone().into_owned()),
                },
                _ => ActionChild::Other(child.clone().into_owned()),
            });
        }
        Ok(ActionPush { add, children })
    }
}

/// A `message` node's `WebMessageInfo`.
///
/// # Errors
/// When the node has no bytes or they do not decode.
pub fn message(node: &Node<'_>) -> Result<wa_proto::WebMessageInfo, WireError> {
    let bytes = read::bytes(node, "message")?;
    wa_proto::WebMessageInfo::decode(bytes)
        .map_err(|e| WireError::new("message", format!("not a WebMessageInfo: {e}")))
}

/// A `message` node.
pub fn message_node(info: &wa_proto::WebMessageInfo) -> Node<'static> {
    Node::new("message").with_bytes(info.encode_to_vec())
}

/// The legacy relay of a readable message: `["action", {type: "relay", epoch}, [["message",
/// null, <WebMessageInfo>]]]`. What an unmodified legacy client sends.
pub fn relay_node(info: &wa_proto::WebMessageInfo, epoch: u64) -> Node<'static> {
    Node::new("action")
        .with_attr("type", "relay")
        .with_attr("epoch", epoch.to_string())
        .with_children(vec![message_node(info)])
}

fn extra(node: &Node<'_>, known: &[&str]) -> Vec<(String, String)> {
    node.attrs()
        .iter()
        .filter(|(k, _)| !known.contains(k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// One chat of the chat list: `["chat", {jid, name?, count?, t?, ...}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// The chat.
    pub jid: Jid,
    /// Its name (groups, named contacts).
    pub name: Option<String>,
    /// Unread messages.
    pub count: Option<u32>,
    /// Last activity (Unix seconds).
    pub t: Option<u64>,
    /// Every other attribute, in order.
    pub extra: Vec<(String, String)>,
}

impl ChatEntry {
    const SHAPE: &'static str = "chat";
    const KNOWN: [&'static str; 4] = ["jid", "name", "count", "t"];

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let mut node = Node::new("chat").with_attr("jid", self.jid.to_wire_string());
        if let Some(name) = &self.name {
            node = node.with_attr("name", name.clone());
        }
        if let Some(count) = self.count {
            node = node.with_attr("count", count.to_string());
        }
        if let Some(t) = self.t {
            node = node.with_attr("t", t.to_string());
        }
        for (k, v) in &self.extra {
            node = node.with_attr(k.clone(), v.clone());
        }
        node
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On a missing or malformed `jid`, `count` or `t`.
    pub fn from_node(node: &Node<'_>) -> Result<ChatEntry, WireError> {
        read::expect_tag(node, Self::SHAPE, "chat")?;
        Ok(ChatEntry {
            jid: parse_jid(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?,
            name: node.attr("name").map(str::to_owned),
            count: read::opt_num(node, Self::SHAPE, "count")?,
            t: read::opt_num(node, Self::SHAPE, "t")?,
            extra: extra(node, &Self::KNOWN),
        })
    }
}

/// One contact of the contact list: `["user", {jid, name?, notify?, ...}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEntry {
    /// The contact.
    pub jid: Jid,
    /// The name in the phone's address book.
    pub name: Option<String>,
    /// The name the contact chose.
    pub notify: Option<String>,
    /// Every other attribute, in order.
    pub extra: Vec<(String, String)>,
}

impl ContactEntry {
    const SHAPE: &'static str = "user";
    const KNOWN: [&'static str; 3] = ["jid", "name", "notify"];

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let mut node = Node::new("user").with_attr("jid", self.jid.to_wire_string());
        if let Some(name) = &self.name {
            node = node.with_attr("name", name.clone());
        }
        if let Some(notify) = &self.notify {
            node = node.with_attr("notify", notify.clone());
        }
        for (k, v) in &self.extra {
            node = node.with_attr(k.clone(), v.clone());
        }
        node
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On a missing or malformed `jid`.
    pub fn from_node(node: &Node<'_>) -> Result<ContactEntry, WireError> {
        read::expect_tag(node, Self::SHAPE, "user")?;
        Ok(ContactEntry {
            jid: parse_jid(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?,
            name: node.attr("name").map(str::to_owned),
            notify: node.attr("notify").map(str::to_owned),
            extra: extra(node, &Self::KNOWN),
        })
    }
}

/// One contact's status line in the answer to the status query (PROTOCOL.md §3.4, metric
/// QUERY_STATUS): `["status", {jid, t?}, "<text>"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The contact.
    pub jid: Jid,
    /// The status line.
    pub text: String,
    /// When it was set (Unix seconds).
    pub t: Option<u64>,
}

impl StatusEntry {
    const SHAPE: &'static str = "status";

    /// The longest status line read (the real service allowed 139 characters).
    pub const MAX_TEXT: usize = 1024;

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let mut node = Node::new("status").with_attr("jid", self.jid.to_wire_string());
        if let Some(t) = self.t {
            node = node.with_attr("t", t.to_string());
        }
        node.with_string(self.text.clone())
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On a missing or malformed `jid` or `t`, a text that is not UTF-8 or longer than
    /// [`StatusEntry::MAX_TEXT`].
    pub fn from_node(node: &Node<'_>) -> Result<StatusEntry, WireError> {
        read::expect_tag(node, Self::SHAPE, "status")?;
        let text = node.bytes().unwrap_or_default();
        if text.len() > Self::MAX_TEXT {
            return Err(WireError::new(Self::SHAPE, "status text too long"));
        }
        let text = std::str::from_utf8(text)
            .map_err(|_| WireError::new(Self::SHAPE, "status text is not UTF-8"))?;
        Ok(StatusEntry {
            jid: parse_jid(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?,
            text: text.to_owned(),
            t: read::opt_num(node, Self::SHAPE, "t")?,
        })
    }
}

/// Which way a history query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Older than the index.
    Before,
    /// Newer than the index.
    After,
}

/// `["query", {type: "message", jid, kind, count, index?, owner?, epoch}]` (metric
/// QUERY_MESSAGES): up to `count` messages of a chat before (or after) a message, or the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesQuery {
    /// The chat.
    pub chat: Chat,
    /// Before or after.
    pub direction: Direction,
    /// How many at most.
    pub count: u32,
    /// The message to count from (`index`), and whether it was sent by the chat's owner
    /// (`owner`, i.e. from me); `None` for the latest.
    pub index: Option<(String, bool)>,
}

impl MessagesQuery {
    pub(crate) const SHAPE: &'static str = "query message";

    pub(crate) fn write(&self, node: Node<'static>) -> Node<'static> {
        let mut node = node
            .with_attr("jid", self.chat.jid().to_wire_string())
            .with_attr(
                "kind",
                match self.direction {
                    Direction::Before => "before",
                    Direction::After => "after",
                },
            )
            .with_attr("count", self.count.to_string());
        if let Some((index, owner)) = &self.index {
            node = node
                .with_attr("index", index.clone())
                .with_attr("owner", if *owner { "true" } else { "false" });
        }
        node
    }

    pub(crate) fn read(node: &Node<'_>) -> Result<MessagesQuery, WireError> {
        let direction = match node.attr("kind") {
            None | Some("before") => Direction::Before,
            Some("after") => Direction::After,
            Some(other) => {
                return Err(WireError::bad(
                    Self::SHAPE,
                    "kind",
                    format!("{other:?} is not before or after"),
                ));
            }
        };
        let index = match node.attr("index") {
            Some(index) => Some((
                check_message_id(Self::SHAPE, "index", index)?,
                read::opt_bool(node, Self::SHAPE, "owner")?.unwrap_or(false),
            )),
            None => None,
        };
        Ok(MessagesQuery {
            chat: parse_chat(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?,
            direction,
            count: read::opt_num(node, Self::SHAPE, "count")?.unwrap_or(50),
            index,
        })
    }
}
