//! The writer: [`Node`] → bytes, under one of the two writer policies of PROTOCOL.md §4.3.
//!
//! One generic walk serves both [`Encoder::encode_into`] and [`Encoder::encoded_len`], so the
//! computed length cannot drift from what is written. Packed strings are built in a scratch
//! buffer and committed only once the whole string has packed, so a string that falls back
//! from `NIBBLE_8` to `HEX_8` (or to raw) never leaves half a packed string behind.

use crate::decode::HARD_MAX_DEPTH;
use crate::error::EncodeError;
use crate::node::{Content, Node};
use crate::tag;
use crate::token::{Dictionary, Token};

/// Which writer's choices to reproduce. Both decode to the same tree; they differ in which
/// strings they pack and which they write as JIDs (PROTOCOL.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The official web client's writer: `c.us` (outside content) becomes the token for
    /// `s.whatsapp.net`, any `user@rest` with a non-empty user is a `JID_PAIR`, nothing else is
    /// packed.
    Client,
    /// The server's writer: `user@server` is a `JID_PAIR` only when `server` is a token;
    /// strings of digits, `.` and `-` are `NIBBLE_8`, of uppercase hex `HEX_8` (odd tail padded
    /// with 0); everything else raw.
    Server,
}

impl std::str::FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client" => Ok(Policy::Client),
            "server" => Ok(Policy::Server),
            _ => Err(UnknownPolicy),
        }
    }
}

/// A policy name other than `client` or `server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown writer policy (expected `client` or `server`)")]
pub struct UnknownPolicy;

/// A writer: a policy and a token dictionary.
#[derive(Debug, Clone, Copy)]
pub struct Encoder<'d> {
    dict: &'d Dictionary,
    policy: Policy,
    /// The token `c.us` turns into under the client policy.
    user_server: Option<Token>,
}

impl Encoder<'static> {
    /// A writer with the legacy dictionary.
    pub fn new(policy: Policy) -> Self {
        Encoder::with_dictionary(policy, Dictionary::legacy())
    }
}

impl<'d> Encoder<'d> {
    /// A writer with another dictionary.
    pub fn with_dictionary(policy: Policy, dict: &'d Dictionary) -> Self {
        Encoder { dict, policy, user_server: dict.lookup("s.whatsapp.net") }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Encodes `node` into a new buffer of exactly the right size.
    ///
    /// # Errors
    /// An [`EncodeError`] when the node cannot be carried by the wire (an empty tag, a list of
    /// more than 65535 entries, more than 4 GiB in one string, nesting deeper than 512).
    pub fn encode(&self, node: &Node<'_>) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len(node)?);
        self.encode_into(node, &mut out)?;
        Ok(out)
    }

    /// Appends the encoding of `node` to `out`; on error `out` is left as it was.
    ///
    /// # Errors
    /// See [`Encoder::encode`].
    pub fn encode_into(&self, node: &Node<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let before = out.len();
        let result = self.node(node, &mut VecSink(out), 1);
        if result.is_err() {
            out.truncate(before);
        }
        result
    }

    /// The exact number of bytes [`Encoder::encode`] writes for `node`, computed without
    /// writing.
    ///
    /// # Errors
    /// See [`Encoder::encode`].
    pub fn encoded_len(&self, node: &Node<'_>) -> Result<usize, EncodeError> {
        let mut count = CountSink(0);
        self.node(node, &mut count, 1)?;
        Ok(count.0)
    }

    fn node<S: Sink>(&self, node: &Node<'_>, out: &mut S, depth: usize) -> Result<(), EncodeError> {
        if depth > HARD_MAX_DEPTH {
            return Err(EncodeError::TooDeep(HARD_MAX_DEPTH));
        }
        if node.tag().is_empty() {
            return Err(EncodeError::EmptyTag);
        }
        let attrs = node.attrs();
        let has_content = !matches!(node.content(), Content::None);
        let size = 1 + 2 * attrs.len() + usize::from(has_content);
        list_start(size, out)?;
        self.string(node.tag(), false, out)?;
        for (key, value) in attrs.iter() {
            self.string(key, false, out)?;
            self.string(value, false, out)?;
        }
        match node.content() {
            Content::None => {}
            Content::Children(children) => {
                list_start(children.len(), out)?;
                for child in children {
                    self.node(child, out, depth + 1)?;
                }
            }
            Content::Bytes(bytes) => binary(bytes, out)?,
            Content::String(s) => self.string(s, true, out)?,
        }
        Ok(())
    }

    /// A string, as the policy writes it; `in_content` marks content position.
    fn string<S: Sink>(&self, s: &str, in_content: bool, out: &mut S) -> Result<(), EncodeError> {
        // A chain `a@b@c` is written as nested JID_PAIRs, one link per turn of this loop.
        let mut s = s;
        let mut in_content = in_content;
        loop {
            if self.policy == Policy::Client
                && !in_content
                && s == "c.us"
                && let Some(token) = self.user_server
            {
                write_token(token, out);
                return Ok(());
            }
            if let Some(token) = self.dict.lookup(s) {
                write_token(token, out);
                return Ok(());
            }
            match self.jid_split(s) {
                Some((user, server)) => {
                    out.byte(tag::JID_PAIR);
                    self.jid_user(user, out)?;
                    s = server;
                    in_content = false;
                }
                None => {
                    if self.policy == Policy::Server
                        && let Some(packed) = Packed::new(s.as_bytes(), self.hex_pad())
                    {
                        packed.write(out);
                        return Ok(());
                    }
                    return binary(s.as_bytes(), out);
                }
            }
        }
    }

    /// Where the policy splits a string into `JID_PAIR` user and server.
    fn jid_split<'s>(&self, s: &'s str) -> Option<(&'s str, &'s str)> {
        let at = s.find('@').filter(|&at| at >= 1)?;
        let (user, server) = (s.get(..at)?, s.get(at + 1..)?);
        match self.policy {
            Policy::Client => Some((user, server)),
            Policy::Server => self.dict.lookup(server).map(|_| (user, server)),
        }
    }

