//! What the server sends, read through the wire vocabulary: pushes (end-to-end messages for the
//! endpoint, legacy messages and lists, acks, presence, group changes, notifications) and the
//! replies to the session's requests.

use serde_json::Value;
use wa_e2e::endpoint::{EndpointEvent, NeedKind};
use wa_frame::{Response, ServerMessage};
use wa_wire::Jid;
use wa_wire::ids::user_of;
use wa_wire::json::{GroupMetadata, MediaConn, RelayReply};
use wa_wire::legacy::{ActionChild, Add};
use wa_wire::msg::{Notification, ReceiptKind};
use wa_wire::web::ServerNode;

use crate::error::{RequestError, SessionError};
use crate::event::{AckLevel, Event, MessageSource, Reply};
use crate::session::{E2eKind, Session, UserKind};
use wa_wire::Time;

/// A JSON push (anything but `Conn` and `Cmd`, which the session handles itself).
pub(crate) fn server_message(session: &mut Session, _now: Time, tag: &str, message: ServerMessage) {
    let events = &mut session.events;
    match message {
        ServerMessage::Stream(stream) if stream.is_asleep() => {
            events.push_back(Event::PhoneReachable(false))
        }
        ServerMessage::Pong(reachable) => events.push_back(Event::PhoneReachable(reachable)),
        ServerMessage::Msg(ack) => events.push_back(Event::Ack {
            ids: vec![ack.id.clone()],
            level: AckLevel::from_number(ack.ack.0),
            from: ack.from.as_deref().and_then(|j| j.parse().ok()),
            to: ack.to.as_deref().and_then(|j| j.parse().ok()),
            participant: ack.participant.as_deref().and_then(|j| j.parse().ok()),
        }),
        ServerMessage::MsgInfo(acks) => events.push_back(Event::Ack {
            ids: acks.id.iter().map(str::to_owned).collect(),
            level: AckLevel::from_number(acks.ack.0),
            from: acks.from.as_deref().and_then(|j| j.parse().ok()),
            to: acks.to.as_deref().and_then(|j| j.parse().ok()),
            participant: acks.participant.as_deref().and_then(|j| j.parse().ok()),
        }),
        ServerMessage::Presence(presence) => match presence.id.parse::<Jid>() {
            Ok(id) => {
                let (jid, group) =
                    match presence.participant.as_deref().and_then(|p| p.parse().ok()) {
                        Some(participant) => (participant, Some(id)),
                        None => (id, None),
                    };
                events.push_back(Event::Presence {
                    jid,
                    group,
                    kind: String::from(presence.kind),
                    t: presence.t,
                });
            }
            Err(_) => events.push_back(Event::Error(SessionError::BadMessage {
                kind: "Presence".into(),
            })),
        },
        ServerMessage::Chat(chat) => match wa_wire::json::read_group_change(&chat) {
            Ok(Some(notice)) => {
                if let Some(endpoint) = &mut session.endpoint {
                    endpoint.handle_group_change(&notice);
                }
                session.events.push_back(Event::Group(Box::new(notice)));
            }
            Ok(None) => events.push_back(Event::Other(ServerMessage::Chat(chat).to_json())),
            Err(e) => {
                events.push_back(Event::Error(SessionError::Message(e.to_string())));
            }
        },
        ServerMessage::Response(response) => {
            events.push_back(Event::Error(SessionError::UnknownTag(tag.to_owned())));
            events.push_back(Event::Other(Value::Object(response.fields)));
        }
        other => events.push_back(Event::Other(other.to_json())),
    }
}

/// A binary push.
pub(crate) fn push(session: &mut Session, now: Time, node: &wa_binary::Node<'static>) {
    let typed = match ServerNode::from_node(node) {
        Ok(typed) => typed,
        Err(e) => {
            session
                .events
                .push_back(Event::Error(SessionError::Message(e.to_string())));
            return session.events.push_back(Event::OtherNode(node.clone()));
        }
    };
    match typed {
        ServerNode::Incoming(messages) => match &mut session.endpoint {
            Some(endpoint) => {
                for message in messages {
                    endpoint.receive(message);
                }
            }
            None => session.events.push_back(Event::Error(SessionError::Message(
                "an end-to-end message for a legacy client".into(),
            ))),
        },
        ServerNode::Action(action) => legacy_action(session, now, action),
        ServerNode::Chats(chats) => session.events.push_back(Event::Chats(chats)),
        ServerNode::Contacts(contacts) => session.events.push_back(Event::Contacts(contacts)),
        ServerNode::Notification(notification) => {
            if let Some(endpoint) = &mut session.endpoint {
                endpoint.handle_notification(&notification);
            }
            if let Notification::Identity { jid, .. } = &notification {
                session
                    .events
                    .push_back(Event::IdentityChanged { jid: jid.clone() });
            }
        }
        _ => session.events.push_back(Event::OtherNode(node.clone())),
    }
}

