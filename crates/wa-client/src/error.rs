//! The client's error type.

/// What went wrong with a client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session refused the command (not connected, too many requests waiting, ...).
    #[error(transparent)]
    Command(#[from] wa_session::CommandError),
    /// The request went out but did not succeed (timeout, error status, disconnect).
    #[error("request failed: {0}")]
    Request(#[from] wa_session::RequestError),
    /// The reply had an unexpected shape.
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
    /// The client task has stopped (the client was shut down, or logged out).
    #[error("the client has stopped")]
    Stopped,
    /// Media encryption or decryption failed (bad MAC, hash mismatch, ...).
    #[error("media: {0}")]
    Media(#[from] wa_media::Error),
    /// Uploading or downloading media over HTTP failed.
    #[error("media transfer: {0}")]
    Http(String),
    /// Expired media (404/410): ask the sender to upload it again.
    #[error("media URL is stale ({0}): ask for it again")]
    StaleMedia(u16),
    /// A message without the media fields a download needs.
    #[error("message has no downloadable media: {0}")]
    NoMedia(&'static str),
    /// The local store failed.
    #[error("store: {0}")]
    Store(String),
    /// No randomness from the operating system.
    #[error("no randomness from the OS: {0}")]
    Random(String),
}