    /// A JID user: packed when it can be, else a string by the same rules (never a JID: the
    /// user ends before the first `@`).
    fn jid_user<S: Sink>(&self, user: &str, out: &mut S) -> Result<(), EncodeError> {
        if user.is_empty() {
            out.byte(tag::LIST_EMPTY);
            return Ok(());
        }
        if let Some(packed) = Packed::new(user.as_bytes(), self.hex_pad()) {
            packed.write(out);
            return Ok(());
        }
        self.string(user, false, out)
    }

    /// The nibble that pads an odd-length `HEX_8`: `0xF` in the client's writer, `0x0` in the
    /// server's.
    fn hex_pad(&self) -> u8 {
        match self.policy {
            Policy::Client => 0x0F,
            Policy::Server => 0x00,
        }
    }
}

/// Encodes one node with the legacy dictionary.
///
/// ```
/// use wa_binary::{Node, Policy};
///
/// let node = Node::new("query").with_attr("type", "contacts").with_attr("epoch", "1");
/// assert_eq!(wa_binary::encode(&node, Policy::Client).unwrap(), b"\xf8\x05\x44\x5b\x17\x6b\xfc\x01\x31");
/// assert_eq!(wa_binary::encode(&node, Policy::Server).unwrap(), b"\xf8\x05\x44\x5b\x17\x6b\xff\x81\x1f");
/// ```
///
/// # Errors
/// See [`Encoder::encode`].
pub fn encode(node: &Node<'_>, policy: Policy) -> Result<Vec<u8>, EncodeError> {
    Encoder::new(policy).encode(node)
}

/// The exact encoded length of `node` under `policy`, with the legacy dictionary.
///
/// # Errors
/// See [`Encoder::encode`].
pub fn encoded_len(node: &Node<'_>, policy: Policy) -> Result<usize, EncodeError> {
    Encoder::new(policy).encoded_len(node)
}

/// Where the walk writes: a buffer, or a counter.
trait Sink {
    fn byte(&mut self, b: u8);
    fn slice(&mut self, bytes: &[u8]);
}

struct VecSink<'v>(&'v mut Vec<u8>);

