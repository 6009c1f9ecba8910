//! Why a server could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

use wa_server_core::store::StoreError;

/// Why the server could not start.
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
    /// The data directory (or its media directory) could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database file could not be opened: not a database, truncated, corrupt, or held by
    /// another process.
    #[error("database {path}: {source}")]
    Database {
        /// The file.
        path: PathBuf,
        /// Why.
        source: StoreError,
    },
    /// The store failed (or a PostgreSQL store could not be opened: unreachable, refused, a
    /// schema newer than this server).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster's bus could not be joined.
    #[error("bus {url}: {reason}")]
    Bus {
        /// The NATS server.
        url: String,
        /// Why.
        reason: String,
    },
    /// The configuration does not hold together.
    #[error("configuration: {0}")]
    Config(String),
    /// The operating system gave no randomness.
    #[error("no randomness from the OS: {0}")]
    Random(String),
}
