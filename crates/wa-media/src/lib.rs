//! WhatsApp media encryption: encrypt and decrypt the files WhatsApp clients upload and download,
//! as a stream, with every byte authenticated before it is released.
//!
//! The scheme (see [PROTOCOL.md] §6) is the same today as in the legacy Web protocol:
//!
//! - a random 32-byte [`MediaKey`] is expanded with HKDF-SHA256 (32 zero bytes of salt, an info
//!   string that depends on the [`MediaType`]) into an IV, an AES-256 key, an HMAC key and an
//!   unused "ref" key ([`MediaKeys`]);
//! - the uploaded body is `enc ‖ mac`: `enc = AES-256-CBC(PKCS#7(plaintext))` and
//!   `mac = HMAC-SHA256(mac_key, iv ‖ enc)[..10]`;
//! - the message carries `fileSha256 = SHA-256(plaintext)`, `fileEncSha256 = SHA-256(enc ‖ mac)`,
//!   `fileLength` and, for streamable media (video, audio), a *sidecar*: one 10-byte HMAC per
//!   64 KiB window of `iv ‖ enc ‖ mac` that lets a player check any window on its own.
//!
//! # What this crate offers
//!
//! - **Encryption** in one pass with memory independent of the file size: [`encrypt_stream`]
//!   (`Read` to `Write`), [`encrypt_stream_parallel`] (the same with the hashing on a second
//!   thread: the three SHA-256 passes cost more than AES-CBC itself), [`Encryptor`] (`update` /
//!   `finish`, for callers that bring their own I/O, async or not) and [`encrypt`] (slices). All
//!   produce the hashes, the length and, for streamable types, the sidecar ([`EncryptInfo`]).
//! - **Decryption that never hands unauthenticated plaintext to the caller**:
//!   - [`decrypt`] (slices): MAC first, in constant time, then `fileEncSha256` when given, then
//!     decryption and unpadding, then `fileSha256` when given;
//!   - [`decrypt_stream`] and [`Decryptor`] (streaming): the MAC is at the end of the stream, so
//!     plaintext goes to a [`Sink`] that is committed only once every check passed and aborted
//!     otherwise. [`FileSink`] writes to a temporary file next to the target and renames it into
//!     place on commit; `Vec<u8>` is a sink too;
//!   - [`RangedDecryptor`] (random access with a sidecar): decrypts any range of the file,
//!     checking each 64 KiB window against the sidecar before releasing it.
//! - [`SidecarBuilder`] / [`compute_sidecar`] to compute the sidecar of an existing body.
//! - Distinct, typed [`Error`]s; no input makes this crate panic.
//!
//! ```
//! use wa_media::{Expected, MediaKey, MediaType, decrypt, encrypt};
//!
//! let key = MediaKey::from_bytes([7; 32]); // use 32 bytes from your OS RNG
//! let (body, info) = encrypt(&key, MediaType::Image, b"a tiny picture");
//! assert_eq!(body.len(), 16 + 10);
//!
//! let expected = Expected::new()
//!     .file_sha256(info.file_sha256)
//!     .file_enc_sha256(info.file_enc_sha256);
//! let plain = decrypt(&key, MediaType::Image, &expected, &body)?;
//! assert_eq!(plain, b"a tiny picture");
//! # Ok::<(), wa_media::Error>(())
//! ```
//!
//! # What it does not do
//!
//! No networking (uploading, downloading, media connections and URLs belong to the client), no
//! async runtime (the incremental APIs work with any), no random number generator (callers bring
//! the media key: 32 bytes from their OS RNG), no thumbnails or media parsing.
//!
//! # Dependencies
//!
//! The RustCrypto crates of one generation (`aes` 0.9, `cbc` 0.2, `hmac` 0.13, `sha2` 0.11,
//! `hkdf` 0.13): they detect AES-NI and SHA-NI at run time, and `cbc`'s block-level API lets the
//! stream be processed in arbitrary chunks with padding handled only at the end. `subtle` for
//! constant-time hash comparisons, `zeroize` to wipe keys, `thiserror` for the error type, and
//! `tempfile` for [`FileSink`] (a temporary file created safely in the target's directory and
//! renamed atomically, removed on drop).
//!
//! [PROTOCOL.md]: https://github.com/wa-rs/wa-rs/blob/main/docs/PROTOCOL.md

mod cbc_blocks;
mod decrypt;
mod encrypt;
mod error;
mod key;
mod ranged;
mod sidecar;
mod sink;

pub use decrypt::{Decrypted, Decryptor, Expected, decrypt, decrypt_stream};
pub use encrypt::{EncryptInfo, Encryptor, encrypt, encrypt_stream, encrypt_stream_parallel};
pub use error::{Error, UnknownMediaType};
pub use key::{MediaKey, MediaKeys, MediaType};
pub use ranged::RangedDecryptor;
pub use sidecar::{SidecarBuilder, compute_sidecar};
pub use sink::{FileSink, Sink};

/// Length of the truncated HMAC that ends every encrypted body, and of each sidecar entry.
pub const MAC_LEN: usize = 10;

/// AES block size: the ciphertext is a whole number of these.
pub const BLOCK_LEN: usize = 16;

/// Length of a media key, and of the AES-256, HMAC and ref keys it expands to.
pub const KEY_LEN: usize = 32;

/// The step between sidecar windows: window `n` starts at `n * SIDECAR_WINDOW` in `iv ‖ enc ‖ mac`.
pub const SIDECAR_WINDOW: u64 = 64 * 1024;

/// How far each sidecar window reaches past the next one's start (one AES block: the CBC IV of
/// the next window's ciphertext).
pub const SIDECAR_OVERLAP: u64 = 16;

/// The shortest valid encrypted body: one AES block (an empty file still has a full block of
/// padding) and the MAC.
pub const MIN_BODY_LEN: usize = BLOCK_LEN + MAC_LEN;

/// Size of the chunks the hashes and the cipher work on: big enough to amortise per-call costs,
/// small enough to stay in the L2 cache between the passes over it.
const CHUNK: usize = 64 * 1024;

/// The examples of the crate's README.md, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
