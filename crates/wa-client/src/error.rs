//! The error type of both drivers.
//!
//! Every variant that wraps another error keeps it as its [`source`](std::error::Error::source)
//! and says only what failed in its own `Display` ("store", "media transfer"): print the chain
//! (`{:#}` with `anyhow`, or walk `source()`) to see the whole story.

use std::path::PathBuf;

/// What went wrong with a client or phone call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The web session refused the command (not connected, too many requests waiting, ...).
    #[error("command refused")]
    Command(#[from] wa_session::CommandError),
    /// The request went out but did not succeed (timeout, error status, disconnect).
    #[error("request failed")]
    Request(#[from] wa_session::RequestError),
    /// The phone session refused the command.
    #[error("phone command refused")]
    PhoneCommand(#[from] wa_phone::CommandError),
    /// The phone's request did not succeed.
    #[error("phone request failed")]
    Phone(#[from] wa_phone::PhoneError),
    /// The reply was not of the kind the call expects (the text names what was expected).
    #[error("unexpected reply (expected {0})")]
    UnexpectedReply(&'static str),
    /// The driver task has stopped (shut down, logged out, or the runtime went away).
    #[error("the driver has stopped")]
    Stopped,
    /// The local store failed.
    #[error("store")]
    Store(#[from] wa_vault::VaultError),
    /// The call needs a local store and the client has none.
    #[error("this client has no local store")]
    NoStore,
    /// The phone's store holds no end-to-end state: register first.
    #[error("no phone is registered in this store")]
    NotRegistered,
    /// Something in the store does not decode (the vault opened it, so it was written by a
    /// different version or by hand).
    #[error("stored {what} does not decode")]
    Corrupt {
        /// What it was.
        what: &'static str,
        /// Why it does not decode.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Media encryption or decryption failed (bad MAC, hash mismatch, truncated body, ...).
    #[error("media")]
    Media(#[from] wa_media::Error),
    /// HTTP (uploads, downloads, the offline logout) failed.
    #[error("HTTP")]
    Http(#[from] reqwest::Error),
    /// The server answered an HTTP request with an error status.
    #[error("{what} answered HTTP {status}")]
    HttpStatus {
        /// Which request.
        what: &'static str,
        /// The status.
        status: u16,
    },
    /// Expired or unknown media (404/410): ask the sender to upload it again.
    #[error("media URL is stale (HTTP {0}): ask for it again")]
    StaleMedia(u16),
    /// A message without the media fields a download needs.
    #[error("message has no downloadable media: {0}")]
    NoMedia(&'static str),
    /// A body larger than it may be: a file over the media host's `max_bytes` (refused
    /// before it is read), or a download longer than its message says.
    #[error("{len} bytes is more than the {max} allowed")]
    TooLarge {
        /// The size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A history export that does not import (strictly): nothing of it was stored.
    #[error("history export does not import")]
    HistoryImport(#[from] wa_history::ImportError),
    /// The phone's history could not be exported (its store breaks the format's rules).
    #[error("history export failed")]
    HistoryExport(#[from] wa_history::ExportError),
    /// The history notice names no known format.
    #[error("history notice")]
    HistoryFormat(#[from] wa_history::UnknownFormat),
    /// The history notice lacks a field or has a wrong one (the text says which).
    #[error("history notice: {0}")]
    BadNotice(&'static str),
    /// A history export of another account.
    #[error("the history export belongs to {owner}, not to this account")]
    ForeignHistory {
        /// The export's owner.
        owner: wa_wire::Jid,
    },
    /// A file could not be read or written.
    #[error("I/O on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A server URL that the call cannot use (the text says why).
    #[error("bad server URL {url:?}: {why}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        why: &'static str,
    },
    /// No randomness from the operating system.
    #[error("no randomness from the OS")]
    Random(#[source] getrandom::Error),
    /// A background task (store commit, media crypto) panicked or was cancelled.
    #[error("background task")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn corrupt(
        what: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error {
        move |source| Error::Corrupt { what, source }
    }
}

/// 32 random bytes from the OS.
pub(crate) fn random32() -> Result<[u8; 32], Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(Error::Random)?;
    Ok(bytes)
}
