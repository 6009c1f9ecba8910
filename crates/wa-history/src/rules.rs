//! The rules of the model, which the exporters check before writing and the importers check
//! after reading: a history that passes them exports in both formats and imports back equal.
//!
//! A [`Violation`] names the entry and the field of the model; each format turns that into a
//! path in its own names.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use wa_binary::{Jid, Server};

use crate::content;
use crate::error::Problem;
use crate::model::History;

/// The longest JID accepted, in bytes of its wire form (real ones are under 40).
pub const MAX_JID_LEN: usize = 256;

/// The earliest timestamp accepted: 2009-01-01T00:00:00Z, in Unix seconds (WhatsApp was
/// released that year).
pub const MIN_TIMESTAMP: u64 = 1_230_768_000;

/// The first timestamp no longer accepted: 2100-01-01T00:00:00Z, in Unix seconds.
pub const END_TIMESTAMP: u64 = 4_102_444_800;

/// Which entry of a [`History`] a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Owner,
    Chat(usize),
    Contact(usize),
    Message(usize),
}

/// Which field of the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// The entry's own JID (owner, chat, contact).
    Jid,
    /// A chat's `last_activity`.
    LastActivity,
    /// A message's chat.
    Chat,
    Id,
    Sender,
    Timestamp,
    Content,
}

/// A broken rule: where, and what.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Violation {
    pub(crate) item: Item,
    pub(crate) field: Field,
    pub(crate) problem: Problem,
}

impl Violation {
    /// The path in the model's own names, for export errors: `messages[3].id`.
    pub(crate) fn model_path(&self) -> String {
        let field = match self.field {
            Field::Jid => "jid",
            Field::LastActivity => "last_activity",
            Field::Chat => "chat",
            Field::Id => "id",
            Field::Sender => "sender",
            Field::Timestamp => "timestamp",
            Field::Content => "content",
        };
        match self.item {
            Item::Owner => "owner".to_owned(),
            Item::Chat(i) => format!("chats[{i}].{field}"),
            Item::Contact(i) => format!("contacts[{i}].{field}"),
            Item::Message(i) => format!("messages[{i}].{field}"),
        }
    }
}

/// What a JID field may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JidKind {
    /// A user (`…@s.whatsapp.net`): owners, contacts, senders.
    User,
    /// A user, a group or a broadcast list: chats.
    Chat,
}

/// Checks that `jid` is of `kind`, has a user part, no agent or device, and is not too long.
pub(crate) fn check_jid(jid: &Jid, kind: JidKind) -> Result<(), Problem> {
    let expected = match kind {
        JidKind::User => "a user JID (…@s.whatsapp.net) without agent or device",
        JidKind::Chat => "a user, group or broadcast JID without agent or device",
    };
    let server_ok = match kind {
        JidKind::User => *jid.server() == Server::User,
        JidKind::Chat => matches!(
            jid.server(),
            Server::User | Server::Group | Server::Broadcast
        ),
    };
    let wire = jid.to_wire_string();
    if wire.len() > MAX_JID_LEN {
        return Err(Problem::JidTooLong {
            len: wire.len(),
            max: MAX_JID_LEN,
        });
    }
    if !server_ok || jid.user().is_none() || jid.agent().is_some() || jid.device().is_some() {
        return Err(Problem::WrongJidKind {
            jid: wire,
            expected,
        });
    }
    Ok(())
}

/// Checks a message id: 1 to 128 bytes of printable ASCII (`!` to `~`) without `,`.
pub(crate) fn check_message_id(id: &str) -> Result<(), Problem> {
    let reason = if id.is_empty() {
        "empty"
    } else if id.len() > 128 {
        "longer than 128 bytes"
    } else if !id.bytes().all(|b| b.is_ascii_graphic()) {
        "holds a byte that is not printable ASCII"
    } else if id.contains(',') {
        "holds ','"
    } else {
        return Ok(());
    };
    Err(Problem::BadMessageId {
        id: id.to_owned(),
        reason,
    })
}

