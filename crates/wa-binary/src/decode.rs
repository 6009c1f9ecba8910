//! The decoder: bytes → [`Node`], zero-copy, built on `nom` complete parsers.
//!
//! Every length and count read from the wire is checked against the remaining input before
//! anything is allocated for it, nesting is bounded by [`Limits::max_depth`], and every failure
//! is a [`DecodeError`] with the offset of the offending byte. `nom` stays inside this module.

use std::borrow::Cow;

use nom::number::complete::{be_u16, be_u24, be_u32};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::node::{Attr, Attrs, Content, List, Node};
use crate::tag;
use crate::token::Dictionary;

/// The deepest nesting any [`Limits`] allows, whatever its `max_depth` says. The node walk is
/// iterative; only a chain of JIDs inside JIDs recurses, and it counts towards the same depth,
/// so this bound keeps that recursion's stack use small.
pub const HARD_MAX_DEPTH: usize = 512;

/// The fewest bytes a node can take on the wire (`LIST_8 1 <token>`): no list reserves room
/// for more children than `remaining / MIN_NODE_LEN` (a count beyond what the bytes left can
/// hold fails later as truncated input).
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
    /// How many children one list may declare. Default 65535, all that `LIST_16` can say: room
    /// is reserved only for as many children as the bytes left can hold, so memory stays
    /// proportional to the input whatever this is.
    pub max_children: usize,
    /// The longest input accepted, in bytes. Default 16 MiB.
    pub max_input: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_children: 65_535,
            max_input: 16 * 1024 * 1024,
        }
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
        Decoder {
            dict: Dictionary::legacy(),
            limits: Limits::default(),
        }
    }
}

impl<'d> Decoder<'d> {
    /// The same decoder with another dictionary.
    pub fn with_dictionary<'e>(self, dict: &'e Dictionary) -> Decoder<'e> {
        Decoder {
            dict,
            limits: self.limits,
        }
    }

    /// The same decoder with other limits.
    pub fn with_limits(self, limits: Limits) -> Self {
        Decoder { limits, ..self }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Decodes exactly one node from `input`. The node borrows raw strings and bytes from
    /// `input` and owns the rest.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the offset and the problem when `input` is not exactly one valid
    /// node within the limits (trailing bytes are an error).
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Node<'a>, DecodeError> {
        self.run(input, Heap)
    }

    /// Decodes exactly one node from `input`, keeping everything the decoder builds (unpacked
    /// strings, attribute and child lists) in `arena`: the node borrows from `input` and
    /// `arena` only, and decoding makes almost no heap allocation of its own once the arena
    /// has grown to the size of the traffic (only a small stack of the lists still open).
    /// Reset the arena between messages to reuse its memory.
    ///
    /// ```
    /// let mut arena = wa_binary::Arena::new();
    /// let decoder = wa_binary::Decoder::new();
    /// for frame in [&[0xf8, 0x01, 0x09][..], &[0xf8, 0x02, 0x09, 0x00]] {
    ///     let node = decoder.decode_in(frame, &arena)?;
    ///     assert_eq!(node.tag(), "action");
    ///     drop(node);
    ///     arena.reset();
    /// }
    /// # Ok::<(), wa_binary::DecodeError>(())
    /// ```
    ///
    /// # Errors
    /// See [`Decoder::decode`].
    pub fn decode_in<'a>(
        &self,
        input: &'a [u8],
        arena: &'a Arena,
    ) -> Result<Node<'a>, DecodeError> {
        self.run(input, InArena(&arena.bump))
    }

    fn run<'a, S: Store<'a>>(&self, input: &'a [u8], store: S) -> Result<Node<'a>, DecodeError> {
        if input.len() > self.limits.max_input {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::InputTooLarge {
                    len: input.len(),
                    limit: self.limits.max_input,
                },
            ));
        }
        let mut reader = Reader {
            dict: self.dict,
            limits: self.limits,
            max_depth: self.max_depth(),
            store,
        };
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
            Err(nom::Err::Incomplete(_)) => Err(DecodeError::new(
                input.len(),
                DecodeErrorKind::Truncated("more input"),
            )),
        }
    }

    fn max_depth(&self) -> usize {
        self.limits.max_depth.min(HARD_MAX_DEPTH)
    }
}

