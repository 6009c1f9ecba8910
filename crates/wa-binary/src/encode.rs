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
        Encoder {
            dict,
            policy,
            user_server: dict.lookup("s.whatsapp.net"),
        }
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
                for child in children.iter() {
                    self.node(child, out, depth + 1)?;
                }
            }
            Content::Bytes(bytes) => binary(bytes, out)?,
            Content::String(s) => self.string(s, true, out)?,
        }
        Ok(())
    }

    /// A string, as the policy writes it; `in_content` marks content position. Tokens, most
    /// of the strings in real traffic, take the inlined fast path.
    #[inline]
    fn string<S: Sink>(&self, s: &str, in_content: bool, out: &mut S) -> Result<(), EncodeError> {
        if let Some(token) = self.dict.lookup(s) {
            write_token(token, out);
            return Ok(());
        }
        self.non_token(s, in_content, out)
    }

    /// A string that is not a token: packed, a JID, or raw.
    #[inline(never)]
    fn non_token<S: Sink>(
        &self,
        s: &str,
        in_content: bool,
        out: &mut S,
    ) -> Result<(), EncodeError> {
        // A chain `a@b@c` is written as nested JID_PAIRs, one link per turn of this loop.
        let mut s = s;
        let mut in_content = in_content;
        let mut first = true;
        loop {
            if self.policy == Policy::Client
                && !in_content
                && s == "c.us"
                && let Some(token) = self.user_server
            {
                write_token(token, out);
                return Ok(());
            }
            if !first && let Some(token) = self.dict.lookup(s) {
                write_token(token, out);
                return Ok(());
            }
            first = false;
            // One pass finds the first `@` and which packed forms the bytes before it fit.
            let Scan { class, at } = Scan::new(s.as_bytes());
            let split = at
                .filter(|&at| at >= 1)
                .and_then(|at| Some((s.get(..at)?, s.get(at + 1..)?)));
            let (user, server) = match (self.policy, split) {
                (Policy::Server, None) if at.is_none() => {
                    if !pack(s.as_bytes(), class, self.hex_pad(), out) {
                        binary(s.as_bytes(), out)?;
                    }
                    return Ok(());
                }
                (Policy::Client, Some(split)) => split,
                // The server writes `user@server` as a JID only when `server` is a token.
                (Policy::Server, Some((user, server))) => match self.dict.lookup(server) {
                    Some(token) => {
                        self.jid_user(user, class, out)?;
                        write_token(token, out);
                        return Ok(());
                    }
                    None => return binary(s.as_bytes(), out),
                },
                _ => return binary(s.as_bytes(), out),
            };
            self.jid_user(user, class, out)?;
            s = server;
            in_content = false;
        }
    }

    /// `JID_PAIR` and its user, whose bytes fit `class`: packed when it can be, else a string by
    /// the same rules (never a JID: the user ends before the first `@`, and is never empty).
    #[inline]
    fn jid_user<S: Sink>(&self, user: &str, class: u8, out: &mut S) -> Result<(), EncodeError> {
        out.byte(tag::JID_PAIR);
        if pack(user.as_bytes(), class, self.hex_pad(), out) {
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
        1..=255 => {
            out.byte(tag::LIST_8);
            out.byte(size as u8);
        }
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
        out.byte(tag::BINARY_8);
        out.byte(len as u8);
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

/// Character classes: which packed forms can hold a byte, and the JID separator.
const NIBBLE_OK: u8 = 1;
const HEX_OK: u8 = 2;
const AT: u8 = 4;

#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: a bad index fails the build"
)]
const fn classes() -> [u8; 256] {
    let mut table = [0; 256];
    let mut c = b'0';
    while c <= b'9' {
        table[c as usize] = NIBBLE_OK | HEX_OK;
        c += 1;
    }
    table[b'-' as usize] = NIBBLE_OK;
    table[b'.' as usize] = NIBBLE_OK;
    let mut c = b'A';
    while c <= b'F' {
        table[c as usize] = HEX_OK;
        c += 1;
    }
    table[b'@' as usize] = AT;
    table
}

/// The class bits of every byte value.
static CLASSES: [u8; 256] = classes();

/// What one pass over a string finds: the packed forms its bytes up to the first `@` fit, and
/// where that `@` is.
struct Scan {
    class: u8,
    at: Option<usize>,
}

impl Scan {
    #[inline]
    fn new(s: &[u8]) -> Scan {
        let mut class = NIBBLE_OK | HEX_OK;
        for (i, &b) in s.iter().enumerate() {
            let c = class_of(b);
            if c & AT != 0 {
                return Scan { class, at: Some(i) };
            }
            class &= c;
        }
        Scan { class, at: None }
    }
}

/// Writes `s`, whose bytes all fit `class`, packed — as `NIBBLE_8` when it can, else as `HEX_8`
/// with an odd tail padded by `hex_pad` — and returns `true`; returns `false`, having written
/// nothing, when `s` is empty, longer than 254 characters or fits neither form.
///
/// The whole string is classified before anything is written, and the packed bytes are built
/// in a scratch buffer and committed in one piece, so a string that cannot be packed never
/// leaves part of a packed string behind.
#[inline]
fn pack<S: Sink>(s: &[u8], class: u8, hex_pad: u8, out: &mut S) -> bool {
    if s.is_empty() || s.len() > MAX_PACKED {
        return false;
    }
    let (packed_tag, pad) = if class & NIBBLE_OK != 0 {
        (tag::NIBBLE_8, 0x0F)
    } else if class & HEX_OK != 0 {
        (tag::HEX_8, hex_pad)
    } else {
        return false;
    };
    let len = s.len().div_ceil(2);
    let mut scratch = [0u8; 2 + MAX_PACKED / 2];
    let odd = (s.len() % 2) as u8;
    let (header, body) = scratch.split_at_mut(2);
    header.copy_from_slice(&[packed_tag, odd << 7 | len as u8]);
    let mut pairs = s.chunks_exact(2);
    for (slot, pair) in body.iter_mut().zip(&mut pairs) {
        if let [hi, lo] = *pair {
            *slot = nibble(hi) << 4 | nibble(lo);
        }
    }
    if let ([last], Some(slot)) = (pairs.remainder(), body.get_mut(s.len() / 2)) {
        *slot = nibble(*last) << 4 | pad;
    }
    out.slice(scratch.get(..2 + len).unwrap_or_default());
    true
}

#[inline]
fn class_of(b: u8) -> u8 {
    CLASSES.get(usize::from(b)).copied().unwrap_or(0)
}

/// The packed value of a character already classified as packable: `0-9` → 0..=9, `-` → 10,
/// `.` → 11, `A-F` → 10..=15.
#[inline]
fn nibble(c: u8) -> u8 {
    NIBBLES.get(usize::from(c)).copied().unwrap_or(0)
}

#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: a bad index fails the build"
)]
const fn nibbles() -> [u8; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789ABCDEF"[i] as usize] = i as u8;
        i += 1;
    }
    table[b'-' as usize] = 10;
    table[b'.' as usize] = 11;
    table
}

/// The packed value of every packable character.
static NIBBLES: [u8; 256] = nibbles();
