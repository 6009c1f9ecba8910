//! Errors: what was wrong ([`Problem`]) and where ([`ImportError::at`], [`ExportError::at`]).

use std::fmt;

use crate::model::Format;

/// Why an export could not be imported. Nothing was imported: the importers return a whole
/// [`History`](crate::History) or this.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportError {
    format: Format,
    at: String,
    problem: Problem,
}

impl ImportError {
    pub(crate) fn new(format: Format, at: impl Into<String>, problem: Problem) -> Self {
        Self {
            format,
            at: at.into(),
            problem,
        }
    }

    /// The format the importer expected.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Where in the export, in the format's own names: `messages[17].timestamp`,
    /// `ZWAMESSAGE[3].ZFROMJID`, or empty for the document as a whole.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// What was wrong.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} history export", self.format.platform())?;
        if !self.at.is_empty() {
            write!(f, ", {}", self.at)?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for ImportError {}

/// Why a [`History`](crate::History) could not be exported: it breaks a rule of the model
/// (both importers would reject it, so it is not written).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportError {
    at: String,
    problem: Problem,
}

impl ExportError {
    pub(crate) fn new(at: impl Into<String>, problem: Problem) -> Self {
        Self {
            at: at.into(),
            problem,
        }
    }

    /// Where in the [`History`](crate::History): `messages[3].id`, `chats[0].jid`, `owner`.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// What was wrong.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot export history, {}: {}", self.at, self.problem)
    }
}

impl std::error::Error for ExportError {}