/// Memory that [`Decoder::decode_in`] builds nodes in, reusable after [`Arena::reset`].
///
/// An arena trades the allocation of every unpacked string and every attribute and child
/// list for bump allocation in a few large chunks, which matters for frames with thousands of
/// nodes (contact and chat lists). It grows with what is decoded into it and shrinks only when
/// dropped.
#[derive(Debug, Default)]
pub struct Arena {
    bump: bumpalo::Bump,
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Arena::default()
    }

    /// Frees everything decoded into the arena (the borrow checker makes sure no node from it
    /// is still alive), keeping its largest chunk for reuse.
    pub fn reset(&mut self) {
        self.bump.reset();
    }

    /// The bytes the arena has taken from the system allocator.
    pub fn allocated_bytes(&self) -> usize {
        self.bump.allocated_bytes()
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
        ParseError {
            rest: input.len(),
            kind: DecodeErrorKind::Truncated("more input"),
        }
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
    result.map_err(|e| {
        e.map(|e| ParseError {
            kind: DecodeErrorKind::Truncated(what),
            ..e
        })
    })
}

// Single bytes and byte runs are read with slice methods: they are most of the reads, and
// nom's generic `be_u8` and `take` cost about twenty instructions more a call (measured with
// callgrind on the corpus). Multi-byte integers use nom's parsers.

#[inline]
fn byte<'a>(input: &'a [u8], what: &'static str) -> PResult<'a, u8> {
    match input.split_first() {
        Some((&b, rest)) => Ok((rest, b)),
        None => fail_at(0, DecodeErrorKind::Truncated(what)),
    }
}

#[inline]
fn bytes<'a>(input: &'a [u8], len: usize, what: &'static str) -> PResult<'a, &'a [u8]> {
    match input.split_at_checked(len) {
        Some((taken, rest)) => Ok((rest, taken)),
        None => fail_at(input.len(), DecodeErrorKind::Truncated(what)),
    }
}

/// Where the decoder keeps what it builds: on the heap, owned by the nodes, or in an arena. The
/// store hands out the buffers themselves, so lists and strings are built in place, never
/// copied.
trait Store<'a> {
    /// A growable list (attributes, children).
    type List<T: 'a>: ListBuf<T>;
    /// A growable string (unpacked digits, JIDs).
    type Text: TextBuf;

    fn list<T: 'a>(&self, capacity: usize) -> Self::List<T>;
    fn finish_list<T: 'a>(list: Self::List<T>) -> List<'a, T>;
    fn text(&self, capacity: usize) -> Self::Text;
    fn finish_text(text: Self::Text) -> Cow<'a, str>;
}

/// The two operations the decoder needs of a list.
trait ListBuf<T> {
    fn push(&mut self, item: T);
}

/// The operations the decoder needs of a string.
trait TextBuf {
    fn push(&mut self, c: char);
    fn push_str(&mut self, s: &str);
    fn pop(&mut self);
}

impl<T> ListBuf<T> for Vec<T> {
    #[inline]
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
}

impl<T> ListBuf<T> for bumpalo::collections::Vec<'_, T> {
    #[inline]
    fn push(&mut self, item: T) {
        bumpalo::collections::Vec::push(self, item);
    }
}

impl TextBuf for String {
    #[inline]
    fn push(&mut self, c: char) {
        String::push(self, c);
    }

    #[inline]
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    #[inline]
    fn pop(&mut self) {
        String::pop(self);
    }
}

impl TextBuf for bumpalo::collections::String<'_> {
    #[inline]
    fn push(&mut self, c: char) {
        bumpalo::collections::String::push(self, c);
    }

    #[inline]
    fn push_str(&mut self, s: &str) {
        bumpalo::collections::String::push_str(self, s);
    }

    #[inline]
    fn pop(&mut self) {
        bumpalo::collections::String::pop(self);
    }
}

/// Everything owned by the nodes.
struct Heap;

