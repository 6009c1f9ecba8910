//! The phone of a wa-rs account: the primary device, as a client of the server's `/phone`
//! socket (this project's phone protocol, [`wa_wire::phone`]).
//!
//! [`PhoneSession`] is the phone without IO, in the manner of `wa-session`: it registers a
//! number with a verification code and binds it to its identity key, logs in by signing the
//! server's challenge, is an end-to-end endpoint of its own (`wa-e2e`'s
//! [`Endpoint`](wa_e2e::endpoint::Endpoint)), approves web clients' QR codes (signing an
//! end-to-end client's identity keys), and sends and receives messages.
//!
//! What it does **not** do: sockets, timers, storage (the driver does), history (the phone's
//! store keeps it and exports it for new devices).
//!
//! Dependencies: `wa-e2e`, `wa-wire`, `wa-proto`; `rand_chacha` (seeded ids and jitter);
//! `serde_json` for the protocol's JSON; `thiserror`; `zeroize`.

mod error;
mod mirror;
mod session;

pub use crate::error::{CommandError, PhoneError};
pub use crate::mirror::MirrorClient;
pub use crate::session::{
    Answer, CommandId, PhoneConfig, PhoneSession, PhoneSessionEvent, PhoneTransmit,
};
pub use wa_e2e::endpoint::Received;
pub use wa_wire::Time;

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