/// Checks that `unix` is in 2009..2100.
pub(crate) fn check_timestamp(unix: u64) -> Result<(), Problem> {
    if (MIN_TIMESTAMP..END_TIMESTAMP).contains(&unix) {
        Ok(())
    } else {
        Err(Problem::TimestampOutOfRange { unix: unix.into() })
    }
}

fn at(item: Item, field: Field) -> impl FnOnce(Problem) -> Violation {
    move |problem| Violation {
        item,
        field,
        problem,
    }
}

/// Checks every rule of the model on `history`, in the order owner, chats, contacts, messages,
/// and reports the first one broken.
pub(crate) fn check(history: &History) -> Result<(), Violation> {
    check_jid(&history.owner, JidKind::User).map_err(at(Item::Owner, Field::Jid))?;

    let mut chats: HashMap<&Jid, usize> = HashMap::with_capacity(history.chats.len());
    for (i, chat) in history.chats.iter().enumerate() {
        let item = Item::Chat(i);
        check_jid(&chat.jid, JidKind::Chat).map_err(at(item, Field::Jid))?;
        check_timestamp(chat.last_activity).map_err(at(item, Field::LastActivity))?;
        match chats.entry(&chat.jid) {
            Entry::Occupied(first) => {
                return Err(at(item, Field::Jid)(Problem::DuplicateChat {
                    jid: chat.jid.to_wire_string(),
                    first: *first.get(),
                }));
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }

    let mut contacts: HashMap<&Jid, usize> = HashMap::with_capacity(history.contacts.len());
    for (i, contact) in history.contacts.iter().enumerate() {
        let item = Item::Contact(i);
        check_jid(&contact.jid, JidKind::User).map_err(at(item, Field::Jid))?;
        match contacts.entry(&contact.jid) {
            Entry::Occupied(first) => {
                return Err(at(item, Field::Jid)(Problem::DuplicateContact {
                    jid: contact.jid.to_wire_string(),
                    first: *first.get(),
                }));
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }

    let mut ids: HashMap<(&Jid, &str), usize> = HashMap::with_capacity(history.messages.len());
    for (i, m) in history.messages.iter().enumerate() {
        let item = Item::Message(i);
        if !chats.contains_key(&m.chat) {
            return Err(at(item, Field::Chat)(Problem::UnknownChat(
                m.chat.to_wire_string(),
            )));
        }
        check_message_id(&m.id).map_err(at(item, Field::Id))?;
        check_timestamp(m.timestamp).map_err(at(item, Field::Timestamp))?;
        if let Some(sender) = &m.sender {
            if *m.chat.server() == Server::User {
                return Err(at(item, Field::Sender)(Problem::UnexpectedSender(
                    "a message in a 1:1 chat has no sender (the chat is the sender)",
                )));
            }
            if m.from_me {
                return Err(at(item, Field::Sender)(Problem::UnexpectedSender(
                    "the owner's own message has no sender",
                )));
            }
            check_jid(sender, JidKind::User).map_err(at(item, Field::Sender))?;
        }
        content::check(&m.content).map_err(at(item, Field::Content))?;
        match ids.entry((&m.chat, m.id.as_str())) {
            Entry::Occupied(first) => {
                return Err(at(item, Field::Id)(Problem::DuplicateMessageId {
                    id: m.id.clone(),
                    chat: m.chat.to_wire_string(),
                    first: *first.get(),
                }));
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    Ok(())
}

/// Parses a JID read from an export (its kind is checked later, by [`check`]).
pub(crate) fn parse_jid(s: &str) -> Result<Jid, Problem> {
    if s.len() > MAX_JID_LEN {
        return Err(Problem::JidTooLong {
            len: s.len(),
            max: MAX_JID_LEN,
        });
    }
    s.parse()
        .map_err(|e: wa_binary::JidError| Problem::NotAJid {
            value: s.to_owned(),
            reason: e.to_string(),
        })
}

/// Checks a text read from an export against [`Limits::max_text_len`](crate::Limits).
pub(crate) fn check_text_len(s: &str, max: usize) -> Result<(), Problem> {
    if s.len() > max {
        Err(Problem::TextTooLong { len: s.len(), max })
    } else {
        Ok(())
    }
}

/// The first `max` characters of `s`, with `…` when it was longer: for quoting untrusted
/// strings in error messages.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
