//! The decoder: bytes → [`Node`], zero-copy, built on `nom` complete parsers.
//!
//! Every length and count read from the wire is checked against the remaining input before
//! anything is allocated for it, nesting is bounded by [`Limits::max_depth`], and every failure
//! is a [`DecodeError`] with the offset of the offending byte. `nom` stays inside this module.

use std::borrow::Cow;

use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u24, be_u32};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::node::{Attrs, Content, Node};
use crate::tag;
use crate::token::Dictionary;

/// The deepest nesting any [`Limits`] allows, whatever its `max_depth` says: decoding recurses
/// once per level, and this keeps the stack use of the deepest tree to a few hundred KiB.
pub const HARD_MAX_DEPTH: usize = 512;

/// The fewest bytes a node can take on the wire (`LIST_8 1 <token>`): a declared child count is
/// checked against `remaining / MIN_NODE_LEN` before any allocation.
const MIN_NODE_LEN: usize = 3;

/// Children reserved up front at most; longer lists grow as their children actually decode.
const MAX_PREALLOCATED_CHILDREN: usize = 1024;

/// Resource limits for decoding untrusted input.
///
/// ```
/// let mut limits = wa_binary::Limits::default();
/// limits.max_depth = 8;
/// let decoder = wa_binary::Decoder::new().with_limits(limits);
/// assert!(decoder.decode(&[0xf8, 0x01, 0x09]).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// How deep nodes may nest; the root is depth 1. Default 64 (real traffic nests 4 deep);
    /// values above [`HARD_MAX_DEPTH`] count as that.
    pub max_depth: usize,
    /// How many children one list may declare. Default 65535, all that `LIST_16` can say: a
    /// declared count is also checked against the bytes left, so memory stays proportional to
    /// the input whatever this is.
    pub max_children: usize,
    /// The longest input accepted, in bytes. Default 16 MiB.
    pub max_input: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 64, max_children: 65_535, max_input: 16 * 1024 * 1024 }
    }
}

/// A decoder: a token dictionary and limits.
#[derive(Debug, Clone, Copy)]
pub struct Decoder<'d> {
    dict: &'d Dictionary,
    limits: Limits,
}

impl Default for Decoder<'static> {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder<'static> {
    /// A decoder with the legacy dictionary and default limits.
    pub fn new() -> Self {
        Decoder { dict: Dictionary::legacy(), limits: Limits::default() }
    }
}

impl<'d> Decoder<'d> {
    /// The same decoder with another dictionary.
    pub fn with_dictionary<'e>(self, dict: &'e Dictionary) -> Decoder<'e> {
        Decoder { dict, limits: self.limits }
    }

    /// The same decoder with other limits.
    pub fn with_limits(self, limits: Limits) -> Self {
        Decoder { limits, ..self }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decodes exactly one node from `input`.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the offset and the problem when `input` is not exactly one valid
    /// node within the limits (trailing bytes are an error).
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Node<'a>, DecodeError> {
        if input.len() > self.limits.max_input {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::InputTooLarge { len: input.len(), limit: self.limits.max_input },
            ));
        }
        let reader = Reader { dict: self.dict, limits: self.limits, max_depth: self.max_depth() };
        let offset_of = |rest: usize| input.len().saturating_sub(rest);
        match reader.node(input) {
            Ok(([], node)) => Ok(node),
            Ok((rest, _)) => Err(DecodeError::new(
                offset_of(rest.len()),
                DecodeErrorKind::TrailingBytes(rest.len()),
            )),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                Err(DecodeError::new(offset_of(e.rest), e.kind))
            }
            Err(nom::Err::Incomplete(_)) => {
                Err(DecodeError::new(input.len(), DecodeErrorKind::Truncated("more input")))
            }
        }
    }

    fn max_depth(&self) -> usize {
        self.limits.max_depth.min(HARD_MAX_DEPTH)
    }
}

/// Decodes one node with the legacy dictionary and default [`Limits`].
///
/// ```
/// let node = wa_binary::decode(&[0xf8, 0x05, 0x44, 0x5b, 0x17, 0x6b, 0xfc, 0x01, 0x31]).unwrap();
/// assert_eq!(node.tag(), "query");
/// assert_eq!(node.attr("type"), Some("contacts"));
/// assert_eq!(node.attr("epoch"), Some("1"));
/// ```
///
/// # Errors
/// See [`Decoder::decode`].
pub fn decode(input: &[u8]) -> Result<Node<'_>, DecodeError> {
    Decoder::new().decode(input)
}

