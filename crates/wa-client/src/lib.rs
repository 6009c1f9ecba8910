//! The tokio drivers of wa-rs: the web client ([`Client`], around [`wa_session::Session`])
//! and the phone ([`phone::Phone`], around [`wa_phone::PhoneSession`]), each with an encrypted
//! local store, media transfers, and the history a phone hands a newly linked client.
//!
//! ```no_run
//! # async fn run() -> Result<(), wa_client::Error> {
//! use wa_client::{Client, ClientConfig, Event};
//! use wa_session::Event as SessionEvent;
//!
//! let config = ClientConfig::new("ws://127.0.0.1:8080/ws").with_store("/tmp/me.redb");
//! let (client, mut events) = Client::start(config).await?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Session(SessionEvent::Qr { text, .. }) => println!("scan: {text}"),
//!         Event::Session(SessionEvent::Connected { .. }) => {
//!             let bob: wa_wire::Jid = "15559876543@s.whatsapp.net".parse().expect("a JID");
//!             client.send_text(&bob, "hello").await?;
//!             // What the phone's history export and the live messages left in the store.
//!             for chat in client.chats().await? {
//!                 println!("{} ({} unread)", chat.jid, chat.unread);
//!             }
//!         }
//!         Event::Session(SessionEvent::Message { info, .. }) => println!("{:?}", info.message),
//!         Event::HistoryImported(imported) => println!("{} old messages", imported.messages),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # The two drivers
//!
//! Each is one tokio task with a `select!` over its WebSocket (`tokio-tungstenite`), a
//! bounded command channel and one timer re-armed from the session's `poll_timeout`. Every
//! method of the handle ([`Client`], [`phone::Phone`]; cheap to clone) is a command to that
//! task, answered when the session matches the reply. After every input the driver drains the
//! session: events first (replies to their callers; what must be kept committed to the store
//! in **one** transaction on the blocking pool; the rest queued for the user), then what the
//! session wants sent. The store commit comes before the sends, so a delivery receipt never
//! leaves for a message whose end-to-end state is not on disk yet. All protocol decisions,
//! reconnects (capped, jittered backoff) included, are the sessions'; the clock is the Unix
//! time at start plus a monotonic clock's elapsed time.
//!
//! - The **web client** restores from its store (credentials and end-to-end state:
//!   [`wa_session::Session::restore_end_to_end`]) or links by QR code. It stores everything it
//!   receives, what it sends once the server acked it, ticks as they come, and the phone's
//!   history: on a history notice for this device it downloads the export, checks it
//!   (`wa-media`: MAC, `fileEncSha256`, padding, `fileSha256`; length; the account), imports it
//!   strictly (`wa-history`, the notice's format) and stores chats, contacts and messages in one
//!   transaction, then emits [`Event::HistoryImported`] (or [`Event::HistoryFailed`], with
//!   nothing stored). [`Client::chats`], [`Client::history`] and [`Client::contacts`] read the
//!   store. Media: [`Client::send_media_file`] refuses a file over the media host's
//!   `max_bytes` before reading it, encrypts it from disk into a temporary file and uploads it
//!   streaming with progress; [`Client::download_media_to`] decrypts as the body arrives into a
//!   file that appears only when every check passed. [`Client::logout_offline`] is the HTTP
//!   logout of PROTOCOL.md §2.6.
//! - The **phone** ([`phone`]) registers with a verification code or logs in from its store,
//!   keeps its history (every message it receives or sends, its chats, its contacts: everyone
//!   it exchanged messages with, with their push names), and when a web client finishes
//!   linking, exports the last [`phone::PhoneConfig::history_messages`] of each chat in its
//!   platform's format, encrypts and uploads it and sends the notice to the new device.
//!
//! # The store
//!
//! One `wa-vault` file per client or phone (created mode 0600 with its directory; the key is
//! the key file `<store>.key` unless configured). Every **value** is encrypted and
//! authenticated by the vault (XChaCha20-Poly1305, bound to its table and key); the keys are
//! JIDs, message ids, times and state names, never message content. Tables:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `credentials`, `pickle-key`, `arrivals` | credentials (JSON), the key that seals the end-to-end state (32 random bytes, made once), the arrival counter |
//! | `e2e` | the end-to-end state key | the sealed pickle (sealed twice: by `wa-e2e` under the pickle key, then by the vault) |
//! | `messages` | chat ‖ 0 ‖ time ‖ arrival ‖ id | `WebMessageInfo` bytes |
//! | `message_ids` | chat ‖ 0 ‖ id | where the message is (so each `(chat, id)` is stored once) |
//! | `chats` | chat JID | name, last activity, unread, archived (JSON) |
//! | `contacts` | user JID | name, push name (JSON) |
//!
//! An export keeps whole seconds, as the protocol's timestamps do: imported messages of one
//! second come back in the canonical order (time, then id); live messages of one second keep
//! their arrival order.
//!
//! # Slow consumers
//!
//! The event channels are bounded ([`ClientConfig::events_capacity`], default 1024). When one
//! is full the driver waits for room and stops reading its socket meanwhile (commands and
//! timers still run): nothing is dropped and nothing piles up in the client. The server keeps
//! what it did not deliver; if its queue for the connection fills it closes the connection, and
//! the driver reconnects and gets the rest. A call awaited while nobody reads the events may
//! then time out (its reply waits in the unread socket): read events in their own task. Events
//! are dropped only once the [`EventStream`] itself is dropped.
//!
//! # Errors
//!
//! [`Error`] keeps every cause as its `source` (the vault's, reqwest's, `wa-media`'s,
//! `wa-history`'s, the sessions'), and its `Display` names only what failed.
//!
//! # What it does not do
//!
//! No protocol logic (the sessions), no cryptography of its own (`wa-media`, `wa-vault`,
//! `wa-e2e` through the sessions), no TLS for the sockets (the reference server speaks plain
//! WebSocket on loopback; media HTTP can use TLS), no prompting for passphrases.
//!
//! # Dependencies
//!
//! - `wa-session`, `wa-phone`: the state machines driven; `wa-wire`, `wa-frame`, `wa-proto`:
//!   JIDs, frames, message bodies; `wa-media`: media and export encryption; `wa-history`: the
//!   export formats; `wa-vault`: the encrypted store.
//! - `tokio` (runtime, timers, blocking pool, channels) and `tokio-tungstenite` (WebSockets):
//!   the only crate of the library stack on tokio; `tokio-util` (a file as a byte stream for
//!   uploads); `futures-util` (`Stream`, `Sink`); `bytes`.
//! - `reqwest` (media HTTP, streaming bodies) on `rustls` with its `ring` provider (no aws-lc C
//!   build), installed as the process's default provider when a driver starts unless the
//!   program installed one.
//! - `sha2` (the upload token of a body), `getrandom` (seeds, media and pickle keys),
//!   `tempfile` (the encrypted copy of a file being uploaded), `zeroize` (key bytes),
//!   `serde`/`serde_json` (store records), `base64`, `thiserror`, `tracing`.

mod client;
mod error;
mod history;
mod media;
mod net;
pub mod phone;
mod store;

pub use crate::client::{Client, ClientConfig, Event, Events};
pub use crate::error::Error;
pub use crate::history::DEFAULT_MAX_HISTORY_BYTES;
pub use crate::media::{MAX_IN_MEMORY, Uploaded};
pub use crate::net::{DEFAULT_EVENTS_CAPACITY, EventStream};
pub use crate::store::{Imported, Store, StoredChat, StoredContact, default_key_file};
pub use wa_session::{MediaKind, PresenceState};
pub use wa_wire::Jid;
