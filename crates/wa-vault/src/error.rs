//! The vault's error type: one variant per cause, each saying what was wrong and where.

use std::path::PathBuf;

use crate::KeyKind;

/// What went wrong when opening or using a vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// There is no database file and [`VaultOptions::create`](crate::VaultOptions::create) is
    /// false.
    #[error("no vault at {}", path.display())]
    NotFound {
        /// The database path.
        path: PathBuf,
    },
    /// The file exists but is not a vault: not a `redb` database, or a `redb` database without
    /// a vault header.
    #[error("{} is not a wa-vault store: {reason}", path.display())]
    NotAVault {
        /// The database path.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },
    /// The vault was written by a newer (or unknown) version of this crate.
    #[error(
        "{} is a wa-vault store of format version {found}; this build reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The database path.
        path: PathBuf,
        /// The version in the header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The vault header (cleartext) is malformed: a missing or mis-sized entry.
    #[error("the header of the vault at {} is corrupt: {reason}", path.display())]
    CorruptHeader {
        /// The database path.
        path: PathBuf,
        /// Which entry is wrong.
        reason: &'static str,
    },
    /// The vault is in redb's v2 file format (written by wa-vault on redb 2), and rewriting it
    /// in the v3 format failed.
    #[error("upgrading the vault at {} from redb's v2 file format failed: {detail}", path.display())]
    Upgrade {
        /// The database path.
        path: PathBuf,
        /// What redb 2.6 reported.
        detail: String,
    },
    /// Another process (or another [`Vault`](crate::Vault) in this one) has the database open.
    #[error(
        "the store at {} is in use: another process has it open (close it and try again)",
        path.display()
    )]
    InUse {
        /// The database path.
        path: PathBuf,
    },
    /// The key file or passphrase does not open the vault (the key-check value did not
    /// authenticate). Nothing else was read.
    #[error("wrong key: this {given} does not open the vault at {}", path.display())]
    WrongKey {
        /// The database path.
        path: PathBuf,
        /// What was given.
        given: KeyKind,
    },
    /// The vault is sealed with a different kind of key than the one given.
    #[error("the vault at {} is sealed with a {stored}, but a {given} was given", path.display())]
    KeySourceMismatch {
        /// The database path.
        path: PathBuf,
        /// The kind recorded in the header.
        stored: KeyKind,
        /// The kind given to [`Vault::open`](crate::Vault::open).
        given: KeyKind,
    },
    /// The vault exists and is sealed with a key file, but the key file is missing. A new key
    /// is never generated in that case: it would not open the existing data.
    #[error(
        "key file {} is missing, but the vault at {} exists and is sealed with a key file: \
         restore the key file",
        path.display(),
        vault.display()
    )]
    KeyFileMissing {
        /// The key file path.
        path: PathBuf,
        /// The database path.
        vault: PathBuf,
    },
    /// The key file can be read or written by group or others.
    #[error(
        "key file {} has mode {mode:04o}: group and others must have no access (chmod 600 {})",
        path.display(),
        path.display()
    )]
    KeyFileInsecure {
        /// The key file path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a key file of this crate (not a regular file, or not exactly 32
    /// bytes).
    #[error("key file {} is invalid: {reason}", path.display())]
    KeyFileInvalid {
        /// The key file path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An empty passphrase was given.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// The environment variable that holds the passphrase is not valid UTF-8.
    #[error("environment variable {var} is not valid UTF-8")]
    PassphraseNotUtf8 {
        /// The variable's name.
        var: String,
    },
    /// Argon2 parameters out of range (in the options, or in a vault's header).
    #[error(
        "invalid Argon2 parameters (m_cost {m_cost} KiB, t_cost {t_cost}, p_cost {p_cost}): {reason}"
    )]
    InvalidArgon2Params {
        /// Memory in KiB.
        m_cost: u32,
        /// Iterations.
        t_cost: u32,
        /// Parallelism.
        p_cost: u32,
        /// Which bound was crossed.
        reason: &'static str,
    },
    /// A table name that cannot be used (empty, too long, or containing a NUL byte).
    #[error("invalid table name {name:?}: {reason}")]
    InvalidTable {
        /// The name given.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A stored value does not open: it was tampered with, moved to another key or table, or
    /// the file is corrupt.
    #[error(
        "the value at key {key} of table {table:?} does not open (tampered with, moved or corrupt)"
    )]
    Corrupt {
        /// The table name.
        table: String,
        /// The key, in hex (truncated to its first 32 bytes).
        key: String,
    },
    /// A value too large to seal.
    #[error("a value of {len} bytes is too large to store")]
    ValueTooLarge {
        /// Its length.
        len: usize,
    },
    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
    /// The database file is damaged (truncated, or corrupt in a way `redb` does not report as
    /// an error but asserts on).
    #[error("the database file {} is damaged (truncated or corrupt): {detail}", path.display())]
    Damaged {
        /// The database path.
        path: PathBuf,
        /// What `redb` said.
        detail: String,
    },
    /// The database failed (I/O, a corrupt or truncated `redb` file, ...).
    #[error("database: {0}")]
    Database(#[source] Box<redb::Error>),
}

impl VaultError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> VaultError {
        let path = path.into();
        move |source| VaultError::Io {
            action,
            path,
            source,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for VaultError {
            fn from(e: $t) -> VaultError {
                VaultError::Database(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<getrandom::Error> for VaultError {
    fn from(e: getrandom::Error) -> VaultError {
        VaultError::Random(e)
    }
}

/// The key of a value in hex, truncated to its first 32 bytes, for error messages.
pub(crate) fn key_hex(key: &[u8]) -> String {
    const SHOWN: usize = 32;
    match key.get(..SHOWN) {
        Some(head) if key.len() > SHOWN => format!("{}… ({} bytes)", hex::encode(head), key.len()),
        _ => hex::encode(key),
    }
}