/// The parser's error: what went wrong, and how much input was left where it did (the public
/// error turns that into an offset).
#[derive(Debug)]
struct ParseError {
    rest: usize,
    kind: DecodeErrorKind,
}

impl nom::error::ParseError<&[u8]> for ParseError {
    fn from_error_kind(input: &[u8], _kind: nom::error::ErrorKind) -> Self {
        ParseError { rest: input.len(), kind: DecodeErrorKind::Truncated("more input") }
    }

    fn append(_input: &[u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = nom::IResult<&'a [u8], T, ParseError>;

/// Fails at the start of `at` with `kind`.
fn fail<T>(at: &[u8], kind: DecodeErrorKind) -> PResult<'_, T> {
    fail_at(at.len(), kind)
}

/// Fails where `rest` bytes of input are left.
fn fail_at<'a, T>(rest: usize, kind: DecodeErrorKind) -> PResult<'a, T> {
    Err(nom::Err::Error(ParseError { rest, kind }))
}

/// Names what a truncated read was reading.
fn expect<'a, T>(what: &'static str, result: PResult<'a, T>) -> PResult<'a, T> {
    result.map_err(|e| e.map(|e| ParseError { kind: DecodeErrorKind::Truncated(what), ..e }))
}

fn byte<'a>(input: &'a [u8], what: &'static str) -> PResult<'a, u8> {
    expect(what, be_u8(input))
}

fn bytes<'a>(input: &'a [u8], len: usize, what: &'static str) -> PResult<'a, &'a [u8]> {
    expect(what, take(len)(input))
}

/// A node whose child list is being read.
struct OpenList<'a> {
    tag: Cow<'a, str>,
    attrs: Attrs<'a>,
    children: Vec<Node<'a>>,
    /// Children still to read; always at least 1 while the list is open.
    remaining: usize,
}

/// What follows a node's attributes.
enum ContentHead<'a> {
    /// Content read in full.
    Done(Content<'a>),
    /// A list of this many (at least one) children follows.
    List(usize),
}

struct Reader<'d> {
    dict: &'d Dictionary,
    limits: Limits,
    max_depth: usize,
}

