//! The binary nodes of the web client's socket: the requests a client sends (sealed, with a
//! metric and flags byte) and the nodes the server sends back (replies under the request's tag,
//! pushes under its own tags).
//!
//! JSON frames are typed in `wa-frame` ([`wa_frame::Request`], [`wa_frame::ServerMessage`]);
//! [`crate::json`] adds the replies and pushes this project's server writes.

use wa_binary::Node;
use wa_frame::{Flags, Metric};

use crate::error::WireError;
use crate::ids::{Jid, parse_device, parse_user, user_of};
use crate::keys::{Claimed, DeviceList, KeyUpload};
use crate::legacy::{self, ActionPush, ChatEntry, ContactEntry, MessagesQuery, StatusEntry};
use crate::msg::{GroupAction, Incoming, Notification, PresenceSet, Receipt, ReceiptKind, Relay};
use crate::read;

/// Users one device query, and devices one pre-key claim, may name at most.
pub const MAX_QUERY_ITEMS: usize = 1024;

/// A binary request from a web client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// An end-to-end encrypted message: `["action", {type: "relay", epoch}, [enc]]`.
    Relay(Relay),
    /// A readable legacy message: `["action", {type: "relay", epoch}, [["message", null,
    /// <WebMessageInfo>]]]`. What unmodified legacy clients send; a server that relays only
    /// ciphertext refuses it from end-to-end clients.
    LegacyRelay(Box<wa_proto::WebMessageInfo>),
    /// Receipts, presence, group operations and key uploads: `["action", {type: "set",
    /// epoch}, [...]]`.
    Set(Vec<SetItem>),
    /// A query: `["query", {type, epoch, ...}, ...]`.
    Query(Query),
}

/// One child of an `action set`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetItem {
    /// A delivery, read or played receipt.
    Receipt(Receipt),
    /// The own presence.
    Presence(PresenceSet),
    /// A group operation, with the id the client gave it (its reply's tag).
    Group {
        /// The operation.
        action: GroupAction,
        /// The `id` attribute (the client sets it to the request's tag).
        id: String,
    },
    /// Key material for the directory.
    Keys(KeyUpload),
}

/// A binary query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Query {
    /// `{type: "chat"}`: the chat list.
    Chats,
    /// `{type: "contacts"}`: the contact list.
    Contacts,
    /// `{type: "message", ...}`: history.
    Messages(MessagesQuery),
    /// `{type: "devices"}, [["user", {jid}], ...]`: the device lists of users (metric
    /// QUERY_IDENTITY).
    Devices(Vec<Jid>),
    /// `{type: "prekeys"}, [["device", {jid}], ...]`: claim one one-time key per device
    /// (metric QUERY_IDENTITY).
    PreKeys(Vec<Jid>),
    /// `{type: "status"}`: the contacts' status lines (metric QUERY_STATUS).
    Status,
}

/// Children one `action set` may hold at most.
pub const MAX_SET_ITEMS: usize = 256;

impl Request {
    const SHAPE_RELAY: &'static str = "action relay";
    const SHAPE_SET: &'static str = "action set";
    const SHAPE_QUERY: &'static str = "query";

