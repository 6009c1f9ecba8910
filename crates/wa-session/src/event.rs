//! What the session tells its driver and its user.

use std::time::Duration;

use wa_binary::Node;
use wa_wire::Jid;

pub use wa_wire::json::MediaConn;
pub use wa_wire::legacy::{ChatEntry, ContactEntry};

use crate::credentials::Credentials;
use crate::error::{LinkError, LoginError, RequestError, SessionError};
use wa_wire::Time;

/// An instruction for the driver: send a message, close the socket, or open a new one.
///
/// `Debug` shows a sent message's tag and length only: login frames carry tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send this WebSocket message.
    Send(wa_frame::OutMessage),
    /// Close the socket (stale, replaced, logged out, or about to reconnect).
    Close,
    /// Open a new socket and call [`Session::handle_connected`](crate::Session::handle_connected)
    /// once it is open (or [`Session::handle_closed`](crate::Session::handle_closed) if it fails).
    Connect,
}

impl std::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transmit::Send(wa_frame::OutMessage::Text(text)) => {
                let tag = text.split(',').next().unwrap_or_default();
                write!(f, "Send(Text {{ tag: {tag:?}, len: {} }})", text.len())
            }
            Transmit::Send(wa_frame::OutMessage::Binary(bytes)) => {
                let tag = bytes.split(|&b| b == b',').next().unwrap_or_default();
                write!(
                    f,
                    "Send(Binary {{ tag: {:?}, len: {} }})",
                    String::from_utf8_lossy(tag),
                    bytes.len()
                )
            }
            Transmit::Close => f.write_str("Close"),
            Transmit::Connect => f.write_str("Connect"),
        }
    }
}

/// Identifies a user command, so that its outcome can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The number, for logs.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Where an incoming message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageSource {
    /// Relayed live (`add="relay"`).
    Relay,
    /// The latest history, pushed after login (`add="last"`).
    Last,
    /// Older history, answering a query (`add="before"`).
    Before,
    /// Any other `add` value (`update`, `unread`, ...).
    Other,
}

/// An acknowledgement level: the ticks of a message (PROTOCOL.md §2.6). Levels order by
/// their number, so an error (-1) is below `Pending` and `level >= Delivered` means "at least
/// two ticks".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckLevel {
    /// 0: not yet sent.
    Pending,
    /// 1: the server stored it (one tick).
    Sent,
    /// 2: a device of the recipient has it (two ticks).
    Delivered,
    /// 3: read (blue ticks).
    Read,
    /// 4: played (voice notes).
    Played,
    /// Any other number, kept.
    Other(i64),
}

impl PartialOrd for AckLevel {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AckLevel {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.number().cmp(&other.number())
    }
}

impl AckLevel {
    /// The level of an ack number.
    pub fn from_number(n: i64) -> AckLevel {
        match n {
            0 => AckLevel::Pending,
            1 => AckLevel::Sent,
            2 => AckLevel::Delivered,
            3 => AckLevel::Read,
            4 => AckLevel::Played,
            other => AckLevel::Other(other),
        }
    }

    /// The ack number.
    pub fn number(self) -> i64 {
        match self {
            AckLevel::Pending => 0,
            AckLevel::Sent => 1,
            AckLevel::Delivered => 2,
            AckLevel::Read => 3,
            AckLevel::Played => 4,
            AckLevel::Other(n) => n,
        }
    }
}

/// The account a linked client acts for, as the `Conn` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The own JID.
    pub wid: Option<Jid>,
    /// The display name.
    pub pushname: Option<String>,
    /// The phone's platform (`android`, `iphone`, ...).
    pub platform: Option<String>,
    /// The phone: manufacturer, model, OS and WhatsApp versions, network codes.
    pub phone: Option<wa_frame::Phone>,
    /// Battery percentage, when the phone said.
    pub battery: Option<u8>,
}

/// What a successful request returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The request went out and needs no answer (presence, read receipts are acked later).
    Done,
    /// A JSON answer.
    Json(serde_json::Value),
    /// A binary node answer.
    Node(Node<'static>),
    /// A message was accepted by the server (ack 1): its id.
    MessageSent {
        /// The message id.
        id: String,
    },
    /// Chats answering [`Session::query_chats`](crate::Session::query_chats).
    Chats(Vec<ChatEntry>),
    /// Contacts answering [`Session::query_contacts`](crate::Session::query_contacts).
    Contacts(Vec<ContactEntry>),
    /// Messages answering [`Session::query_messages`](crate::Session::query_messages).
    Messages(Vec<Box<wa_proto::WebMessageInfo>>),
    /// Status lines answering [`Session::query_statuses`](crate::Session::query_statuses).
    Statuses(Vec<wa_wire::legacy::StatusEntry>),
    /// The media connection: where to upload and with which auth token.
    MediaConn(MediaConn),
}