impl Reader<'_> {
    /// One node and its whole subtree. The walk is iterative, with the open lists on a heap
    /// stack, so no depth limit can overflow the thread's stack.
    fn node<'a>(&self, mut input: &'a [u8]) -> PResult<'a, Node<'a>> {
        let mut open: Vec<OpenList<'a>> = Vec::new();
        loop {
            let depth = open.len() + 1;
            if depth > self.max_depth {
                return fail(input, DecodeErrorKind::TooDeep(self.max_depth));
            }
            let (rest, (tag, attrs, has_content)) = self.header(input, depth)?;
            input = rest;
            let mut node = if has_content {
                let (rest, content) = self.content(input, depth)?;
                input = rest;
                match content {
                    ContentHead::Done(content) => Node::from_parts(tag, attrs, content),
                    ContentHead::List(count) => {
                        let capacity = count
                            .min(input.len() / MIN_NODE_LEN)
                            .min(MAX_PREALLOCATED_CHILDREN);
                        let children = Vec::with_capacity(capacity);
                        open.push(OpenList { tag, attrs, children, remaining: count });
                        continue;
                    }
                }
            } else {
                Node::from_parts(tag, attrs, Content::None)
            };
            // Hand the finished node to its parent, closing every list it completes.
            loop {
                let Some(parent) = open.last_mut() else { return Ok((input, node)) };
                parent.children.push(node);
                parent.remaining -= 1;
                if parent.remaining > 0 {
                    break;
                }
                let Some(done) = open.pop() else { return Ok((input, Node::new("unreachable"))) };
                node = Node::from_parts(done.tag, done.attrs, Content::Children(done.children));
            }
        }
    }

    /// A node's list size, tag and attributes; `true` when content follows.
    #[allow(clippy::type_complexity)]
    fn header<'a>(
        &self,
        input: &'a [u8],
        depth: usize,
    ) -> PResult<'a, (Cow<'a, str>, Attrs<'a>, bool)> {
        let start = input;
        let (input, list_tag) = byte(input, "list tag")?;
        let (input, size) = match list_tag {
            tag::LIST_EMPTY => (input, 0),
            tag::LIST_8 => byte(input, "list size").map(|(i, n)| (i, usize::from(n)))?,
            tag::LIST_16 => expect("list size", be_u16(input)).map(|(i, n)| (i, usize::from(n)))?,
            other => return fail(start, DecodeErrorKind::InvalidListTag(other)),
        };
        if size == 0 {
            return fail(start, DecodeErrorKind::EmptyNode);
        }
        let tag_at = input;
        let (mut input, tag) = self.string(input, "node tag", depth)?;
        let tag = match tag {
            Some(tag) if !tag.is_empty() => tag,
            _ => return fail(tag_at, DecodeErrorKind::MissingTag),
        };
        let attr_count = (size - 1) / 2;
        // Every attribute takes at least two bytes: don't reserve for more than can follow.
        let mut attrs = Attrs::with_capacity(attr_count.min(input.len() / 2));
        for _ in 0..attr_count {
            let key_at = input;
            let (rest, key) = self.string(input, "attribute key", depth)?;
            let Some(key) = key else { return fail(key_at, DecodeErrorKind::MissingAttrKey) };
            let value_at = rest;
            let (rest, value) = self.string(rest, "attribute value", depth)?;
            let Some(value) = value else {
                return fail(value_at, DecodeErrorKind::MissingAttrValue);
            };
            attrs.push(key, value);
            input = rest;
        }
        Ok((input, (tag, attrs, size % 2 == 0)))
    }

    /// A node's content: finished, or the length of a child list still to read.
    fn content<'a>(&self, input: &'a [u8], depth: usize) -> PResult<'a, ContentHead<'a>> {
        let start = input;
        let (input, content_tag) = byte(input, "content")?;
        let (input, count) = match content_tag {
            tag::LIST_EMPTY => return Ok((input, ContentHead::Done(Content::Children(Vec::new())))),
            tag::LIST_8 => byte(input, "list size").map(|(i, n)| (i, usize::from(n)))?,
            tag::LIST_16 => expect("list size", be_u16(input)).map(|(i, n)| (i, usize::from(n)))?,
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let (input, raw) = self.binary(input, content_tag)?;
                return Ok((input, ContentHead::Done(Content::Bytes(Cow::Borrowed(raw)))));
            }
            _ => {
                let (input, s) = self.string(start, "content", depth)?;
                // An absent string is LIST_EMPTY, handled above.
                let content = s.map_or(Content::None, Content::String);
                return Ok((input, ContentHead::Done(content)));
            }
        };
        if count > self.limits.max_children {
            return fail(
                start,
                DecodeErrorKind::TooManyChildren { count, limit: self.limits.max_children },
            );
        }
        if count == 0 {
            return Ok((input, ContentHead::Done(Content::Children(Vec::new()))));
        }
        Ok((input, ContentHead::List(count)))
    }

    /// The bytes of a `BINARY_8/20/32` whose tag byte has been read.
    fn binary<'a>(&self, input: &'a [u8], binary_tag: u8) -> PResult<'a, &'a [u8]> {
        let (input, len) = match binary_tag {
            tag::BINARY_8 => byte(input, "binary length").map(|(i, n)| (i, usize::from(n)))?,
            tag::BINARY_20 => {
                let (i, n) = expect("binary length", be_u24(input))?;
                (i, (n & 0x0F_FFFF) as usize)
            }
            _ => {
                let (i, n) = expect("binary length", be_u32(input))?;
                (i, usize::try_from(n).unwrap_or(usize::MAX))
            }
        };
        bytes(input, len, "binary bytes")
    }

    /// A string; `None` when the wire says "absent" (`LIST_EMPTY`). A JID inside a JID counts
    /// one level of `depth`, so a chain of `JID_PAIR`s cannot exhaust the stack.
    fn string<'a>(
        &self,
        input: &'a [u8],
        what: &'static str,
        depth: usize,
    ) -> PResult<'a, Option<Cow<'a, str>>> {
        let start = input;
        let (input, t) = byte(input, what)?;
        match t {
            tag::LIST_EMPTY => Ok((input, None)),
            tag::STREAM_END => fail(start, DecodeErrorKind::StreamEnd),
            3..=235 => match self.dict.single(t) {
                Some(s) => Ok((input, Some(Cow::Borrowed(s)))),
                None => fail(start, DecodeErrorKind::UnknownToken(t)),
            },
            236..=239 => {
                let page = t - crate::token::DICTIONARY_0;
                let (input, index) = byte(input, "double-byte token index")?;
                match self.dict.double(page, index) {
                    Some(s) => Ok((input, Some(Cow::Borrowed(s)))),
                    None => fail(start, DecodeErrorKind::UnknownDoubleByteToken { page, index }),
                }
            }
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let (rest, raw) = self.binary(input, t)?;
                match std::str::from_utf8(raw) {
                    Ok(s) => Ok((rest, Some(Cow::Borrowed(s)))),
                    Err(e) => {
                        let bad = raw.len() - e.valid_up_to();
                        fail_at(rest.len() + bad, DecodeErrorKind::InvalidUtf8)
                    }
                }
            }
            tag::JID_PAIR | tag::JID_AD if depth >= self.max_depth => {
                fail(start, DecodeErrorKind::TooDeep(self.max_depth))
            }
            tag::JID_PAIR => self.jid_pair(input, depth + 1),
            tag::JID_AD => self.jid_ad(input, depth + 1),
            tag::NIBBLE_8 | tag::HEX_8 => {
                let (input, s) = packed(input, t)?;
                Ok((input, Some(Cow::Owned(s))))
            }
            _ => fail(start, DecodeErrorKind::InvalidStringTag(t)),
        }
    }

    /// `JID_PAIR`: user (absent → the server alone) then server.
    fn jid_pair<'a>(&self, input: &'a [u8], depth: usize) -> PResult<'a, Option<Cow<'a, str>>> {
        let (input, user) = self.string(input, "JID user", depth)?;
        let server_at = input;
        let (input, server) = self.string(input, "JID server", depth)?;
        let Some(server) = server else {
            return fail(server_at, DecodeErrorKind::MissingJidServer);
        };
        let Some(user) = user else { return Ok((input, Some(server))) };
        let mut jid = String::with_capacity(user.len() + 1 + server.len());
        jid.push_str(&user);
        jid.push('@');
        jid.push_str(&server);
        Ok((input, Some(Cow::Owned(jid))))
    }

    /// `JID_AD`: agent, device, user → `user[.agent][:device]@c.us`.
    fn jid_ad<'a>(&self, input: &'a [u8], depth: usize) -> PResult<'a, Option<Cow<'a, str>>> {
        let (input, agent) = byte(input, "JID agent")?;
        let (input, device) = byte(input, "JID device")?;
        let user_at = input;
        let (input, user) = self.string(input, "JID user", depth)?;
        let Some(user) = user else { return fail(user_at, DecodeErrorKind::Truncated("JID user")) };
        let mut jid = user.into_owned();
        if agent != 0 {
            jid.push('.');
            jid.push_str(&agent.to_string());
        }
        if device != 0 {
            jid.push(':');
            jid.push_str(&device.to_string());
        }
        jid.push_str("@c.us");
        Ok((input, Some(Cow::Owned(jid))))
    }
}