impl<'a> Store<'a> for Heap {
    type List<T: 'a> = Vec<T>;
    type Text = String;

    fn list<T: 'a>(&self, capacity: usize) -> Vec<T> {
        Vec::with_capacity(capacity)
    }

    fn finish_list<T: 'a>(list: Vec<T>) -> List<'a, T> {
        List::Owned(list)
    }

    fn text(&self, capacity: usize) -> String {
        String::with_capacity(capacity)
    }

    fn finish_text(text: String) -> Cow<'a, str> {
        Cow::Owned(text)
    }
}

/// Everything in an arena, borrowed by the nodes.
struct InArena<'a>(&'a bumpalo::Bump);

impl<'a> Store<'a> for InArena<'a> {
    type List<T: 'a> = bumpalo::collections::Vec<'a, T>;
    type Text = bumpalo::collections::String<'a>;

    fn list<T: 'a>(&self, capacity: usize) -> Self::List<T> {
        bumpalo::collections::Vec::with_capacity_in(capacity, self.0)
    }

    fn finish_list<T: 'a>(list: Self::List<T>) -> List<'a, T> {
        List::Borrowed(list.into_bump_slice())
    }

    fn text(&self, capacity: usize) -> Self::Text {
        bumpalo::collections::String::with_capacity_in(capacity, self.0)
    }

    fn finish_text(text: Self::Text) -> Cow<'a, str> {
        Cow::Borrowed(text.into_bump_str())
    }
}

/// A node whose child list is being read.
struct OpenList<'a, S: Store<'a>> {
    tag: Cow<'a, str>,
    attrs: List<'a, Attr<'a>>,
    children: S::List<Node<'a>>,
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

struct Reader<'d, S> {
    dict: &'d Dictionary,
    limits: Limits,
    max_depth: usize,
    store: S,
}

