//! Reading binary nodes and JSON replies into events and replies.

use std::collections::VecDeque;

use prost::Message as _;
use serde_json::Value;
use wa_binary::{Content, Node};
use wa_frame::Response;

use crate::error::{RequestError, SessionError};
use crate::event::{AckLevel, ChatEntry, ContactEntry, Event, MediaConn, MessageSource, Reply};
use crate::session::UserKind;

/// An unsolicited node from the server: pushed lists, history, live messages, receipts.
pub(crate) fn dispatch(node: &Node<'static>, events: &mut VecDeque<Event>) {
    match node.tag() {
        "response" => match node.attr("type") {
            Some("chat") => events.push_back(Event::Chats(chats(node))),
            Some("contacts") => events.push_back(Event::Contacts(contacts(node))),
            _ => events.push_back(Event::OtherNode(node.clone())),
        },
        "action" => action(node, events),
        _ => events.push_back(Event::OtherNode(node.clone())),
    }
}

/// `["action", {add}, [message | received | ...]]`.
fn action(node: &Node<'static>, events: &mut VecDeque<Event>) {
    let source = match node.attr("add") {
        Some("relay") => MessageSource::Relay,
        Some("last") => MessageSource::Last,
        Some("before") => MessageSource::Before,
        _ => MessageSource::Other,
    };
    let mut other = Vec::new();
    for child in node.children() {
        match child.tag() {
            "message" => match message(child) {
                Ok(info) => events.push_back(Event::Message { info, source }),
                Err(e) => events.push_back(Event::Error(e)),
            },
            "received" => events.push_back(receipt(child)),
            _ => other.push(child.clone()),
        }
    }
    if !other.is_empty() {
        let mut rest = node.clone();
        *rest.content_mut() = Content::Children(other.into());
        events.push_back(Event::OtherNode(rest));
    }
}

/// A `message` node's `WebMessageInfo`.
pub(crate) fn message(node: &Node<'_>) -> Result<Box<wa_proto::WebMessageInfo>, SessionError> {
    let Some(bytes) = node.bytes() else {
        return Err(SessionError::Message(
            "message node without bytes".to_owned(),
        ));
    };
    wa_proto::WebMessageInfo::decode(bytes)
        .map(Box::new)
        .map_err(|e| SessionError::Message(e.to_string()))
}

/// `["received", {type: read|message|played|error, index, jid, owner, participant?}]`.
fn receipt(node: &Node<'_>) -> Event {
    let level = match node.attr("type") {
        Some("read") => AckLevel::Read,
        Some("played") => AckLevel::Played,
        Some("error") => AckLevel::Other(-1),
        _ => AckLevel::Delivered,
    };
    Event::Ack {
        ids: node.attr("index").map(str::to_owned).into_iter().collect(),
        level,
        from: node
            .attr("participant")
            .or(node.attr("jid"))
            .map(str::to_owned),
        to: node.attr("jid").map(str::to_owned),
    }
}

fn attrs(node: &Node<'_>) -> Vec<(String, String)> {
    node.attrs()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn chats(node: &Node<'_>) -> Vec<ChatEntry> {
    node.children()
        .iter()
        .filter(|c| c.tag() == "chat")
        .filter_map(|c| {
            Some(ChatEntry {
                jid: c.attr("jid")?.to_owned(),
                name: c.attr("name").map(str::to_owned),
                unread: c.attr("count").and_then(|n| n.parse().ok()),
                t: c.attr("t").and_then(|t| t.parse().ok()),
                attrs: attrs(c),
            })
        })
        .collect()
}

fn contacts(node: &Node<'_>) -> Vec<ContactEntry> {
    node.children()
        .iter()
        .filter(|c| c.tag() == "user")
        .filter_map(|c| {
            Some(ContactEntry {
                jid: c.attr("jid")?.to_owned(),
                name: c.attr("name").map(str::to_owned),
                notify: c.attr("notify").map(str::to_owned),
                attrs: attrs(c),
            })
        })
        .collect()
}

/// A binary reply to a user request.
pub(crate) fn node_reply(kind: UserKind, node: Node<'static>) -> Result<Reply, RequestError> {
    match kind {
        UserKind::Chats => Ok(Reply::Chats(chats(&node))),
        UserKind::Contacts => Ok(Reply::Contacts(contacts(&node))),
        UserKind::Messages => node
            .children()
            .iter()
            .filter(|c| c.tag() == "message")
            .map(|c| message(c).map_err(|e| RequestError::BadReply(e.to_string())))
            .collect::<Result<Vec<_>, _>>()
            .map(Reply::Messages),
        UserKind::SendMessage(_) | UserKind::MediaConn | UserKind::Raw | UserKind::AutoReceipt => {
            Ok(Reply::Node(node))
        }
    }
}

/// A JSON reply (or an empty one) to a user request.
pub(crate) fn json_reply(kind: UserKind, response: Response) -> Result<Reply, RequestError> {
    if let Some(status) = response.status.filter(|&s| s != 200) {
        return Err(RequestError::Status(status));
    }
    match kind {
        UserKind::SendMessage(id) => Ok(Reply::MessageSent { id }),
        UserKind::MediaConn => media_conn(&response).map(Reply::MediaConn),
        UserKind::Raw | UserKind::AutoReceipt => {
            if response.status.is_none() && response.fields.is_empty() {
                return Ok(Reply::Done);
            }
            let mut fields = response.fields;
            if let Some(status) = response.status {
                fields.insert("status".to_owned(), Value::from(status));
            }
            Ok(Reply::Json(Value::Object(fields)))
        }
        UserKind::Chats | UserKind::Contacts | UserKind::Messages => Ok(Reply::Done),
    }
}

fn media_conn(response: &Response) -> Result<MediaConn, RequestError> {
    let bad = || RequestError::BadReply("mediaConn without media_conn.auth".to_owned());
    let conn = response.get("media_conn").ok_or_else(bad)?;
    Ok(MediaConn {
        auth: conn
            .get("auth")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned(),
        ttl: conn.get("ttl").and_then(Value::as_u64).unwrap_or(0),
        hosts: conn
            .get("hosts")
            .and_then(Value::as_array)
            .map(|hosts| {
                hosts
                    .iter()
                    .filter_map(|h| h.get("hostname").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}
