//! Errors: one variant per way an encrypted file can be wrong, plus I/O and caller mistakes.

use std::io;

/// Why media could not be decrypted (or a sidecar window could not be released).
///
/// The variants say what was wrong with the *data*, except [`Error::WindowOutOfRange`] (a
/// mistake of the caller) and [`Error::Io`] (the reader or the sink failed). Whatever the error,
/// no plaintext has been released: a [`Sink`](crate::Sink) was aborted, an output buffer left as
/// it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The encrypted body is shorter than one AES block and the MAC (26 bytes).
    #[error(
        "encrypted media is too short: {len} bytes, the minimum is 26 (one AES block and the MAC)"
    )]
    TooShort {
        /// Length of the body (`enc ‖ mac`) that was given.
        len: u64,
    },
    /// The body is not whole 16-byte AES blocks followed by the 10-byte MAC.
    #[error(
        "encrypted media length {len} is not whole 16-byte AES blocks followed by a 10-byte MAC"
    )]
    NotBlockAligned {
        /// Length of the body (`enc ‖ mac`) that was given.
        len: u64,
    },
    /// The MAC at the end of the body does not match: the file is corrupt or truncated, or the
    /// key or the media type is not the one it was encrypted with.
    #[error("media MAC mismatch: corrupt or truncated file, or wrong key or media type")]
    MacMismatch,
    /// `SHA-256(enc ‖ mac)` is not the expected `fileEncSha256`.
    #[error("fileEncSha256 mismatch: the encrypted file is not the one expected")]
    EncSha256Mismatch,
    /// The decrypted data does not end in valid PKCS#7 padding (the MAC was right, so the sender
    /// encrypted something malformed).
    #[error("bad PKCS#7 padding after decryption")]
    BadPadding,
    /// `SHA-256(plaintext)` is not the expected `fileSha256`.
    #[error("fileSha256 mismatch: the decrypted file is not the one expected")]
    PlainSha256Mismatch,
    /// A window's HMAC does not match its sidecar entry.
    #[error("sidecar mismatch in window {window}")]
    SidecarMismatch {
        /// Index of the window that failed.
        window: u64,
    },
    /// The sidecar does not have one 10-byte entry per 64 KiB window of a body this long.
    #[error("sidecar is {actual} bytes, a body of this length needs {expected}")]
    SidecarLength {
        /// `10 ×` the number of windows of the body.
        expected: u64,
        /// Length of the sidecar that was given.
        actual: u64,
    },
    /// The bytes given for a window are not as long as that window of the body.
    #[error("window {window} is {actual} bytes, expected {expected}")]
    WindowLength {
        /// Index of the window.
        window: u64,
        /// Length of the window's byte range in the body.
        expected: u64,
        /// Length that was given (or could be read).
        actual: u64,
    },
    /// The caller asked for a window past the end of the file (a caller mistake, not bad data).
    #[error("window {window} is out of range: the file has {windows} windows")]
    WindowOutOfRange {
        /// Index that was asked for.
        window: u64,
        /// Number of windows of the file.
        windows: u64,
    },
    /// The media type name is not one this crate knows.
    #[error(transparent)]
    UnknownType(#[from] UnknownMediaType),
    /// Reading the input, or writing to or committing the sink, failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// A media type name that is not one of `image`, `sticker`, `video`, `gif`, `audio`, `ptt`,
/// `voice`, `document`, `history` (compared case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown media type {name:?}: expected image, sticker, video, gif, audio, ptt, voice, document or history"
)]
pub struct UnknownMediaType {
    name: String,
}

impl UnknownMediaType {
    /// At most this many characters of the name are kept (it may come from untrusted input).
    const MAX_NAME: usize = 32;

    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.chars().take(Self::MAX_NAME).collect(),
        }
    }

    /// The name that was not recognised (its first 32 characters).
    pub fn name(&self) -> &str {
        &self.name
    }
}