/// Readable messages and receipts (a legacy server, or a mirror-mode phone).
fn legacy_action(session: &mut Session, now: Time, action: wa_wire::legacy::ActionPush) {
    let source = match action.add {
        Add::Relay => MessageSource::Relay,
        Add::Last => MessageSource::Last,
        Add::Before => MessageSource::Before,
        Add::Other(_) => MessageSource::Other,
    };
    let mut receipts = Vec::new();
    for child in action.children {
        match child {
            ActionChild::Message(info) => {
                if source == MessageSource::Relay && info.key.from_me != Some(true) {
                    let chat = info
                        .key
                        .remote_jid
                        .as_deref()
                        .and_then(|j| j.parse::<Jid>().ok());
                    let participant = info
                        .key
                        .participant
                        .as_deref()
                        .and_then(|j| j.parse::<Jid>().ok());
                    if let (Some(chat), Some(id)) = (chat, info.key.id.clone()) {
                        receipts.push((chat, id, participant));
                    }
                }
                session.events.push_back(Event::Message { info, source });
            }
            ActionChild::Receipt(receipt) => session.events.push_back(Event::Ack {
                ids: vec![receipt.id],
                level: match receipt.kind {
                    ReceiptKind::Read => AckLevel::Read,
                    ReceiptKind::Played => AckLevel::Played,
                    ReceiptKind::Delivered => AckLevel::Delivered,
                },
                from: Some(
                    receipt
                        .participant
                        .clone()
                        .unwrap_or_else(|| receipt.chat.clone()),
                ),
                to: Some(receipt.chat),
                participant: receipt.participant,
            }),
            ActionChild::Other(node) => session.events.push_back(Event::OtherNode(node)),
        }
    }
    if session.config.delivery_receipts {
        for (chat, id, participant) in receipts {
            session.auto_receipt(now, &chat, &id, participant.as_ref());
        }
    }
}

impl Session {
    /// What the endpoint says, as session events (and the receipts that retire delivered
    /// messages on the server).
    pub(crate) fn endpoint_event(&mut self, now: Time, event: EndpointEvent) {
        match event {
            EndpointEvent::Message(received) => {
                let received = *received;
                self.receipt_for(now, &received.chat, &received.id, &received.from);
                if let Some(history) = received.envelope.history.clone() {
                    self.events.push_back(Event::History {
                        from: received.from.clone(),
                        notice: Box::new(history),
                    });
                }
                if received.envelope.message.is_some() {
                    let info = received.to_web_message();
                    self.events.push_back(Event::Message {
                        info: Box::new(info),
                        source: MessageSource::Relay,
                    });
                }
            }
            EndpointEvent::Undecryptable { from, id, error } => {
                // The server keeps it until this device says it has it: it will never open, so
                // say so, and report it.
                if let Some(chat) = self.chat_of_undecryptable(&from) {
                    self.receipt_for(now, &chat, &id, &from);
                }
                self.events
                    .push_back(Event::Error(SessionError::Undecryptable {
                        from,
                        id,
                        error,
                    }));
            }
            EndpointEvent::Sent { id, t: _ } => {
                if let Some(request) = self.sends.remove(&id) {
                    self.events.push_back(Event::Reply {
                        id: request,
                        result: Ok(Reply::MessageSent { id }),
                    });
                }
            }
            EndpointEvent::SendFailed { id, error } => {
                if let Some(request) = self.sends.remove(&id) {
                    self.events.push_back(Event::Reply {
                        id: request,
                        result: Err(RequestError::NotSent(error)),
                    });
                }
            }
            EndpointEvent::IdentityChanged { user } => {
                self.events.push_back(Event::IdentityChanged { jid: user })
            }
            _ => {}
        }
    }

    /// A delivery receipt for an end-to-end message, unless automatic receipts are off.
    fn receipt_for(&mut self, now: Time, chat: &Jid, id: &str, from: &Jid) {
        if !self.config.delivery_receipts {
            return;
        }
        let participant = wa_wire::Chat::from_jid(chat)
            .is_ok_and(|c| c.is_group())
            .then(|| user_of(from));
        self.auto_receipt(now, chat, id, participant.as_ref());
    }

    /// The chat to name in the receipt that retires an undecryptable message: the sender's
    /// user. The server finds the message by sender and id whatever the chat was (a group's,
    /// or this account's own message copied to its other devices), so this retires those too.
    fn chat_of_undecryptable(&self, from: &Jid) -> Option<Jid> {
        self.own_jid()?;
        Some(user_of(from))
    }
}