    /// The node, with `epoch` (a counter the client increments per binary request); `own` is
    /// the sending user (the `author` of group operations).
    pub fn to_node(&self, epoch: u64, own: &Jid) -> Node<'static> {
        match self {
            Request::Relay(relay) => Node::new("action")
                .with_attr("type", "relay")
                .with_attr("epoch", epoch.to_string())
                .with_children(vec![relay.to_node()]),
            Request::LegacyRelay(info) => legacy::relay_node(info, epoch),
            Request::Set(items) => Node::new("action")
                .with_attr("type", "set")
                .with_attr("epoch", epoch.to_string())
                .with_children(
                    items
                        .iter()
                        .map(|item| match item {
                            SetItem::Receipt(r) => r.to_node(),
                            SetItem::Presence(p) => p.to_node(),
                            SetItem::Group { action, id } => action.to_node(own, id),
                            SetItem::Keys(k) => k.to_node(),
                        })
                        .collect(),
                ),
            Request::Query(query) => {
                let node = Node::new("query");
                let node = match query {
                    Query::Chats => node.with_attr("type", "chat"),
                    Query::Contacts => node.with_attr("type", "contacts"),
                    Query::Status => node.with_attr("type", "status"),
                    Query::Messages(q) => q.write(node.with_attr("type", "message")),
                    Query::Devices(users) => node.with_attr("type", "devices").with_children(
                        users
                            .iter()
                            .map(|u| Node::new("user").with_attr("jid", u.to_wire_string()))
                            .collect(),
                    ),
                    Query::PreKeys(devices) => node.with_attr("type", "prekeys").with_children(
                        devices
                            .iter()
                            .map(|d| Node::new("device").with_attr("jid", d.to_wire_string()))
                            .collect(),
                    ),
                };
                node.with_attr("epoch", epoch.to_string())
            }
        }
    }

    /// Reads a request node (its `epoch` is not kept).
    ///
    /// # Errors
    /// When the node is no request of this vocabulary or a part of it is malformed.
    pub fn from_node(node: &Node<'_>) -> Result<Request, WireError> {
        match (node.tag(), node.attr("type")) {
            ("action", Some("relay")) => {
                let [child] = node.children() else {
                    return Err(if node.children().is_empty() {
                        WireError::new(Self::SHAPE_RELAY, "no `enc` or `message` child")
                    } else {
                        WireError::new(Self::SHAPE_RELAY, "more than one child")
                    });
                };
                match child.tag() {
                    "enc" => Relay::from_node(child).map(Request::Relay),
                    "message" => legacy::message(child).map(|m| Request::LegacyRelay(Box::new(m))),
                    _ => Err(WireError::new(
                        Self::SHAPE_RELAY,
                        "no `enc` or `message` child",
                    )),
                }
            }
            ("action", Some("set")) => {
                if node.children().len() > MAX_SET_ITEMS {
                    return Err(WireError::new(Self::SHAPE_SET, "too many children"));
                }
                let mut items = Vec::with_capacity(node.children().len());
                for child in node.children() {
                    match child.tag() {
                        "received" | "read" => {
                            if let Some(receipt) = Receipt::from_node(child)? {
                                items.push(SetItem::Receipt(receipt));
                            }
                        }
                        "presence" => items.push(SetItem::Presence(PresenceSet::from_node(child)?)),
                        "group" => items.push(SetItem::Group {
                            action: GroupAction::from_node(child)?,
                            id: read::attr(child, "group", "id")?.to_owned(),
                        }),
                        "keys" => items.push(SetItem::Keys(KeyUpload::from_node(child)?)),
                        other => {
                            return Err(WireError::new(
                                Self::SHAPE_SET,
                                format!("unknown child `{other}`"),
                            ));
                        }
                    }
                }
                Ok(Request::Set(items))
            }
            ("query", Some(kind)) => {
                let query = match kind {
                    "chat" => Query::Chats,
                    "contacts" => Query::Contacts,
                    "status" => Query::Status,
                    "message" => Query::Messages(MessagesQuery::read(node)?),
                    "devices" => Query::Devices(items(node, "user", |jid| {
                        parse_user("query devices", "jid", jid)
                    })?),
                    "prekeys" => Query::PreKeys(items(node, "device", |jid| {
                        parse_device("query prekeys", "jid", jid)
                    })?),
                    other => {
                        return Err(WireError::new(
                            Self::SHAPE_QUERY,
                            format!("unknown type {other:?}"),
                        ));
                    }
                };
                Ok(Request::Query(query))
            }
            (tag, kind) => Err(WireError::new(
                "request",
                format!("unknown request `{tag}` of type {kind:?}"),
            )),
        }
    }

    /// The metric byte of the request (PROTOCOL.md §3.2).
    pub fn metric(&self) -> Metric {
        match self {
            Request::Relay(_) | Request::LegacyRelay(_) => Metric::MESSAGE,
            Request::Set(items) => match items.first() {
                Some(SetItem::Receipt(r)) if r.kind == ReceiptKind::Read => Metric::READ,
                Some(SetItem::Receipt(_)) => Metric::RECEIVED,
                Some(SetItem::Presence(_)) => Metric::PRESENCE,
                Some(SetItem::Group { .. }) => Metric::GROUP,
                Some(SetItem::Keys(_)) => Metric::QUERY_IDENTITY,
                None => Metric::DEBUG_LOG,
            },
            Request::Query(query) => match query {
                Query::Chats => Metric::QUERY_CHAT,
                Query::Contacts => Metric::QUERY_CONTACTS,
                Query::Messages(_) => Metric::QUERY_MESSAGES,
                Query::Status => Metric::QUERY_STATUS,
                Query::Devices(_) | Query::PreKeys(_) => Metric::QUERY_IDENTITY,
            },
        }
    }

    /// The flags byte (PROTOCOL.md §3.3): a message to `own` (the sender's own user) asks for
    /// an ack instead of "not ignore"; presence and group operations have their own.
    pub fn flags(&self, own: &Jid) -> Flags {
        match self {
            Request::Relay(relay) if user_of(own) == user_of(&relay.to) => Flags::ACK_REQUEST,
            Request::Set(items) => match items.first() {
                Some(SetItem::Presence(p)) => match p.state {
                    crate::msg::PresenceState::Available => Flags(0xA0),
                    crate::msg::PresenceState::Unavailable => Flags::NOT_AVAILABLE,
                    _ => Flags::SKIP_OFFLINE,
                },
                Some(SetItem::Group { .. }) => Flags(0x88),
                _ => Flags::NOT_IGNORE,
            },
            _ => Flags::NOT_IGNORE,
        }
    }
}