/// `NIBBLE_8` digits: 0-9, `-`, `.`, three invalid values, then `\0`.
const NIBBLE_CHARS: [u8; 16] = *b"0123456789-.\xff\xff\xff\0";
/// `HEX_8` digits, uppercase.
const HEX_CHARS: [u8; 16] = *b"0123456789ABCDEF";

/// A packed string whose tag byte has been read: a start byte (`odd` flag and byte count), then
/// two characters a byte, high nibble first.
fn packed(input: &[u8], packed_tag: u8) -> PResult<'_, String> {
    let (input, start) = byte(input, "packed string length")?;
    let at = input;
    let (input, raw) = bytes(input, usize::from(start & 0x7F), "packed string bytes")?;
    let table = if packed_tag == tag::NIBBLE_8 { &NIBBLE_CHARS } else { &HEX_CHARS };
    let mut out = String::with_capacity(raw.len() * 2);
    for (i, &b) in raw.iter().enumerate() {
        for nibble in [b >> 4, b & 0x0F] {
            let c = table.get(usize::from(nibble)).copied().unwrap_or(0xff);
            if c == 0xff {
                return fail_at(at.len() - i, DecodeErrorKind::InvalidNibble(nibble));
            }
            out.push(char::from(c));
        }
    }
    if start & 0x80 != 0 {
        out.pop();
    }
    Ok((input, out))
}
