//! The protocol logic of the wa-rs reference server, without IO, in the manner of `quinn-proto`:
//! state machines that take what arrived and the time, and return what to do.
//!
//! - [`WebConnection`]: one web client's socket (PROTOCOL.md §1–§3): `admin init` and QR refs,
//!   linking, logging in with tokens, the challenge, keepalive, then the authenticated requests
//!   (end-to-end relays, receipts, presence, groups, the key directory, media auth) and the
//!   pushes it gets.
//! - [`PhoneConnection`]: one phone's socket (the phone protocol, [`wa_wire::phone`]):
//!   registration with a code, login by signature, and the same requests as JSON.
//! - [`Hub`]: who is online, as data.
//! - [`store`]: the storage trait the server's data model is written against, and an in-memory
//!   store.
//!
//! Every input is a `handle_*` call with `now`; every output is an [`Action`] drained with
//! `poll_action`: send this frame, close, run this store [`Job`] (its [`Outcome`] comes back
//! with `handle_job`), deliver this [`Push`] to a [`Target`], register this connection as a
//! device, deliver a registration code. Timers are `poll_timeout` / `handle_timeout`.
//!
//! # What the server keeps
//!
//! | table | what | how long |
//! | --- | --- | --- |
//! | accounts | number, name, the phone's public identity keys, linked device numbers | until the account is re-registered (then replaced) |
//! | endpoints | per account: the numbers of the devices senders encrypt for | as long as the account |
//! | devices, client ids | per device: mode, public identity keys, the phone's attestation, token hashes, frame keys (web clients), one-time key count | until unlinked (logout, the phone, a newer link, an identity change, tokens idle past `token_idle_ttl`) |
//! | one-time keys | public keys for starting sessions | until claimed, or the device goes |
//! | refs | a waiting client's id, browser and public identity | until scanned or expired (20 s) |
//! | codes | a hash of a registration code | until verified, or 10 minutes |
//! | messages, sent ids, expiry | metadata (sender, chat, id, time, kind; for a message to a user, whether they got or read it) | until expiry (30 days), for receipts |
//! | bodies | a group message's Megolm ciphertext | until every device has it, or expiry |
//! | inbox, msg devices | per device: its Olm ciphertext of a message | until that device acknowledges it, or expiry |
//! | receipts | per group message and member: delivered or read | with the message's metadata |
//! | groups, member groups | members and admins, subject | until the group is empty |
//! | peers | which accounts exchanged messages | for presence authorization and identity-change notices |
//! | media, media auth | uploaded (client-encrypted) bodies' metadata; upload token hashes | until `media_ttl` (30 days); auth 1 hour |
//! | counters | per account: bytes queued for its devices, messages queued per device, bytes sent today; and what was given back as they were delivered or expired (the quotas) | for the account's life (the day's count starts over each day) |
//! | timers | when refs, codes and media auth expire | as long as what they time |
//! | browser tokens | the SHA-256 of each web client's current browser token → its device (for the offline logout) | until the token rotates or the device is unlinked |
//!
//! No message text, no history, no chat list: content exists only as ciphertext the server
//! cannot open, and only until it is delivered.
//!
//! # What it does not do
//!
//! No sockets, no clock, no OS randomness: each connection draws from a ChaCha20 generator the
//! driver seeds; time comes in as [`Time`]. The same inputs give the same outputs. The tokio
//! driver is `wa-server`.
//!
//! Dependencies: the wa-rs codec, crypto, framing and wire crates; `ed25519-dalek` to verify the
//! phone's signatures (logins, device attestations); `sha2` and `subtle` for token hashes
//! compared in constant time; `rand_chacha` for the seeded generator; `zeroize`; `serde` and
//! `serde_json` for records and pushes; `tracing` for logs (no subscriber here: the driver's);
//! `foldhash` for the hub's and the connections' hash maps (a seeded hasher that costs a
//! fraction of SipHash's instructions on a short key).

mod action;
pub mod budget;
mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
mod job;
mod jobs;
mod maps;
pub mod model;
mod phone;
mod rate;
pub mod store;
mod web;

pub use crate::action::{Action, DisconnectKind, LinkApproval, Push, Target};
pub use crate::config::{Config, Limits};
pub use crate::hub::{ConnId, Hub};
pub use crate::job::{Job, JobId, Outcome, Refusal, execute};
pub use crate::jobs::relay::{MediaAuthRecord, media_uploader};
pub use crate::phone::{PhoneConnection, phone_address};
pub use crate::web::WebConnection;
pub use wa_wire::Time;

/// The offline logout of PROTOCOL.md §2.6 (`POST /logout?t=<browserToken>&m=<proof>`), for
/// the driver's HTTP route: in `txn`, finds the web client whose current browser token is
/// `browser_token` (by its SHA-256), checks `mac` = `base64(HMAC-SHA256(mac_key, enc_key))`
/// against that device's frame keys in constant time, and unlinks it. The pushes to deliver
/// once the transaction is durable (close the device's connection, tell the account's devices
/// and contacts that its device list changed), or a 401 refusal (unknown token, wrong proof).
///
/// # Errors
/// When the store fails.
pub fn logout_offline(
    txn: &mut dyn store::WriteTxn,
    browser_token: &str,
    mac: &str,
    now: Time,
) -> Result<Result<Vec<(Target, Push)>, Refusal>, store::StoreError> {
    jobs::accounts::logout_offline(txn, browser_token, mac, now)
}

/// The periodic sweep: expired messages (with their queue entries), refs, codes and media
/// auth. The driver runs it every `sweep_interval`; at most `batch` of each kind per run.
pub fn sweep(now: Time, batch: usize) -> Job {
    jobs::relay::sweep(now, batch)
}

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