/// Why the session is no longer connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The socket closed or failed.
    SocketClosed,
    /// Nothing arrived for too long after a send.
    Stale,
    /// Another client took the session over (`Cmd disconnect replaced`): no reconnect.
    Replaced,
    /// Logged out (by us, or the link was removed): no reconnect.
    LoggedOut,
    /// The server rejected this client version (`Cmd update`): no reconnect.
    VersionRejected,
    /// Linking gave up.
    LinkFailed,
    /// Login failed for good.
    LoginFailed,
}

/// Something the session tells its user. Drain them with
/// [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Show this QR code (`ref,public key,client id`) until `expires_at`; a new one follows.
    Qr {
        /// The text to encode in the QR code.
        text: String,
        /// When the server stops accepting it.
        expires_at: Time,
    },
    /// Logged in: the keys are ready and requests can be sent.
    Connected {
        /// The account.
        account: Box<Account>,
    },
    /// New or rotated credentials: persist them (they replace any earlier ones).
    Credentials(Box<Credentials>),
    /// An incoming (or own, from another device or the history) message.
    Message {
        /// The message.
        info: Box<wa_proto::WebMessageInfo>,
        /// Where it came from.
        source: MessageSource,
    },
    /// Messages reached an ack level.
    Ack {
        /// The message ids.
        ids: Vec<String>,
        /// The level.
        level: AckLevel,
        /// The messages' sender, when said.
        from: Option<Jid>,
        /// The messages' chat (the recipient, or the group), when said.
        to: Option<Jid>,
        /// In a group: the member whose device acknowledged.
        participant: Option<Jid>,
    },
    /// The chat list (pushed after login).
    Chats(Vec<ChatEntry>),
    /// The contact list (pushed after login).
    Contacts(Vec<ContactEntry>),
    /// A contact's presence.
    Presence {
        /// Whose.
        jid: Jid,
        /// For a chat state in a group: the group.
        group: Option<Jid>,
        /// `available`, `unavailable`, `composing`, `paused`, `recording`, ...
        kind: String,
        /// When (Unix seconds), if said.
        t: Option<u64>,
    },
    /// The phone is unreachable (`Stream asleep`) or back.
    PhoneReachable(bool),
    /// A group changed (members, subject, admins).
    Group(Box<wa_wire::msg::GroupNotice>),
    /// A contact's identity (their phone, so their security code with this account) changed.
    IdentityChanged {
        /// The contact.
        jid: Jid,
    },
    /// The phone made a history export for this device: download and import it.
    History {
        /// The sending device (this account's phone).
        from: Jid,
        /// Where it is and how to open it.
        notice: Box<wa_proto::wars::HistoryNotice>,
    },
    /// The end-to-end state changed: persist these sealed parts (each replaces the part of the
    /// same key; deletions remove it), and hand them all to
    /// [`Session::restore_end_to_end`](crate::Session::restore_end_to_end) next time.
    E2eState(Box<wa_e2e::Changes>),
    /// A request finished.
    Reply {
        /// The request.
        id: RequestId,
        /// Its outcome.
        result: Result<Reply, RequestError>,
    },
    /// A server message the session knows but does not act on (`Props`, `Chat`, `Blocklist`,
    /// group notifications...), or one of a kind it does not know, kept whole.
    Other(serde_json::Value),
    /// A binary node the session did not expect, kept whole.
    OtherNode(Node<'static>),
    /// Something went wrong and the session carried on (a frame failed its MAC, a message did
    /// not decode, a reply had no request).
    Error(SessionError),
    /// Linking ended without a link.
    LinkFailed(LinkError),
    /// Logging in with stored credentials failed; `forget_credentials` says whether they are
    /// now worthless (401 unpaired, 403, 419).
    LoginFailed {
        /// Why.
        error: LoginError,
        /// Whether to forget the stored credentials.
        forget_credentials: bool,
    },
    /// No longer connected; `reconnect_in` is when the session will ask for a new socket
    /// (`None`: it won't).
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// The delay before the next attempt.
        reconnect_in: Option<Duration>,
    },
}