impl<'a, S: Store<'a>> Reader<'_, S> {
    /// One node and its whole subtree. The walk is iterative, with the open lists on a heap
    /// stack, so no depth limit can overflow the thread's stack.
    fn node(&mut self, mut input: &'a [u8]) -> PResult<'a, Node<'a>> {
        let mut open: Vec<OpenList<'a, S>> = Vec::new();
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
                    ContentHead::Done(content) => {
                        Node::from_parts(tag, Attrs::from_list(attrs), content)
                    }
                    ContentHead::List(count) => {
                        let capacity = count
                            .min(input.len() / MIN_NODE_LEN)
                            .min(MAX_PREALLOCATED_CHILDREN);
                        let children = self.store.list(capacity);
                        open.push(OpenList {
                            tag,
                            attrs,
                            children,
                            remaining: count,
                        });
                        continue;
                    }
                }
            } else {
                Node::from_parts(tag, Attrs::from_list(attrs), Content::None)
            };
            // Hand the finished node to its parent, closing every list it completes.
            loop {
                let Some(parent) = open.last_mut() else {
                    return Ok((input, node));
                };
                parent.children.push(node);
                parent.remaining -= 1;
                if parent.remaining > 0 {
                    break;
                }
                let Some(done) = open.pop() else {
                    return Ok((input, Node::new("unreachable")));
                };
                let children = Content::Children(S::finish_list(done.children));
                node = Node::from_parts(done.tag, Attrs::from_list(done.attrs), children);
            }
        }
    }

    /// A node's list size, tag and attributes; `true` when content follows.
    #[allow(clippy::type_complexity)]
    fn header(
        &mut self,
        input: &'a [u8],
        depth: usize,
    ) -> PResult<'a, (Cow<'a, str>, List<'a, Attr<'a>>, bool)> {
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
        if attr_count == 0 {
            return Ok((input, (tag, List::Borrowed(&[]), size % 2 == 0)));
        }
        // Every attribute takes at least two bytes: don't reserve for more than can follow.
        let mut attrs = self.store.list(attr_count.min(input.len() / 2));
        for _ in 0..attr_count {
            let key_at = input;
            let (rest, key) = self.string(input, "attribute key", depth)?;
            let Some(key) = key else {
                return fail(key_at, DecodeErrorKind::MissingAttrKey);
            };
            let value_at = rest;
            let (rest, value) = self.string(rest, "attribute value", depth)?;
            let Some(value) = value else {
                return fail(value_at, DecodeErrorKind::MissingAttrValue);
            };
            attrs.push((key, value));
            input = rest;
        }
        Ok((input, (tag, S::finish_list(attrs), size % 2 == 0)))
    }

    /// A node's content: finished, or the length of a child list still to read.
    fn content(&mut self, input: &'a [u8], depth: usize) -> PResult<'a, ContentHead<'a>> {
        let start = input;
        let (input, content_tag) = byte(input, "content")?;
        let (input, count) = match content_tag {
            tag::LIST_EMPTY => {
                return Ok((
                    input,
                    ContentHead::Done(Content::Children(List::Borrowed(&[]))),
                ));
            }
            tag::LIST_8 => byte(input, "list size").map(|(i, n)| (i, usize::from(n)))?,
            tag::LIST_16 => expect("list size", be_u16(input)).map(|(i, n)| (i, usize::from(n)))?,
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let (input, raw) = binary(input, content_tag)?;
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
                DecodeErrorKind::TooManyChildren {
                    count,
                    limit: self.limits.max_children,
                },
            );
        }
        if count == 0 {
            return Ok((
                input,
                ContentHead::Done(Content::Children(List::Borrowed(&[]))),
            ));
        }
        Ok((input, ContentHead::List(count)))
    }

    /// A string; `None` when the wire says "absent" (`LIST_EMPTY`).
    #[inline(always)]
    fn string(
        &mut self,
        input: &'a [u8],
        what: &'static str,
        depth: usize,
    ) -> PResult<'a, Option<Cow<'a, str>>> {
        // Tokens are most strings (tags, keys, many values): the fast path.
        if let Some((&t, rest)) = input.split_first()
            && let Some(token) = self.dict.single(t)
            && (3..=235).contains(&t)
        {
            return Ok((rest, Some(Cow::Borrowed(token))));
        }
        self.string_slow(input, what, depth)
    }

    /// Every string that is not a single-byte token. A JID inside a JID counts one level of
    /// `depth`, so a chain of `JID_PAIR`s cannot exhaust the stack.
    #[inline(never)]
    fn string_slow(
        &mut self,
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
                    None => fail(
                        start,
                        DecodeErrorKind::UnknownDoubleByteToken { page, index },
                    ),
                }
            }
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                let (rest, raw) = binary(input, t)?;
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
                let mut text = self
                    .store
                    .text(2 * usize::from(input.first().map_or(0, |n| n & 0x7F)));
                let (rest, ()) = unpack(input, t, &mut text)?;
                Ok((rest, Some(S::finish_text(text))))
            }
            _ => fail(start, DecodeErrorKind::InvalidStringTag(t)),
        }
    }

    /// `JID_PAIR`: user (absent → the server alone) then server, joined as `user@server`. A
    /// packed user, the common case, is unpacked straight into the JID's text.
    fn jid_pair(&mut self, input: &'a [u8], depth: usize) -> PResult<'a, Option<Cow<'a, str>>> {
        let (input, user) = match input.split_first() {
            Some((&t @ (tag::NIBBLE_8 | tag::HEX_8), rest)) => {
                // Room for the digits and the longest usual server, `@s.whatsapp.net`.
                let digits = 2 * usize::from(rest.first().map_or(0, |n| n & 0x7F));
                let mut jid = self.store.text(digits + 15);
                let (rest, ()) = unpack(rest, t, &mut jid)?;
                (rest, Some(JidUser::Text(jid)))
            }
            _ => match self.string(input, "JID user", depth)? {
                (rest, Some(user)) => (rest, Some(JidUser::Str(user))),
                (rest, None) => (rest, None),
            },
        };
        let server_at = input;
        let (input, server) = match self.string(input, "JID server", depth)? {
            (rest, Some(server)) => (rest, server),
            (_, None) => return fail(server_at, DecodeErrorKind::MissingJidServer),
        };
        let mut jid = match user {
            None => return Ok((input, Some(server))),
            Some(JidUser::Text(jid)) => jid,
            Some(JidUser::Str(user)) => {
                let mut jid = self.store.text(user.len() + 1 + server.len());
                jid.push_str(&user);
                jid
            }
        };
        jid.push('@');
        jid.push_str(&server);
        Ok((input, Some(S::finish_text(jid))))
    }

    /// `JID_AD`: agent, device, user → `user[.agent][:device]@c.us`.
    fn jid_ad(&mut self, input: &'a [u8], depth: usize) -> PResult<'a, Option<Cow<'a, str>>> {
        let (input, agent) = byte(input, "JID agent")?;
        let (input, device) = byte(input, "JID device")?;
        let user_at = input;
        let (input, user) = self.string(input, "JID user", depth)?;
        let Some(user) = user else {
            return fail(user_at, DecodeErrorKind::Truncated("JID user"));
        };
        let mut jid = self.store.text(user.len() + 13);
        jid.push_str(&user);
        if agent != 0 {
            jid.push('.');
            jid.push_str(&agent.to_string());
        }
        if device != 0 {
            jid.push(':');
            jid.push_str(&device.to_string());
        }
        jid.push_str("@c.us");
        Ok((input, Some(S::finish_text(jid))))
    }
}