/// A binary reply to a user request.
pub(crate) fn node_reply(
    kind: UserKind,
    node: wa_binary::Node<'static>,
) -> Result<Reply, RequestError> {
    let typed = ServerNode::from_node(&node);
    match (kind, typed) {
        (UserKind::Chats, Ok(ServerNode::Chats(chats))) => Ok(Reply::Chats(chats)),
        (UserKind::Contacts, Ok(ServerNode::Contacts(contacts))) => Ok(Reply::Contacts(contacts)),
        (UserKind::Messages, Ok(ServerNode::Action(action))) => Ok(Reply::Messages(
            action
                .children
                .into_iter()
                .filter_map(|c| match c {
                    ActionChild::Message(info) => Some(info),
                    _ => None,
                })
                .collect(),
        )),
        (UserKind::Statuses, Ok(ServerNode::Statuses(statuses))) => Ok(Reply::Statuses(statuses)),
        (
            UserKind::Chats | UserKind::Contacts | UserKind::Messages | UserKind::Statuses,
            Err(e),
        ) => Err(RequestError::BadReply(e.to_string())),
        _ => Ok(Reply::Node(node)),
    }
}

/// A JSON reply (or an empty one) to a user request.
pub(crate) fn json_reply(kind: UserKind, response: Response) -> Result<Reply, RequestError> {
    if let Some(status) = response.status.filter(|&s| s != 200) {
        let reason = response
            .get("reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Err(RequestError::Status { status, reason });
    }
    match kind {
        UserKind::SendMessage(id) => Ok(Reply::MessageSent { id }),
        UserKind::MediaConn => MediaConn::from_response(&response)
            .map(Reply::MediaConn)
            .map_err(|e| RequestError::BadReply(e.to_string())),
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
        UserKind::Chats | UserKind::Contacts | UserKind::Messages | UserKind::Statuses => {
            Ok(Reply::Done)
        }
    }
}

/// A JSON reply to something the endpoint asked for.
pub(crate) fn e2e_json_reply(
    session: &mut Session,
    kind: E2eKind,
    response: Result<Response, RequestError>,
) {
    let Some(endpoint) = &mut session.endpoint else {
        return;
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => return e2e_failed(session, &kind, &e.to_string()),
    };
    match kind {
        E2eKind::Keys => match wa_wire::json::read_keys_reply(&response) {
            Ok(count) => endpoint.handle_keys_uploaded(count),
            Err(e) => endpoint.handle_failed(NeedKind::UploadKeys, &e.to_string()),
        },
        E2eKind::Relay(id) => match RelayReply::from_response(&response) {
            Ok(reply) => endpoint.handle_relay_reply(&id, reply),
            Err(e) => endpoint.handle_relay_reply(
                &id,
                RelayReply::Refused {
                    status: 0,
                    reason: e.to_string(),
                },
            ),
        },
        E2eKind::Group(gid) => {
            let members = GroupMetadata::from_response(&response)
                .ok()
                .filter(|_| response.status.is_none_or(|s| s == 200))
                .map(|m| m.participants.into_iter().map(|p| p.jid).collect());
            endpoint.handle_group_members(&gid, members);
        }
        E2eKind::Devices | E2eKind::PreKeys => {
            let why = format!("status {:?}", response.status);
            e2e_failed(session, &kind, &why);
        }
    }
}

/// A binary reply to something the endpoint asked for.
pub(crate) fn e2e_node_reply(
    session: &mut Session,
    kind: E2eKind,
    node: Result<wa_binary::Node<'static>, RequestError>,
) {
    let typed = match node {
        Ok(node) => ServerNode::from_node(&node).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let Some(endpoint) = &mut session.endpoint else {
        return;
    };
    match (&kind, typed) {
        (E2eKind::Devices, Ok(ServerNode::Devices(lists))) => endpoint.handle_device_lists(lists),
        (E2eKind::PreKeys, Ok(ServerNode::PreKeys(claimed))) => endpoint.handle_prekeys(claimed),
        (_, Err(e)) => e2e_failed(session, &kind, &e),
        (_, Ok(_)) => e2e_failed(session, &kind, "unexpected reply"),
    }
}

/// Something the endpoint asked for did not come.
pub(crate) fn e2e_failed(session: &mut Session, kind: &E2eKind, why: &str) {
    let Some(endpoint) = &mut session.endpoint else {
        return;
    };
    let need = match kind {
        E2eKind::Devices => NeedKind::DeviceLists,
        E2eKind::PreKeys => NeedKind::PreKeys,
        E2eKind::Group(_) => NeedKind::GroupMembers,
        E2eKind::Keys => NeedKind::UploadKeys,
        E2eKind::Relay(_) => NeedKind::Relay,
    };
    endpoint.handle_failed(need, why);
}