fn items<T>(
    node: &Node<'_>,
    tag: &'static str,
    parse: impl Fn(&str) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    if node.children().len() > MAX_QUERY_ITEMS {
        return Err(WireError::new("query", "too many items"));
    }
    if node.children().is_empty() {
        return Err(WireError::new("query", "no items"));
    }
    node.children()
        .iter()
        .map(|child| {
            read::expect_tag(child, "query", tag)?;
            parse(read::attr(child, "query", "jid")?)
        })
        .collect()
}

/// A binary node the server sends: a push or a reply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerNode {
    /// End-to-end encrypted messages: `["action", {add: "relay"}, [enc, ...]]`.
    Incoming(Vec<Incoming>),
    /// Readable legacy messages and receipts (mirror mode, legacy servers).
    Action(ActionPush),
    /// The chat list: `["response", {type: "chat"}, [chat, ...]]`.
    Chats(Vec<ChatEntry>),
    /// The contact list: `["response", {type: "contacts"}, [user, ...]]`.
    Contacts(Vec<ContactEntry>),
    /// Device lists: `["response", {type: "devices"}, [user, ...]]`.
    Devices(Vec<DeviceList>),
    /// Claimed pre-keys: `["response", {type: "prekeys"}, [device, ...]]`.
    PreKeys(Vec<Claimed>),
    /// Status lines: `["response", {type: "status"}, [status, ...]]`.
    Statuses(Vec<StatusEntry>),
    /// A key-directory notification.
    Notification(Notification),
}

impl ServerNode {
    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        fn response(kind: &'static str, children: Vec<Node<'static>>) -> Node<'static> {
            Node::new("response")
                .with_attr("type", kind)
                .with_children(children)
        }
        match self {
            ServerNode::Incoming(messages) => Node::new("action")
                .with_attr("add", "relay")
                .with_children(messages.iter().map(Incoming::to_node).collect()),
            ServerNode::Action(push) => push.to_node(),
            ServerNode::Chats(chats) => {
                response("chat", chats.iter().map(ChatEntry::to_node).collect())
            }
            ServerNode::Contacts(contacts) => response(
                "contacts",
                contacts.iter().map(ContactEntry::to_node).collect(),
            ),
            ServerNode::Devices(lists) => {
                response("devices", lists.iter().map(DeviceList::to_node).collect())
            }
            ServerNode::PreKeys(claimed) => {
                response("prekeys", claimed.iter().map(Claimed::to_node).collect())
            }
            ServerNode::Statuses(statuses) => response(
                "status",
                statuses.iter().map(StatusEntry::to_node).collect(),
            ),
            ServerNode::Notification(n) => n.to_node(),
        }
    }

    /// Reads a node from the server.
    ///
    /// # Errors
    /// When the node is none of these shapes or a part of it is malformed.
    pub fn from_node(node: &Node<'_>) -> Result<ServerNode, WireError> {
        match (node.tag(), node.attr("type")) {
            ("action", _) => {
                let encrypted =
                    !node.children().is_empty() && node.children().iter().all(|c| c.tag() == "enc");
                if encrypted {
                    node.children()
                        .iter()
                        .map(Incoming::from_node)
                        .collect::<Result<_, _>>()
                        .map(ServerNode::Incoming)
                } else {
                    ActionPush::from_node(node).map(ServerNode::Action)
                }
            }
            ("response", Some("chat")) => list(node, ChatEntry::from_node).map(ServerNode::Chats),
            ("response", Some("contacts")) => {
                list(node, ContactEntry::from_node).map(ServerNode::Contacts)
            }
            ("response", Some("devices")) => {
                list(node, DeviceList::from_node).map(ServerNode::Devices)
            }
            ("response", Some("prekeys")) => {
                list(node, Claimed::from_node).map(ServerNode::PreKeys)
            }
            ("response", Some("status")) => {
                list(node, StatusEntry::from_node).map(ServerNode::Statuses)
            }
            ("notification", _) => Notification::from_node(node).map(ServerNode::Notification),
            (tag, kind) => Err(WireError::new(
                "server node",
                format!("unknown node `{tag}` of type {kind:?}"),
            )),
        }
    }
}

fn list<T>(
    node: &Node<'_>,
    read: impl Fn(&Node<'_>) -> Result<T, WireError>,
) -> Result<Vec<T>, WireError> {
    node.children().iter().map(read).collect()
}