/// The user part of a JID being read.
enum JidUser<'a, T> {
    /// Unpacked digits, in the buffer that becomes the JID.
    Text(T),
    /// Any other string.
    Str(Cow<'a, str>),
}

/// The bytes of a `BINARY_8/20/32` whose tag byte has been read.
fn binary(input: &[u8], binary_tag: u8) -> PResult<'_, &[u8]> {
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

/// Marks a byte with a nibble that stands for no character (both halves `0xFF`).
const BAD: [u8; 2] = [0xFF, 0xFF];

/// The two characters of every packed byte, high nibble first, or [`BAD`].
#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: a bad index fails the build"
)]
const fn pairs(chars: &[u8; 16]) -> [[u8; 2]; 256] {
    let mut table = [BAD; 256];
    let mut b = 0;
    while b < 256 {
        let (hi, lo) = (chars[b >> 4], chars[b & 0x0F]);
        if hi != 0xFF && lo != 0xFF {
            table[b] = [hi, lo];
        }
        b += 1;
    }
    table
}

/// `NIBBLE_8` digits: 0-9, `-`, `.`, three invalid values (12, 13, 14), then `\0`.
static NIBBLE_PAIRS: [[u8; 2]; 256] = pairs(b"0123456789-.\xff\xff\xff\0");
/// `HEX_8` digits, uppercase.
static HEX_PAIRS: [[u8; 2]; 256] = pairs(b"0123456789ABCDEF");

/// Appends a packed string whose tag byte has been read to `out`: a start byte (`odd` flag and
/// byte count), then two characters a byte, high nibble first; the `odd` flag drops the last.
fn unpack<'a>(input: &'a [u8], packed_tag: u8, out: &mut impl TextBuf) -> PResult<'a, ()> {
    let (input, start) = byte(input, "packed string length")?;
    let at = input;
    let (input, raw) = bytes(input, usize::from(start & 0x7F), "packed string bytes")?;
    let table = if packed_tag == tag::NIBBLE_8 {
        &NIBBLE_PAIRS
    } else {
        &HEX_PAIRS
    };
    for (i, &b) in raw.iter().enumerate() {
        let [hi, lo] = table.get(usize::from(b)).copied().unwrap_or(BAD);
        if hi == 0xFF {
            let nibble = if (12..=14).contains(&(b >> 4)) {
                b >> 4
            } else {
                b & 0x0F
            };
            return fail_at(at.len() - i, DecodeErrorKind::InvalidNibble(nibble));
        }
        // Every character in the tables is ASCII; the mask lets the compiler see it.
        out.push(char::from(hi & 0x7F));
        out.push(char::from(lo & 0x7F));
    }
    if start & 0x80 != 0 && !raw.is_empty() {
        out.pop();
    }
    Ok((input, ()))
}
