//! The format-neutral data model: a [`History`] of chats, contacts and messages, and the
//! [`Format`]s it travels in.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use wa_binary::Jid;

/// What a phone hands a newly linked client: its chats, its contacts and the last messages of
/// each chat.
///
/// After [`import`](crate::import), `messages` are in canonical order
/// ([`History::sort_messages`]); [`export`](crate::export) accepts them in any order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct History {
    /// The phone's own account (a user JID without agent or device).
    pub owner: Jid,
    /// The chats, in the phone's order (kept as they are by both formats).
    pub chats: Vec<Chat>,
    /// The address book, in the phone's order (kept as they are by both formats).
    pub contacts: Vec<Contact>,
    /// The messages of all chats; every message's chat is one of `chats`.
    pub messages: Vec<HistoryMessage>,
}

impl History {
    /// An empty history of `owner`'s phone.
    pub fn new(owner: Jid) -> Self {
        Self {
            owner,
            chats: Vec::new(),
            contacts: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// Sorts `messages` into the canonical order: by timestamp, then by id, then by chat
    /// (`(chat, id)` is unique, so this is a total order). Importers return messages in this
    /// order whatever order their format stores them in.
    pub fn sort_messages(&mut self) {
        self.messages.sort_by(HistoryMessage::canonical_cmp);
    }
}

/// One chat: with a user (1:1), a group (`…@g.us`) or a broadcast list.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chat {
    /// Who the chat is with.
    pub jid: Jid,
    /// The name the phone shows (group subject, or the contact's name), if any.
    pub name: Option<String>,
    /// Messages not yet read on the phone.
    pub unread: u32,
    /// When the chat was last active, in Unix seconds.
    pub last_activity: u64,
    /// Whether the chat is archived.
    pub archived: bool,
}

impl Chat {
    /// A chat with `jid`, last active at `last_activity` (Unix seconds), unnamed, all read, not
    /// archived.
    pub fn new(jid: Jid, last_activity: u64) -> Self {
        Self {
            jid,
            name: None,
            unread: 0,
            last_activity,
            archived: false,
        }
    }
}

/// One entry of the phone's address book.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Contact {
    /// The contact's user JID.
    pub jid: Jid,
    /// The name in the phone's address book, if any.
    pub name: Option<String>,
    /// The name the contact chose for themselves (the "push name"), if known.
    pub notify: Option<String>,
}

impl Contact {
    /// A contact with neither name nor push name.
    pub fn new(jid: Jid) -> Self {
        Self {
            jid,
            name: None,
            notify: None,
        }
    }
}

/// One message of a chat.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HistoryMessage {
    /// The chat it belongs to.
    pub chat: Jid,
    /// The message id: 1 to 128 bytes of printable ASCII without `,`, unique within its chat.
    pub id: String,
    /// Whether the phone's owner sent it.
    pub from_me: bool,
    /// The sender of an incoming message in a group or broadcast chat; `None` in 1:1 chats and
    /// for the owner's own messages.
    pub sender: Option<Jid>,
    /// When it was sent, in Unix seconds.
    pub timestamp: u64,
    /// How far its delivery got.
    pub status: MessageStatus,
    /// What it says or shows.
    pub content: wa_proto::Message,
}

impl HistoryMessage {
    /// A message without sender (1:1 chats, own messages; set [`HistoryMessage::sender`] for
    /// incoming group messages).
    pub fn new(
        chat: Jid,
        id: impl Into<String>,
        from_me: bool,
        timestamp: u64,
        status: MessageStatus,
        content: wa_proto::Message,
    ) -> Self {
        Self {
            chat,
            id: id.into(),
            from_me,
            sender: None,
            timestamp,
            status,
            content,
        }
    }

    /// The canonical order of [`History::sort_messages`]: timestamp, then id, then chat.
    pub fn canonical_cmp(a: &Self, b: &Self) -> Ordering {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.chat.cmp(&b.chat))
    }
}

/// How far a message's delivery got: the states of the legacy protocol's
/// `WebMessageInfo.Status`. Each format numbers them its own way (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Not yet acknowledged by the server (or, for an incoming message, no receipt state).
    Pending,
    /// Stored by the server: one tick.
    ServerAck,
    /// Delivered to the recipient's device: two ticks.
    Delivered,
    /// Read: blue ticks.
    Read,
    /// A voice note or video was played.
    Played,
    /// Sending failed.
    Error,
}

impl MessageStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::ServerAck,
        Self::Delivered,
        Self::Read,
        Self::Played,
        Self::Error,
    ];
}

/// The platform a history export comes from: each writes its own format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// A JSON document modelled on Android's `msgstore.db`.
    Android,
    /// A binary property list modelled on iOS's `ChatStorage.sqlite` (Core Data).
    Ios,
}

impl Format {
    /// Both formats.
    pub const ALL: [Self; 2] = [Self::Android, Self::Ios];

    /// The platform's name as people write it: `Android`, `iOS`.
    pub fn platform(self) -> &'static str {
        match self {
            Self::Android => "Android",
            Self::Ios => "iOS",
        }
    }

    /// The name [`FromStr`] reads and [`Display`](fmt::Display) writes: `android`, `ios`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Android => "android",
            Self::Ios => "ios",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is neither `android` nor `ios`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown history format {0:?} (expected \"android\" or \"ios\")")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    /// `android` or `ios`, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}
