//! WebSocket framing of the legacy WhatsApp Web protocol ([PROTOCOL.md] §1–3): one WebSocket
//! message in, one typed [`Frame`] out, and back.
//!
//! Every message starts with an ASCII [`Tag`] and a comma. Text messages carry JSON
//! (`tag,JSON` or `tag,,JSON`), nothing (`tag,`), or are one of the two keepalive forms (`?,,` from
//! the client, `!<ms>` from the server). Binary messages carry an encrypted node after the tag;
//! client→server ones have a metric and a flags byte in front of it. [`Frame::parse`] tells text
//! from binary by the WebSocket opcode ([`WsMessage`]), never by sniffing, so binary bytes never
//! reach the JSON parser.
//!
//! ```
//! use wa_frame::{Direction, Frame, Limits, WsMessage};
//!
//! let frame = Frame::parse(
//!     WsMessage::Text(r#"s7,["Stream","asleep"]"#),
//!     Direction::ServerToClient,
//!     &Limits::default(),
//! )?;
//! let Frame::Json { tag, payload } = &frame else { unreachable!() };
//! assert_eq!(tag.as_str(), "s7");
//! let message = wa_frame::ServerMessage::from_json(payload.clone())?;
//! assert!(matches!(message, wa_frame::ServerMessage::Stream(s) if s.is_asleep()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The JSON payloads have types too: [`Request`] for what the client sends (`admin init`, `login`,
//! `challenge`, queries, …) and [`ServerMessage`] for what the server sends (`Conn`, `Cmd`,
//! acks, responses with status codes, …). An unknown kind or field is kept as raw JSON, never
//! dropped.
//!
//! # What this crate does not do
//!
//! - No cryptography: a binary frame's payload is handed out still sealed; `wa-crypto` opens it.
//! - No binary nodes: `wa-binary` decodes the opened payload.
//! - No sockets, no clock, no randomness: the [`TagGenerator`] takes the time from the caller.
//!
//! Untrusted input is bounded by [`Limits`] (frame size, JSON nesting); malformed input is a
//! [`FrameError`] that says what was wrong, never a panic.
//!
//! # Dependencies
//!
//! `serde` and `serde_json` for the JSON payloads, `thiserror` for the error types. Nothing
//! else: the metric and flags types are small newtypes written here.
//!
//! [PROTOCOL.md]: https://github.com/wa-rs/wa-rs/blob/main/docs/PROTOCOL.md

mod frame;
mod json;
mod message;
mod metric;
mod request;
mod response;
mod tag;

pub use frame::{
    BinaryHeader, Direction, Frame, FrameError, KEEPALIVE, Limits, OutMessage, WsMessage,
    binary_header, logout_frame,
};
pub use message::{
    Ack, Blocklist, Chat, Cmd, Conn, MessageError, MsgAck, MsgIds, MsgInfoAcks, Phone, Presence,
    PresenceType, Props, ServerMessage, Stream,
};
pub use metric::{Flags, Metric};
pub use request::{Browser, ChallengeAnswer, Init, Login, LoginMode, Request};
pub use response::{InitResponse, LoginStatus, RerefResponse, Response, ResponseError};
pub use tag::{Tag, TagError, TagForm, TagGenerator};

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
