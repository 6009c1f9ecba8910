//! Errors, by whose fault: the caller's ([`CommandError`]), the peer's or the network's
//! ([`SessionError`], [`LinkError`], [`LoginError`], [`RequestError`]).

/// A command the session cannot carry out now: the caller's mistake, not the server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command needs a logged-in session.
    #[error("not connected")]
    NotConnected,
    /// `link` or `restore` while a connection is already being made or in use.
    #[error("already started")]
    AlreadyStarted,
    /// Too many requests are waiting for replies.
    #[error("{0} requests are already waiting for replies")]
    TooManyPending(usize),
    /// A node could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] wa_binary::EncodeError),
    /// An argument is not acceptable (an empty JID, an empty participant list...).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The stored end-to-end state does not open (wrong pickle key, corrupt parts).
    #[error("end-to-end state: {0}")]
    E2eState(String),
    /// Too many messages wait to be encrypted and sent.
    #[error("{0}")]
    Busy(String),
}

/// Something went wrong with an incoming frame; the session dropped it and carried on.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A frame that is not a frame (no tag, too large, bad JSON...).
    #[error("bad frame: {0}")]
    Frame(std::sync::Arc<wa_frame::FrameError>),
    /// A binary frame failed its MAC (or was too short, or badly padded): dropped unread.
    #[error("binary frame rejected: {0}")]
    Open(#[from] wa_crypto::OpenError),
    /// A binary frame before the keys exist.
    #[error("binary frame before login")]
    BinaryBeforeKeys,
    /// An authenticated frame whose plaintext is not a binary node.
    #[error("bad binary node: {0}")]
    Node(#[from] wa_binary::DecodeError),
    /// A `message` node whose bytes are not a `WebMessageInfo`.
    #[error("bad message: {0}")]
    Message(String),
    /// A known server message kind with the wrong shape.
    #[error("bad {kind} message")]
    BadMessage {
        /// The kind.
        kind: String,
    },
    /// A reply whose tag matches no request (late after a timeout, or never asked for).
    #[error("reply to unknown tag {0:?}")]
    UnknownTag(String),
    /// A challenge could not be answered.
    #[error("cannot answer the challenge: {0}")]
    Challenge(String),
    /// An end-to-end message that does not decrypt (tampered, replayed, truncated, or from a
    /// device its account's phone did not vouch for): dropped, nothing of it shown.
    #[error("message {id} from {from} does not decrypt: {error}")]
    Undecryptable {
        /// The sending device.
        from: wa_wire::Jid,
        /// The message id.
        id: String,
        /// Why.
        error: String,
    },
}

/// Linking by QR code ended without a link.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// `admin init` was not accepted (an outdated version gets no `ref`).
    #[error("init rejected: {0}")]
    InitRejected(String),
    /// The server refused another ref (429).
    #[error("the server refused a new QR ref (429)")]
    RerefRefused,
    /// The QR code expired more often than `max_rerefs` allows.
    #[error("the QR code expired {0} times without a scan")]
    Expired(u32),
    /// The `Conn` after the scan had no usable `secret`.
    #[error("bad login secret: {0}")]
    Secret(#[from] wa_crypto::SecretError),
    /// The `Conn` after the scan lacked a field.
    #[error("the Conn after the scan lacks {0}")]
    IncompleteConn(&'static str),
    /// The server rejected this client version (`Cmd update`).
    #[error("the server rejected this client version")]
    VersionRejected,
}

/// Logging in with stored credentials failed (PROTOCOL.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// 401: the phone removed the link; link again with a QR code.
    #[error("unpaired from the phone (401)")]
    Unpaired,
    /// 403: access denied (terms of service).
    #[error("access denied (403), tos {tos:?}")]
    AccessDenied {
        /// The `tos` value, when sent.
        tos: Option<u64>,
    },
    /// 405: already logged in.
    #[error("already logged in (405)")]
    AlreadyLoggedIn,
    /// 409: logged in from another location.
    #[error("logged in from another location (409)")]
    LoggedInElsewhere,
    /// 419: the session expired.
    #[error("session expired (419)")]
    Expired,
    /// 500: server error (retried with backoff).
    #[error("server error (500)")]
    ServerError,
    /// Any other status.
    #[error("login status {0}")]
    Other(u16),
    /// The challenge answer was not accepted.
    #[error("challenge rejected (status {0})")]
    ChallengeRejected(u16),
    /// The server rejected this client version (`Cmd update`).
    #[error("the server rejected this client version")]
    VersionRejected,
}

/// A request that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No reply within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The connection went away before the reply came.
    #[error("disconnected before the reply")]
    Disconnected,
    /// The server answered with an error status (and, from this project's server, why).
    #[error("status {status}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Status {
        /// The status.
        status: u16,
        /// The server's reason, when it gave one.
        reason: Option<String>,
    },
    /// An end-to-end message could not be sent (its recipients' keys could not be fetched, the
    /// server refused it, ...).
    #[error("not sent: {0}")]
    NotSent(String),
    /// The reply did not have the expected shape.
    #[error("unexpected reply: {0}")]
    BadReply(String),
}
