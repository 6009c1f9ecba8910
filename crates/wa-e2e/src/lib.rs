//! End-to-end encryption between wa-rs devices: the cryptographic state machine.
//!
//! wa-rs extends the legacy protocol with end-to-end encryption between devices. Every device
//! (the account's phone, device 0, and each linked web client, devices 1..=255) has its own
//! identity keys (Curve25519 + Ed25519) and one-time keys published to a key directory on the
//! server. A sender encrypts each message's content for every device of the recipient, and for
//! its own other devices, over pairwise **Olm** sessions. In a group, each sender device uses
//! one **Megolm** session per group; its key travels to the member devices over the pairwise
//! sessions and is replaced when membership changes. The server relays only ciphertext.
//!
//! This crate is that state machine, modelled on matrix-sdk-crypto's `OlmMachine`: a
//! [`Machine`] per device. The session and the phone drive it and wrap its outputs into
//! protocol nodes.
//!
//! ```
//! use wa_e2e::{Machine, OlmKind};
//!
//! let phone: wa_binary::Jid = "15551234567@c.us".parse().unwrap();
//! let web: wa_binary::Jid = "447700900123:3@c.us".parse().unwrap();
//! let mut alice = Machine::new(phone.clone());
//! let mut bob = Machine::new(web.clone());
//!
//! // Bob publishes one-time keys; Alice claims one from the directory.
//! let otk = bob.generate_one_time_keys(1)[0].key;
//! bob.mark_keys_as_published();
//!
//! let ct = alice.encrypt(&web, &bob.identity_keys(), Some(&otk), b"hi Bob").unwrap();
//! assert_eq!(ct.kind, OlmKind::PreKey);
//! let plain = bob.decrypt(&phone, &alice.identity_keys().curve25519, &ct).unwrap();
//! assert_eq!(&plain[..], b"hi Bob");
//!
//! // Bob answers on the session the pre-key message created.
//! let reply = bob.encrypt(&phone, &alice.identity_keys(), None, b"hi Alice").unwrap();
//! let plain = alice.decrypt(&web, &bob.identity_keys().curve25519, &reply).unwrap();
//! assert_eq!(&plain[..], b"hi Alice");
//! ```
//!
//! # What it does not do
//!
//! - **No IO**: no sockets, no files, no tokio. Persistence is [`Machine::take_changes`]
//!   (sealed records to write) and [`Machine::restore`]; the caller stores the bytes.
//! - **No wire format**: ciphertexts are vodozemac's message bytes plus the Olm message kind;
//!   group keys are vodozemac's session-key bytes. Putting them into nodes (and saying which
//!   session a group message belongs to, which recipients, which message id) is the caller's.
//! - **No trust decisions or UI**: [`Machine::observe_identity`] reports new and changed
//!   identities (trust on first use), [`security_code`] computes what users compare, and
//!   [`verify_signature`] checks device attestations; what to show or block is the caller's.
//! - **No clock and no randomness of its own**: vodozemac draws OS randomness for keys;
//!   nothing else here is random or reads a clock. Eviction order is a logical counter, and
//!   pickles are sealed deterministically (synthetic IV).
//! - **No ratchet of its own**: every ratchet, message format and key agreement is vodozemac's.
//!
//! # Why vodozemac
//!
//! vodozemac is Matrix's Rust implementation of Olm (a Double Ratchet over a triple
//! Diffie-Hellman with one-time keys) and Megolm (a hash ratchet with signed messages). It was
//! audited by Least Authority with no significant findings (its README), is what
//! matrix-sdk-crypto builds on, is fuzzed upstream, and is on the same RustCrypto generation as
//! the rest of wa-rs. Writing our own ratchet would be strictly worse. It is built without its
//! `libolm-compat` feature: we never read libolm pickles.
//!
//! # Device attestations
//!
//! The phone attests each linked device's identity keys by signing
//! [`device_attestation_message`]: `b"wa-rs device attestation v1\0" ‖ user JID (display
//! form) ‖ 0x00 ‖ curve25519 ‖ ed25519`, checked with [`verify_signature`] against the phone's
//! Ed25519 key. It binds the keys to the account, not to a device number (the server assigns
//! numbers; the phone vouches for keys).
//!
//! # Security codes
//!
//! [`security_code`] is libsignal's numeric fingerprint (version 0, 5200 iterations of
//! SHA-512, 60 digits) over each user's phone Ed25519 identity key and their number; see
//! [`SecurityCode`] and the `security_code` module for the exact construction.
//!
//! # Bounds
//!
//! Every map is bounded ([`limits`]): Olm sessions per device (5) and devices (10 000), outbound
//! groups (10 000) and devices recorded per group key (4096), inbound group sessions per sender
//! (16) and in total (20 000), a replay window of 1024 indices per inbound group session,
//! remembered identities (100 000), unpublished one-time keys (50). vodozemac bounds the rest
//! (40 skipped message keys and 5 receiving chains per Olm session, a gap of at most 2000).
//!
//! # Persistence
//!
//! Like matrix-sdk-crypto's `Changes`, [`Machine::take_changes`] returns only what changed
//! since the last call, one record per [`StateKey`]. Each record is sealed with the
//! [`PickleKey`]: HKDF-SHA256 derives AES-256-CBC, HMAC-SHA256 and IV keys, the IV is an HMAC
//! of the plaintext, and the state key is inside the MAC, so a record cannot be moved to
//! another key. A wrong pickle key or corrupted bytes are a [`PickleError`], never a panic.
//!
//! # Dependencies
//!
//! `vodozemac` (the ratchets, see above); `wa-binary` for [`Jid`];
//! `wa-crypto` for the reviewed AES-CBC + HMAC sealing and HKDF that the pickle envelope uses;
//! `sha2` (SHA-512 for security codes); `subtle` (constant-time comparison of identity keys);
//! `zeroize` (plaintexts and keys wiped on drop); `serde` + `serde_json` (records inside the
//! envelope: vodozemac's pickles are serde types); `base64` (key text forms); `thiserror`.

