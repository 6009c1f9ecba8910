//! The cryptography of the legacy WhatsApp Web protocol: the login key schedule and the
//! encryption of binary WebSocket frames.
//!
//! Bytes in, bytes out. This crate knows nothing about binary nodes, JSON, tags or sockets: the
//! caller hands it the `secret` of a `Conn` message and gets [`SessionKeys`], then hands it the
//! payload of a binary frame (after the tag and, for client→server frames, the metric and flags
//! bytes) and gets the plaintext node bytes back.
//!
//! # The login key schedule ([PROTOCOL.md] §2.3)
//!
//! The schedule is a chain of types, each step consuming the previous one, so a step cannot be
//! skipped or repeated by accident:
//!
//! ```text
//! ClientKeyPair ──agree(&LoginSecret)──▶ SharedSecret ──expand()──▶ ExpandedSecret
//!               ──session_keys(&LoginSecret)──▶ SessionKeys { enc_key, mac_key }
//! ```
//!
//! [`SessionKeys::from_login`] runs the whole chain. Every way a `secret` can be wrong (bad base64,
//! wrong length, a low-order server key, HMAC mismatch, bad padding) is its own
//! [`SecretError`] variant.
//!
//! ```
//! use wa_crypto::{ClientKeyPair, LoginSecret, SessionKeys};
//! # fn main() -> Result<(), wa_crypto::SecretError> {
//! # let client_private = [7u8; 32];
//! # let keys = SessionKeys::new(&[0xa0; 32], &[0xb0; 32]);
//! # let server = LoginSecret::server_side(&[9u8; 32],
//! #     ClientKeyPair::from_private_key(client_private).public_key(), &keys)?;
//! # let secret_from_conn = server.to_base64();
//! let key_pair = ClientKeyPair::from_private_key(client_private);
//! let secret = LoginSecret::from_base64(&secret_from_conn)?;
//! let keys = key_pair.agree(&secret)?.expand().session_keys(&secret)?;
//! # assert_eq!(keys.enc_key(), &[0xa0; 32]);
//! # Ok(())
//! # }
//! ```
//!
//! # Frames ([PROTOCOL.md] §3.1)
//!
//! [`SessionKeys::seal`] produces `HMAC-SHA256(mac_key, iv ‖ ct) ‖ iv ‖ ct` with
//! `ct = AES-256-CBC(enc_key, iv, PKCS#7(plain))`; [`SessionKeys::open`] checks the MAC in
//! constant time **before** decrypting anything and never returns unauthenticated bytes. The IV is
//! the caller's (fresh random bytes per frame), so tests are reproducible.
//!
//! # What this crate does not do
//!
//! - No randomness of its own: key generation takes a [`rand_core::CryptoRng`], sealing takes
//!   the IV.
//! - No framing: splitting `tag,` and the metric/flags bytes off a WebSocket message is
//!   `wa-frame`'s job, decoding the plaintext node is `wa-binary`'s.
//! - No media encryption (that is `wa-media`), although [`hkdf_sha256`] is the same HKDF.
//!
//! # Dependencies
//!
//! The RustCrypto crates (`aes`, `cbc`, `hmac`, `sha2`, `hkdf`), one generation of them (the
//! `hybrid-array` line), because they are audited, constant-time, and pick AES-NI and SHA-NI at
//! run time (see [`cpu_acceleration`]); `x25519-dalek` for X25519; `subtle` for constant-time
//! comparisons of keys; `zeroize` to wipe key material on drop; `base64` for the `secret` and the
//! challenge. The optional `serde` feature adds `serde` and `hex` (keys persist as hex strings).
//!
//! # Features
//!
//! - `serde`: `Serialize`/`Deserialize` for [`SessionKeys`].
//! - `fuzzing`: `#[doc(hidden)]` entry points that skip MAC checks, for `fuzz/` only.
//!
//! [PROTOCOL.md]: https://github.com/wa-rs/wa-rs/blob/main/docs/PROTOCOL.md

mod error;
mod kdf;
mod login;
mod session;

pub use error::{ChallengeError, HkdfError, OpenError, SecretError};
pub use kdf::{hkdf_sha256, hmac_sha256};
pub use login::{ClientKeyPair, ExpandedSecret, LoginSecret, SECRET_LEN, SharedSecret};
pub use session::{IV_LEN, KEY_LEN, MAC_LEN, MIN_SEALED_LEN, SessionKeys, sealed_len};

/// Which hardware acceleration the cryptography uses on this machine.
///
/// `aes` and `sha2` detect AES-NI and SHA-NI (or the ARMv8 equivalents) at run time and fall
/// back to constant-time software otherwise; this reports what they will pick, so benchmarks and
/// `wa` can say so instead of assuming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CpuAcceleration {
    /// AES instructions (x86 AES-NI, ARMv8 AES) are used for AES-256.
    pub aes: bool,
    /// SHA-256 instructions (x86 SHA-NI with SSE4.1, ARMv8 SHA2) are used for SHA-256/HMAC.
    pub sha256: bool,
}

/// Reports the hardware acceleration that AES-256 and SHA-256 use on this machine.
///
/// `aes` answers for itself (and says `false` when built with `--cfg aes_backend="soft"`); for
/// SHA-256 this checks the CPU features that `sha2`'s run-time dispatch checks, which it uses
/// unless built with `--cfg sha2_backend="soft"`.
pub fn cpu_acceleration() -> CpuAcceleration {
    CpuAcceleration {
        aes: aes::hardware_accelerated(),
        sha256: sha256_accelerated(),
    }
}

// The same conditions as `sha2`'s own run-time dispatch (`shani_cpuid`: "sha" and "sse4.1").
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn sha256_accelerated() -> bool {
    std::arch::is_x86_feature_detected!("sha") && std::arch::is_x86_feature_detected!("sse4.1")
}

#[cfg(target_arch = "aarch64")]
fn sha256_accelerated() -> bool {
    std::arch::is_aarch64_feature_detected!("sha2")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn sha256_accelerated() -> bool {
    false
}

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
