//! Errors: [`DecodeError`] for bytes that are not a valid node, [`EncodeError`] for a node the
//! wire cannot carry.

use std::fmt;

/// Bytes that are not one valid node: what was wrong and at which byte offset.
///
/// The error is small and `Copy`; its [`Display`](fmt::Display) is one line, such as
/// `unknown token 200 at byte 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError { offset, kind }
    }

    /// The offset of the byte where the problem was found.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// What was wrong with the bytes given to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before the thing named.
    #[error("truncated input: expected {0}")]
    Truncated(&'static str),
    /// The input is longer than [`Limits::max_input`](crate::Limits::max_input).
    #[error("input of {len} bytes is over the limit of {limit}")]
    InputTooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A node did not start with a list tag (`LIST_EMPTY`, `LIST_8`, `LIST_16`).
    #[error("invalid list tag 0x{0:02x}")]
    InvalidListTag(u8),
    /// A node's list size was 0, so it has no tag.
    #[error("invalid node: list size 0")]
    EmptyNode,
    /// A node's tag was absent or the empty string.
    #[error("invalid node: missing tag")]
    MissingTag,
    /// An attribute key was absent (`LIST_EMPTY` in key position).
    #[error("attribute key missing")]
    MissingAttrKey,
    /// An attribute value was absent (`LIST_EMPTY` in value position).
    #[error("attribute value missing")]
    MissingAttrValue,
    /// A `JID_AD` had no user part.
    #[error("JID user missing")]
    MissingJidUser,
    /// A `JID_PAIR` had no server part.
    #[error("JID server missing")]
    MissingJidServer,
    /// `STREAM_END` where a string or node was expected.
    #[error("unexpected stream end")]
    StreamEnd,
    /// A wire tag that cannot start a string here (a list tag, for instance).
    #[error("invalid string tag 0x{0:02x}")]
    InvalidStringTag(u8),
    /// A single-byte token that the dictionary does not have.
    #[error("unknown token {0}")]
    UnknownToken(u8),
    /// A double-byte token (`DICTIONARY_0..3`) that the dictionary does not have; the legacy
    /// dictionary has none at all.
    #[error("double-byte token {index} of page {page} is not in the dictionary")]
    UnknownDoubleByteToken {
        /// The page, `0..=3`.
        page: u8,
        /// The index within the page.
        index: u8,
    },
    /// A packed nibble that stands for no character (12, 13 or 14 in `NIBBLE_8`).
    #[error("invalid nibble 0x{0:x}")]
    InvalidNibble(u8),
    /// A string that is not valid UTF-8 (strings are never repaired silently).
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Nodes nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    #[error("too deep: nesting over the limit of {0}")]
    TooDeep(usize),
    /// A list longer than [`Limits::max_children`](crate::Limits::max_children).
    #[error("list of {count} children is over the limit of {limit}")]
    TooManyChildren {
        /// The declared count.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes left over after the node.
    #[error("trailing bytes: {0} after the node")]
    TrailingBytes(usize),
}

/// A node that the wire cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A node's tag is the empty string (it would decode as "missing").
    #[error("node tag is empty")]
    EmptyTag,
    /// A node has more attributes or children than a list size can count (65535).
    #[error("list of {0} entries is longer than 65535")]
    ListTooLong(usize),
    /// Nodes nested deeper than any decoder accepts.
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    /// A string or byte content is longer than `BINARY_32` can say (4 GiB).
    #[error("{0} bytes are more than BINARY_32 can carry")]
    TooLong(usize),
}
