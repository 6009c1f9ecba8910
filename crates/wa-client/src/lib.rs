//! An async client for the legacy WhatsApp Web protocol: a thin tokio driver around
//! [`wa_session::Session`].
//!
//! One task runs a `select!` over the WebSocket (`tokio-tungstenite`), a command channel and one
//! timer re-armed from the session's `poll_timeout`; it carries out what the session asks
//! (send, close, connect) and hands events out. Every method of [`Client`] is a command to that
//! task, answered when the session matches the reply. Credentials and received messages go to
//! a [`Store`] (one `redb` file, mode 0600), so a restarted client restores without a new QR
//! code; reconnecting (with the session's backoff, never after `replaced`) is automatic.
//!
//! ```no_run
//! # async fn run() -> Result<(), wa_client::Error> {
//! use wa_client::{Client, ClientConfig};
//! use wa_session::Event;
//!
//! let mut config = ClientConfig::new("ws://127.0.0.1:8080/ws");
//! config.store = Some("session.redb".into());
//! let (client, mut events) = Client::start(config)?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Qr { text, .. } => println!("scan: {text}"),
//!         Event::Connected { .. } => {
//!             client.send_text("15559876543@c.us", "hello").await?;
//!         }
//!         Event::Message { info, .. } => println!("{:?}", info.message),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! What it does **not** do: protocol logic (all in `wa-session`), media cryptography (in
//! `wa-media`), TLS on the WebSocket (`wss://`: the reference server speaks plain WebSocket on
//! loopback). Media URLs may be `http` or `https`.
//!
//! Dependencies: `tokio` and `tokio-tungstenite` (the only crate of the library stack on
//! tokio), `reqwest` for media HTTP with `rustls` (the `ring` provider: no aws-lc build) and
//! `rustls-platform-verifier` (certificates checked against the operating system's trust store)
//! for `https`, `redb` (embedded, crash-safe) for the store, `getrandom` for the session's seed
//! and media keys, `futures-util`, `tracing`.

mod client;
mod error;
mod media;
mod store;

pub use crate::client::{Client, ClientConfig, Events};
pub use crate::error::Error;
pub use crate::store::Store;
pub use wa_session::{Event, MediaKind, PresenceState};

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
