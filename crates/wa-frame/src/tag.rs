//! Message tags: the ASCII word before the first comma that pairs a request with its response.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

/// A message tag: 1 to 128 bytes of printable ASCII (`!` to `~`), without `,` (the tag ends at the
/// first comma) and not starting with `!` (a text message starting with `!` is the server's
/// keepalive answer).
///
/// Server tags look like `s1`, `preempt-1589472058-319` or a message id such as
/// `3EB0AAAABBBB`; the client's come from a [`TagGenerator`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag<'a>(Cow<'a, str>);

impl<'a> Tag<'a> {
    /// The longest tag accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks and wraps a tag.
    ///
    /// # Errors
    ///
    /// [`TagError`] naming the rule that `tag` breaks.
    pub fn new(tag: impl Into<Cow<'a, str>>) -> Result<Self, TagError> {
        let tag = tag.into();
        check(tag.as_bytes())?;
        Ok(Self(tag))
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A tag that owns its text.
    pub fn into_owned(self) -> Tag<'static> {
        Tag(Cow::Owned(self.0.into_owned()))
    }
}

/// Checks the tag rules on raw bytes (the start of a binary frame).
pub(crate) fn check(tag: &[u8]) -> Result<(), TagError> {
    if tag.is_empty() {
        return Err(TagError::Empty);
    }
    if tag.len() > Tag::MAX_LEN {
        return Err(TagError::TooLong { len: tag.len() });
    }
    if let Some(at) = tag.iter().position(|&b| b == b',') {
        return Err(TagError::Comma { at });
    }
    if let Some((at, &byte)) = tag.iter().enumerate().find(|(_, b)| !b.is_ascii_graphic()) {
        return Err(TagError::NotPrintable { at, byte });
    }
    if tag.first() == Some(&b'!') {
        return Err(TagError::Bang);
    }
    Ok(())
}

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:?})", self.0)
    }
}

impl AsRef<str> for Tag<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Tag<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Tag<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl TryFrom<String> for Tag<'static> {
    type Error = TagError;

    fn try_from(tag: String) -> Result<Self, TagError> {
        Tag::new(tag)
    }
}

impl<'a> TryFrom<&'a str> for Tag<'a> {
    type Error = TagError;

    fn try_from(tag: &'a str) -> Result<Self, TagError> {
        Tag::new(tag)
    }
}

/// Why a tag is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TagError {
    /// The tag is empty (the message starts with `,`).
    #[error("empty tag")]
    Empty,
    /// The tag is longer than [`Tag::MAX_LEN`] bytes.
    #[error("tag is {len} bytes long, at most 128 are allowed")]
    TooLong {
        /// The tag's length (or, for a binary frame without a comma, how far it was searched).
        len: usize,
    },
    /// The tag contains a comma, which would end it early.
    #[error("tag contains ',' at byte {at}")]
    Comma {
        /// Offset of the comma in the tag.
        at: usize,
    },
    /// The tag contains a byte that is not printable ASCII.
    #[error("tag byte {at} is {byte:#04x}, not printable ASCII")]
    NotPrintable {
        /// Offset of the byte in the tag.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// The tag starts with `!`, which marks the server's keepalive answer.
    #[error("tag starts with '!', reserved for keepalive answers")]
    Bang,
}

/// Which tag form a [`TagGenerator`] writes (PROTOCOL.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagForm {
    /// `<unix-seconds>.--<counter>`, e.g. `1589356438.--1`.
    Long,
    /// `<unix-seconds % 1000>.--<counter>`, e.g. `438.--1`.
    Short,
}

/// Makes the client's tags as the official web client did: a fixed time prefix taken when the
/// generator is made, then `.--` and a counter from 0.
///
/// The tags are digits, `.` and `-`, so never contain a comma. The caller supplies the time (this
/// crate reads no clock).
#[derive(Clone, Debug)]
pub struct TagGenerator {
    prefix: u64,
    counter: u64,
}

impl TagGenerator {
    /// A generator for a connection made at `unix_secs`.
    pub fn new(unix_secs: u64, form: TagForm) -> Self {
        let prefix = match form {
            TagForm::Long => unix_secs,
            TagForm::Short => unix_secs % 1000,
        };
        Self { prefix, counter: 0 }
    }

    /// The next tag.
    pub fn next_tag(&mut self) -> Tag<'static> {
        let tag = format!("{}.--{}", self.prefix, self.counter);
        self.counter = self.counter.wrapping_add(1);
        // At most 20 + 3 + 20 bytes of digits, '.' and '-': always a valid tag.
        Tag(Cow::Owned(tag))
    }
}

impl Iterator for TagGenerator {
    type Item = Tag<'static>;

    fn next(&mut self) -> Option<Tag<'static>> {
        Some(self.next_tag())
    }
}
