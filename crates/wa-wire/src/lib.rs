//! The typed wire vocabulary of wa-rs: every request, reply and push that crosses a web client's
//! socket (binary nodes and JSON) and the phone's socket, defined once, with its conversion to
//! and from nodes or JSON. The session, the server core, the phone and the tests all speak
//! through these types; no other crate spells a node or JSON shape with string literals.
//!
//! - [`ids`]: users, devices, groups, chats, message and client ids, over `wa-binary`'s
//!   [`Jid`], which is the one normalisation of `c.us` and `s.whatsapp.net`.
//! - [`msg`]: messages and what happens to them, independent of the socket: the end-to-end
//!   [`msg::Relay`] a sender submits and the [`msg::Incoming`] copy a device gets, receipts,
//!   presence, groups, acks and notifications.
//! - [`keys`]: the key directory (identity keys, one-time keys, signed device lists, pre-key
//!   bundles).
//! - [`web`]: the binary requests of a web client ([`web::Request`]) and the nodes the server
//!   sends it ([`web::ServerNode`]).
//! - [`json`]: the JSON queries, replies and pushes of the web socket, on top of `wa-frame`.
//! - [`legacy`]: the readable legacy shapes (message pushes, chat and contact lists, history
//!   queries) that mirror-mode phones answer and legacy clients read.
//! - [`link`]: the QR code and the capabilities a client announces.
//! - [`phone`]: the phone's JSON protocol.
//!
//! ```
//! use wa_wire::msg::{ContentKind, Relay, RelayTarget};
//! use wa_wire::web::Request;
//!
//! let alice = wa_wire::ids::user_jid("15551234567")?;
//! let bob = wa_wire::ids::user_jid("15559876543")?;
//! let relay = Relay {
//!     to: bob.clone(),
//!     id: "3EB0AAAABBBBCCCCDDDD".to_owned(),
//!     kind: ContentKind::Text,
//!     group: None,
//!     targets: vec![RelayTarget { device: wa_wire::ids::device_jid(&bob, 0), olm: None }],
//! };
//! let request = Request::Relay(relay);
//! let node = request.to_node(7, &alice);
//! assert_eq!(node.attr("type"), Some("relay"));
//! assert_eq!(Request::from_node(&node)?, request);
//! # Ok::<(), wa_wire::WireError>(())
//! ```
//!
//! What this crate does **not** do: encryption (frames: `wa-crypto`; content: `wa-e2e`), IO,
//! protocol decisions. It only says what each shape is and checks it: every reader bounds what
//! it accepts (counts, lengths) and names the shape and field that was wrong.
//!
//! Dependencies: the wa-rs codec, framing and protobuf crates; `serde`/`serde_json` for the JSON
//! forms; `base64` for keys in attributes and JSON; `thiserror`.

mod canonical;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod json;
pub mod keys;
pub mod legacy;
pub mod link;
pub mod msg;
pub mod phone;
mod read;
mod time;
pub mod web;

pub use crate::error::WireError;
pub use crate::ids::{Chat, Jid};
pub use crate::time::Time;

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