/// What was wrong with an export (or with a history given to the exporter).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The bytes are an export of the other platform.
    #[error("this is an {} export, not {}", found.platform(), expected.platform())]
    WrongFormat {
        /// The format the importer reads.
        expected: Format,
        /// The format the bytes are in.
        found: Format,
    },
    /// The container itself is broken: not JSON, not a binary property list, truncated.
    #[error("malformed {container}: {detail}")]
    Malformed {
        /// `JSON` or `binary property list`.
        container: &'static str,
        /// What the parser said (with its line and column or byte offset).
        detail: String,
    },
    /// Bytes after the end of the document.
    #[error("trailing data after the end of the document")]
    TrailingData,
    /// A version this importer does not know.
    #[error("unsupported version {found} (this importer reads version {supported})")]
    UnsupportedVersion {
        /// The version in the export.
        found: String,
        /// The version this importer reads.
        supported: u32,
    },
    /// The export is larger than [`Limits::max_bytes`](crate::Limits::max_bytes).
    #[error("{len} bytes, more than the limit of {max}")]
    TooLarge {
        /// The size of the export.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The strings and data decoded from a binary property list add up to more than
    /// [`Limits::max_bytes`](crate::Limits::max_bytes) (one stored string can be referenced many
    /// times).
    #[error("the decoded strings and data add up to more than {max} bytes")]
    DecodedTooLarge {
        /// The limit.
        max: usize,
    },
    /// A list has more entries than its limit.
    #[error("more than {max} entries (limit `{limit}`)")]
    TooMany {
        /// The name of the limit in [`Limits`](crate::Limits).
        limit: &'static str,
        /// Its value.
        max: usize,
    },
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field the format does not have.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// A field given twice.
    #[error("duplicate field `{0}`")]
    DuplicateField(String),
    /// A value of the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the format has there.
        expected: &'static str,
        /// What the export has there.
        found: String,
    },
    /// A number outside the range of its field.
    #[error("{value} is out of range ({range})")]
    OutOfRange {
        /// The value, as written in the export.
        value: String,
        /// The values allowed.
        range: &'static str,
    },
    /// A string that does not parse as a JID.
    #[error("not a JID: {value:?} ({reason})")]
    NotAJid {
        /// The string.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A JID of the wrong kind for its field (a group where a user is needed, a device JID).
    #[error("{jid} is not {expected}")]
    WrongJidKind {
        /// The JID.
        jid: String,
        /// What the field needs.
        expected: &'static str,
    },
    /// A message id that is empty, longer than 128 bytes, or holds a byte that is not printable
    /// ASCII or is `,`.
    #[error("invalid message id {id:?}: {reason}")]
    BadMessageId {
        /// The id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timestamp before 2009-01-01 or from 2100-01-01 on.
    #[error("timestamp {unix} (Unix seconds) is outside 2009-01-01..2100-01-01")]
    TimestampOutOfRange {
        /// The timestamp, in Unix seconds.
        unix: i128,
    },
    /// An iOS date that is not a whole number of seconds.
    #[error("{0} is not a whole number of seconds")]
    NotWholeSeconds(f64),
    /// A status code the format does not have.
    #[error("unknown status code {0}")]
    UnknownStatus(i64),
    /// A flag that is neither 0 nor 1 (Android stores booleans as integers).
    #[error("{0} is not a flag (0 or 1)")]
    NotAFlag(i64),
    /// A text (message text, name) longer than [`Limits::max_text_len`](crate::Limits).
    #[error("text of {len} bytes is longer than the limit of {max}")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A JID longer than [`MAX_JID_LEN`](crate::MAX_JID_LEN).
    #[error("JID of {len} bytes is longer than the limit of {max}")]
    JidTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Serialized content longer than [`Limits::max_raw_len`](crate::Limits).
    #[error("content of {len} bytes is longer than the limit of {max}")]
    RawTooLong {
        /// Its length in bytes (decoded).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `raw_data` is not valid base64.
    #[error("not valid base64: {0}")]
    BadBase64(String),
    /// The serialized content is not a valid `Message` protobuf.
    #[error("not a valid Message protobuf: {0}")]
    BadProtobuf(String),
    /// Quotes nested deeper than [`MAX_QUOTE_DEPTH`](crate::MAX_QUOTE_DEPTH).
    #[error("quotes nested {depth} deep, more than the limit of {max}")]
    QuotesTooDeep {
        /// The depth found.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// Serialized content that is a plain text message: the format stores those as text only.
    #[error("content is a plain text message, which this format stores as text alone")]
    PlainTextAsRaw,
    /// A message with neither text nor serialized content.
    #[error("a message needs text or serialized content, it has neither")]
    NoContent,
    /// The text stored next to serialized content is not the content's text.
    #[error("text {found:?} does not match the text of the content {expected:?}")]
    TextMismatch {
        /// The text stored.
        found: Option<String>,
        /// The text of the content ([`wa_proto::Message::text`]).
        expected: Option<String>,
    },
    /// The stored message type does not match the content.
    #[error("message type {found} does not match the content ({expected}: {kind})")]
    TypeMismatch {
        /// The type stored.
        found: i64,
        /// The type of the content in this format's numbering.
        expected: i64,
        /// The kind of content.
        kind: &'static str,
    },
    /// A second chat with the same JID.
    #[error("chat {jid} is listed twice (first at index {first})")]
    DuplicateChat {
        /// The chat.
        jid: String,
        /// Index of its first entry.
        first: usize,
    },
    /// A second contact with the same JID.
    #[error("contact {jid} is listed twice (first at index {first})")]
    DuplicateContact {
        /// The contact.
        jid: String,
        /// Index of its first entry.
        first: usize,
    },
    /// A second message with the same id in the same chat.
    #[error("message id {id:?} appears twice in chat {chat} (first at index {first})")]
    DuplicateMessageId {
        /// The id.
        id: String,
        /// The chat.
        chat: String,
        /// Index of the first message with that id.
        first: usize,
    },
    /// A message in a chat that is not in the chat list.
    #[error("chat {0} is not in the chat list")]
    UnknownChat(String),
    /// A sender on a message that cannot have one (1:1 chats, own messages).
    #[error("{0}")]
    UnexpectedSender(&'static str),
    /// The iOS sender and recipient fields disagree with the direction of the message.
    #[error("{0}")]
    Direction(&'static str),
    /// Messages not in the order the format stores them in.
    #[error("out of order: {0}")]
    OutOfOrder(&'static str),
    /// The encoder failed (not expected: the values were checked before).
    #[error("encoder failed: {0}")]
    Encoder(String),
}