mod attest;
pub mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group;
pub mod limits;
mod machine;
mod olm;
mod replay;
mod security_code;
mod store;
mod types;

pub use attest::{ATTESTATION_DOMAIN, device_attestation_message, verify_signature};
pub use error::{DecryptError, EncryptError, GroupKeyError, PickleError, SignatureError};
pub use machine::Machine;
pub use security_code::{SecurityCode, security_code};
pub use store::{Changes, StateKey};
pub use types::{
    GroupCiphertext, GroupKey, IdentityChange, IdentityKeys, KeyParseError, OlmCiphertext, OlmKind,
    OneTimeKey, PickleKey, Signature,
};

use wa_binary::Jid;

/// The device number of `jid`: 0 (the phone) when it has none.
///
/// ```
/// let jid: wa_binary::Jid = "15551234567:3@c.us".parse().unwrap();
/// assert_eq!(wa_e2e::device_of(&jid), 3);
/// assert_eq!(wa_e2e::device_of(&wa_e2e::user_of(&jid)), 0);
/// ```
pub fn device_of(jid: &Jid) -> u8 {
    jid.device().unwrap_or(0)
}

/// The user of `jid`: the same JID without agent and device (`15551234567:3@c.us` →
/// `15551234567@c.us`). A JID that is not a user's (a group) is returned as it is.
pub fn user_of(jid: &Jid) -> Jid {
    jid.clone()
        .with_device(None, None)
        .unwrap_or_else(|_| jid.clone())
}

/// The form devices are keyed by: device 0 is written as no device (both mean the phone).
pub(crate) fn canonical_device(jid: &Jid) -> Jid {
    if jid.device() == Some(0) {
        jid.clone()
            .with_device(jid.agent(), None)
            .unwrap_or_else(|_| jid.clone())
    } else {
        jid.clone()
    }
}
