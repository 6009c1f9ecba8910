//! Error types, one per operation, each variant one distinct cause.
//!
//! All of them describe bad input from the peer (or from a file), except [`HkdfError`], which is
//! misuse by the caller (asking for more output than HKDF can give).

use thiserror::Error;

/// Why a login `secret` (PROTOCOL.md §2.3) was rejected. Any of these aborts the login.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The `secret` field is not standard base64 (with padding).
    #[error("secret is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The decoded secret is not 144 bytes long.
    #[error("secret is {len} bytes long, expected 144")]
    Length {
        /// The decoded length.
        len: usize,
    },
    /// A public key in the exchange (the server's, in the `secret`) is a low-order point: the
    /// shared secret would not depend on the private key.
    #[error("public key in the key exchange is a low-order point")]
    LowOrderPoint,
    /// `HMAC-SHA256(expanded[32..64], secret[0..32] ‖ secret[64..144])` is not `secret[32..64]`:
    /// the secret was tampered with or was made for another key pair.
    #[error("secret HMAC mismatch")]
    HmacMismatch,
    /// The decrypted keys do not end in valid PKCS#7 padding.
    #[error("decrypted session keys have bad PKCS#7 padding")]
    BadPadding,
    /// The decrypted, unpadded keys are not 64 bytes long.
    #[error("decrypted session keys are {len} bytes long, expected 64")]
    KeysLength {
        /// The unpadded length.
        len: usize,
    },
}

/// Why a sealed frame payload (PROTOCOL.md §3.1) could not be opened.
///
/// The variants are checked in this order, and only [`OpenError::BadPadding`] can occur after
/// decryption (that is, for a payload with a valid MAC).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The payload is shorter than `32 (MAC) + 16 (IV) + 16 (one block)` bytes.
    #[error("sealed frame is {len} bytes long, at least 64 are needed (MAC, IV, one block)")]
    TooShort {
        /// The payload length.
        len: usize,
    },
    /// The ciphertext after the MAC and IV is not a whole number of AES blocks.
    #[error("sealed frame ciphertext is {len} bytes long, not a multiple of 16")]
    NotBlockAligned {
        /// The ciphertext length.
        len: usize,
    },
    /// The MAC does not match: the frame was tampered with or sealed with other keys. Nothing
    /// was decrypted.
    #[error("frame MAC mismatch")]
    MacMismatch,
    /// The MAC matched but the plaintext does not end in valid PKCS#7 padding.
    #[error("frame plaintext has bad PKCS#7 padding")]
    BadPadding,
}

/// Why a server challenge (PROTOCOL.md §2.5) could not be answered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The challenge is not standard base64 (with padding).
    #[error("challenge is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

/// The caller asked HKDF-SHA256 for more than `255 * 32 = 8160` bytes of output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("HKDF-SHA256 output of {len} bytes requested, at most 8160 are possible")]
pub struct HkdfError {
    /// The requested output length.
    pub len: usize,
}
