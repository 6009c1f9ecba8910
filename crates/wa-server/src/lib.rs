//! A reference server for the legacy WhatsApp Web protocol: the server side of [PROTOCOL.md],
//! so that the client stack runs end to end with no outside service, and so that people can
//! run their own.
//!
//! What it does, as the seed documents describe the system:
//!
//! - **Linking.** A web client connects to `/ws`, sends `admin init`, and shows the QR code
//!   `ref,public key,client id`. The account's phone (a [`phone::Phone`], on `/phone`)
//!   approves it; the server makes fresh session keys, wraps them in the `secret` of §2.3
//!   for the client's key, and sends the `Conn` (tokens, `wid`, pushname, phone) on the
//!   browser's open socket. At most [`Config::max_linked_devices`] (5) clients per account:
//!   linking a sixth unlinks the oldest, which gets `Cmd disconnect` and whose tokens stop
//!   working.
//! - **Logging in again** with the tokens (`admin login`, takeover or reconnect): 401 for an
//!   unlinked client; the older connection of the same client gets `Cmd disconnect replaced`.
//!   Tokens rotate on every login.
//! - **Store and forward.** A message is committed to the store (fsync'd) before the sender
//!   gets ack 1; it is pushed to every device of every recipient (phone and linked clients)
//!   that is online and kept for the others; each device's delivery receipt takes it off that
//!   device's queue, the first one sends ack 2, a read sends ack 3, and once every device has
//!   it the message is deleted. Undelivered messages expire after [`Config::message_ttl`].
//! - **Groups** (create, add, remove, promote, demote, subject, leave) fan out to every
//!   member's devices by the same rules.
//! - **History**: after login a client gets its chat and contact lists (`preempt` frames) and
//!   can ask for older messages. In the real system the phone kept the history; here the
//!   server keeps, per account and chat, the last [`Config::history_per_chat`] messages on the
//!   phone's behalf (0 turns that off).
//! - **Presence** (available, unavailable, typing) to subscribers; **media** upload and
//!   download over HTTP (`/mms/<type>/<token>`, `/d/<id>`), the token checked against the
//!   body's SHA-256; `/status` and `/metrics` pages; `tracing` logs.
//! - **Limits**: frame size, a per-connection request rate (token bucket), no binary frame
//!   before keys, a connection acts only as its own account, random revocable tokens.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = wa_server::Config::new("/var/lib/wa-server");
//! config.listen = "127.0.0.1:8080".parse()?;
//! let server = wa_server::Server::start(config).await?;
//! println!("web clients: {}", server.ws_url());
//! let phone = wa_server::phone::Phone::connect(&server.phone_url(), "15551234567", "Alice").await?;
//! // phone.link(qr_text).await? once a web client shows its QR code ...
//! # drop(phone);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What it does not do
//!
//! - No TLS: it speaks plain WebSocket and HTTP; put it behind a TLS proxy to expose it.
//! - No end-to-end encryption of messages: the legacy protocol had none (frames are encrypted
//!   between each client and the server); media bodies are encrypted by the clients.
//! - The real phone protocol is out of scope: phones speak a small JSON protocol of this
//!   crate's own ([`phone`]). It verifies nobody's phone number: a server for people who
//!   trust each other, not a public service.
//! - One node: connections live in one process's memory. The [`store::Store`] trait is where
//!   a networked database would go; routing pushes between nodes would come on top.
//!
//! # Dependencies
//!
//! The wa-rs crates for the protocol (`wa-binary`, `wa-crypto`, `wa-frame`, `wa-proto`);
//! `tokio`, `tokio-tungstenite` and `futures-util` for the sockets (the same as `wa-client`);
//! `hyper` (with `hyper-util`, `http-body-util`, `bytes`) for HTTP, because the WebSocket
//! endpoints, the media service and the status pages share listeners and hyper's upgrade
//! hands the socket to tungstenite; `redb` for the store: embedded, pure Rust, ACID with
//! fsync'd commits, so a message acknowledged with ack 1 survives `kill -9` (see
//! [`store::RedbStore`]); `getrandom` to seed the ChaCha20 generator that makes keys, tokens,
//! refs and IVs; `sha2` and `subtle` for token hashes compared in constant time; `zeroize`
//! for keys and tokens in memory; `serde`/`serde_json` for records and the phone protocol;
//! `prost` for message bodies; `tracing` for logs.
//!
//! [PROTOCOL.md]: https://github.com/wa-rs/wa-rs/blob/main/docs/PROTOCOL.md

mod accounts;
mod config;
mod error;
mod groups;
mod http;
mod hub;
mod jid;
mod media;
mod model;
pub mod phone;
mod rate;
mod relay;
mod server;
mod shared;
pub mod store;
mod web;

pub use crate::config::{Config, Limits};
pub use crate::error::Error;
pub use crate::server::{DATABASE_FILE, RunningServer, Server};

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
