//! A zero-copy codec for the binary nodes ("binary XML") of the legacy WhatsApp Web protocol.
//!
//! A node is `[tag, attributes, content]`: a tag string, attributes in wire order, and no
//! content, child nodes, raw bytes or a string ([PROTOCOL.md] §4). This crate reads and writes
//! them byte for byte:
//!
//! - [`decode`] / [`Decoder`]: bytes → [`Node`], borrowing strings and bytes from the input,
//!   with [`Limits`] on depth, list length and input size, and a [`DecodeError`] that names the
//!   byte offset and the problem. It never panics and never allocates more than the input
//!   justifies: every length read from the wire is checked against the bytes left first.
//! - [`encode`] / [`Encoder`]: [`Node`] → bytes under a writer [`Policy`] (`Client` or
//!   `Server`), the two writers whose output real traffic shows; [`encoded_len`] computes the
//!   exact length without writing.
//! - [`Dictionary`]: the token table is a parameter of both; [`Dictionary::legacy`] is the
//!   default.
//! - [`Jid`]: the meaning of JID strings (`c.us` and `s.whatsapp.net` are one domain).
//! - With the `serde` feature, nodes convert to and from the JSON form of the test vectors.
//!
//! ```
//! use wa_binary::{Node, Policy};
//!
//! let bytes = hex_literal(b"f806095b526bfc0131f801f803415b0e");
//! let node = wa_binary::decode(&bytes)?;
//! assert_eq!(node.tag(), "action");
//! assert_eq!(node.child("presence").and_then(|p| p.attr("type")), Some("available"));
//! assert_eq!(wa_binary::encode(&node, Policy::Client)?, bytes);
//! # fn hex_literal(h: &[u8]) -> Vec<u8> {
//! #     h.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What this crate does **not** do: encryption and framing (`wa-crypto`, `wa-frame`), protobuf
//! message bodies (`wa-proto`: byte content stays bytes here), or any IO.
//!
//! Dependencies: `nom` for the parser (kept out of the public API), `thiserror` for the error
//! types, `smol_str` (rust-analyzer's small string) for a [`Jid`]'s user, held inline up to 23
//! bytes, so that a server making, copying and dropping addresses for every message allocates
//! nothing for them; `serde` and `hex` only with the `serde` feature.
//!
//! [PROTOCOL.md]: https://github.com/wa-rs/wa-rs/blob/main/docs/PROTOCOL.md

mod decode;
mod encode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod jid;
mod node;
#[cfg(feature = "serde")]
mod serde;
pub mod tag;
mod token;

pub use crate::decode::{Arena, Decoder, HARD_MAX_DEPTH, Limits, decode};
pub use crate::encode::{Encoder, Policy, UnknownPolicy, encode, encoded_len};
pub use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
pub use crate::jid::{Jid, JidError, Server};
pub use crate::node::{Attr, Attrs, Content, List, Node};
pub use crate::token::{Dictionary, DictionaryError, Token};

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
