//! The server's error types.

use std::net::SocketAddr;

use crate::store::StoreError;

/// Why the server could not start (or stop cleanly).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system gave no randomness.
    #[error("no randomness from the OS: {0}")]
    Random(String),
}

/// A request the server refuses, as a status code for the client (`{"status": N}`) and a
/// reason for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {reason}")]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> Refusal {
        Refusal::new(400, reason)
    }

    pub(crate) fn forbidden(reason: impl Into<String>) -> Refusal {
        Refusal::new(403, reason)
    }

    pub(crate) fn not_found(reason: impl Into<String>) -> Refusal {
        Refusal::new(404, reason)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        tracing::error!(error = %e, "store failed");
        Refusal::new(500, "store failed")
    }
}