impl Sink for VecSink<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    #[inline]
    fn slice(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

struct CountSink(usize);

impl Sink for CountSink {
    #[inline]
    fn byte(&mut self, _: u8) {
        self.0 += 1;
    }

    #[inline]
    fn slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

fn list_start<S: Sink>(size: usize, out: &mut S) -> Result<(), EncodeError> {
    match size {
        0 => out.byte(tag::LIST_EMPTY),
        1..=255 => out.slice(&[tag::LIST_8, size as u8]),
        256..=65535 => {
            let [hi, lo] = (size as u16).to_be_bytes();
            out.slice(&[tag::LIST_16, hi, lo]);
        }
        _ => return Err(EncodeError::ListTooLong(size)),
    }
    Ok(())
}

fn write_token<S: Sink>(token: Token, out: &mut S) {
    match token {
        Token::Single(byte) => out.byte(byte),
        Token::Double { page, index } => out.slice(&[tag::DICTIONARY_0 + page, index]),
    }
}

/// Raw bytes with the shortest `BINARY_8/20/32` header.
fn binary<S: Sink>(bytes: &[u8], out: &mut S) -> Result<(), EncodeError> {
    let len = bytes.len();
    if len < 1 << 8 {
        out.slice(&[tag::BINARY_8, len as u8]);
    } else if len < 1 << 20 {
        let [_, a, b, c] = (len as u32).to_be_bytes();
        out.slice(&[tag::BINARY_20, a, b, c]);
    } else {
        let len = u32::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
        let [a, b, c, d] = len.to_be_bytes();
        out.slice(&[tag::BINARY_32, a, b, c, d]);
    }
    out.slice(bytes);
    Ok(())
}

/// The most characters a packed string holds (127 bytes, two a byte).
const MAX_PACKED: usize = 254;

/// Not a packable character.
const NO: u8 = 0xFF;

#[allow(clippy::indexing_slicing, reason = "const evaluation: a bad index fails the build")]
const fn nibble_values() -> [u8; 256] {
    let mut table = [NO; 256];
    let mut c = 0;
    while c < 10 {
        table[b'0' as usize + c] = c as u8;
        c += 1;
    }
    table[b'-' as usize] = 10;
    table[b'.' as usize] = 11;
    table
}

#[allow(clippy::indexing_slicing, reason = "const evaluation: a bad index fails the build")]
const fn hex_values() -> [u8; 256] {
    let mut table = [NO; 256];
    let mut c = 0;
    while c < 16 {
        let ch = if c < 10 { b'0' + c as u8 } else { b'A' + (c as u8 - 10) };
        table[ch as usize] = c as u8;
        c += 1;
    }
    table
}

/// `NIBBLE_8` value of each byte, or [`NO`].
static NIBBLE_VALUES: [u8; 256] = nibble_values();
/// `HEX_8` value of each byte, or [`NO`].
static HEX_VALUES: [u8; 256] = hex_values();

/// The packed value of `b` in `table`, or [`NO`].
#[inline]
fn value(table: &[u8; 256], b: u8) -> u8 {
    table.get(usize::from(b)).copied().unwrap_or(NO)
}

/// A packed string built in scratch space, ready to commit.
struct Packed {
    tag: u8,
    start: u8,
    len: usize,
    scratch: [u8; MAX_PACKED / 2],
}

impl Packed {
    /// Packs `s` as `NIBBLE_8`, else as `HEX_8` (odd tail padded with `hex_pad`), else `None`.
    #[inline]
    fn new(s: &[u8], hex_pad: u8) -> Option<Packed> {
        if s.is_empty() || s.len() > MAX_PACKED {
            return None;
        }
        Packed::pack(s, tag::NIBBLE_8, &NIBBLE_VALUES, 0x0F)
            .or_else(|| Packed::pack(s, tag::HEX_8, &HEX_VALUES, hex_pad))
    }

    #[inline]
    fn pack(s: &[u8], packed_tag: u8, values: &[u8; 256], pad: u8) -> Option<Packed> {
        let mut packed =
            Packed { tag: packed_tag, start: 0, len: s.len().div_ceil(2), scratch: [0; MAX_PACKED / 2] };
        let mut pairs = s.chunks_exact(2);
        for (slot, pair) in packed.scratch.iter_mut().zip(&mut pairs) {
            let (hi, lo) = match *pair {
                [a, b] => (value(values, a), value(values, b)),
                _ => (NO, NO),
            };
            if hi == NO || lo == NO {
                return None;
            }
            *slot = hi << 4 | lo;
        }
        if let [last] = *pairs.remainder() {
            let hi = value(values, last);
            if hi == NO {
                return None;
            }
            *packed.scratch.get_mut(s.len() / 2)? = hi << 4 | pad;
        }
        packed.start = ((s.len() % 2) as u8) << 7 | packed.len as u8;
        Some(packed)
    }

    fn write<S: Sink>(&self, out: &mut S) {
        out.slice(&[self.tag, self.start]);
        out.slice(self.scratch.get(..self.len).unwrap_or_default());
    }
}
