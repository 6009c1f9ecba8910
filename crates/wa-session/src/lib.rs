//! The client session of the legacy WhatsApp Web protocol as a deterministic state machine:
//! linking by QR code, restoring a stored login, the challenge, keepalive, requests and their
//! replies, incoming messages, acks, presence, chat and contact lists, groups, media
//! connections, logout and reconnecting ([PROTOCOL.md] §1–§5).
//!
//! [`Session`] performs no IO, reads no clock and draws no OS randomness: the driver feeds it
//! WebSocket messages and the time, and carries out what it asks for (send this, close,
//! connect). Every path, timeouts and reconnects included, is therefore testable in
//! milliseconds with a virtual clock. The design follows `quinn-proto`; `wa-client` is the
//! tokio driver.
//!
//! ```
//! use wa_session::{Config, Event, Session, Time, Transmit};
//!
//! let now = Time::from_millis(1_589_356_438_000);
//! let mut session = Session::new(Config::default(), [7; 32], now);
//! session.link(now)?;
//! assert_eq!(session.poll_transmit(), Some(Transmit::Connect));
//! session.handle_connected(now);
//! // The driver sends `admin init` ...
//! let Some(Transmit::Send(wa_frame::OutMessage::Text(init))) = session.poll_transmit() else { panic!() };
//! assert!(init.contains(r#"["admin","init",[2,2142,12]"#));
//! // ... and feeds the server's answer back.
//! let tag = init.split(',').next().unwrap();
//! let reply = format!(r#"{tag},{{"status":200,"ref":"1@abc","ttl":20000}}"#);
//! session.handle_message(now, wa_frame::WsMessage::Text(&reply));
//! assert!(matches!(session.poll_event(), Some(Event::Qr { .. })));
//! # Ok::<(), wa_session::CommandError>(())
//! ```
//!
//! What it does **not** do: sockets, timers, storage of credentials or messages, media upload
//! and download (the driver and `wa-media` do those).
//!
//! Dependencies: the wa-rs codec, crypto, framing and protobuf crates; `rand_chacha` for a
//! seeded generator (the caller supplies the seed), `base64`, `serde`/`serde_json`
//! (credentials are a serializable value), `thiserror`, `zeroize`.
//!
//! [PROTOCOL.md]: https://github.com/wa-rs/wa-rs/blob/main/docs/PROTOCOL.md

mod commands;
mod config;
mod credentials;
mod error;
mod event;
mod incoming;
mod session;

pub use crate::commands::{PresenceState, UploadedMedia};
pub use crate::config::Config;
pub use crate::credentials::Credentials;
pub use crate::error::{CommandError, LinkError, LoginError, RequestError, SessionError};
pub use crate::event::{
    Account, AckLevel, ChatEntry, ContactEntry, DisconnectReason, Event, MediaConn, MessageSource,
    Reply, RequestId, Transmit,
};
pub use crate::session::Session;
pub use wa_e2e::{Changes, PickleKey, SecurityCode, StateKey};
pub use wa_proto::MediaKind;
pub use wa_wire::Jid;
pub use wa_wire::Time;
pub use wa_wire::msg::GroupOp;

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
