//! Durable storage behind a trait: an ordered key-value store with atomic, durable write
//! transactions, the shape that embedded databases (`redb`, the default, see [`RedbStore`]) and
//! distributed ones (FoundationDB, TiKV, or a table in PostgreSQL) all offer.
//!
//! The server's data model lives above this trait (in the crate's private `model` module),
//! so a new backend implements only bytes in, bytes out: a [`ReadTxn`] for snapshot reads, a
//! [`WriteTxn`] for writes, and [`Store::write`] which runs a [`WriteJob`] and reports back
//! once its writes are durable.
//!
//! **Durability contract:** when a job's `done` callback gets `Ok(())`, every write of the job
//! survives a crash of the process (and, for `RedbStore`, of the machine: the commit is
//! fsync'd). The server answers "stored" (ack 1) only after that.

mod keys;
mod redb_store;

use std::fmt;
use std::sync::{Arc, Mutex};

pub use self::redb_store::RedbStore;
pub(crate) use keys::{KeyBuf, KeyReader, prefix_end};

/// The tables of the server's data model. A backend maps each to its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Table {
    /// Counters (the next message sequence number).
    Meta,
    /// Accounts by phone number.
    Accounts,
    /// Linked web devices by client id.
    Devices,
    /// The relay queue: messages not yet delivered to every device, by sequence number.
    Messages,
    /// Per device, the queued messages it still has to get: `(device, seq)`.
    Inbox,
    /// `(sender, message id) → seq` for queued messages: receipts and duplicate sends.
    SentIds,
    /// `(expiry time, seq)`: when queued messages expire.
    Expiry,
    /// Per account and chat, the message history: `(account, chat, seq) → WebMessageInfo`.
    History,
    /// `(account, chat, message id) → seq` into the history.
    MsgIndex,
    /// Per account, its chats: `(account, chat) → chat record`.
    Chats,
    /// Groups by JID.
    Groups,
    /// Uploaded media by id.
    Media,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 12] = [
        Table::Meta,
        Table::Accounts,
        Table::Devices,
        Table::Messages,
        Table::Inbox,
        Table::SentIds,
        Table::Expiry,
        Table::History,
        Table::MsgIndex,
        Table::Chats,
        Table::Groups,
        Table::Media,
    ];

    /// A stable name (the backend's table name).
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Accounts => "accounts",
            Table::Devices => "devices",
            Table::Messages => "messages",
            Table::Inbox => "inbox",
            Table::SentIds => "sent_ids",
            Table::Expiry => "expiry",
            Table::History => "history",
            Table::MsgIndex => "msg_index",
            Table::Chats => "chats",
            Table::Groups => "groups",
            Table::Media => "media",
        }
    }

    /// The position in [`Table::ALL`].
    pub fn index(self) -> usize {
        match self {
            Table::Meta => 0,
            Table::Accounts => 1,
            Table::Devices => 2,
            Table::Messages => 3,
            Table::Inbox => 4,
            Table::SentIds => 5,
            Table::Expiry => 6,
            Table::History => 7,
            Table::MsgIndex => 8,
            Table::Chats => 9,
            Table::Groups => 10,
            Table::Media => 11,
        }
    }
}

/// A key-value pair read from a table.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Reads within one consistent snapshot (or within a write transaction, seeing its own writes).
pub trait ReadTxn {
    /// The value under `key`.
    ///
    /// # Errors
    /// When the backend fails.
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `limit` entries with `from <= key < to`, in ascending key order, or descending
    /// when `reverse`.
    ///
    /// # Errors
    /// When the backend fails.
    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// The number of entries in a table.
    ///
    /// # Errors
    /// When the backend fails.
    fn len(&mut self, table: Table) -> Result<u64, StoreError>;
}

/// Writes within one atomic transaction.
pub trait WriteTxn: ReadTxn {
    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// When the backend fails.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`; whether it was there.
    ///
    /// # Errors
    /// When the backend fails.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError>;
}

/// The work of a write transaction: the code that reads and writes, run by the store (possibly
/// on another thread, possibly together with other jobs in one commit, and possibly more than
/// once if a commit fails and is retried), and the callback that learns the outcome.
///
/// The work must leave no trace but its writes: it may be run again.
pub struct WriteJob {
    work: Box<Work>,
    done: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

/// The code of a [`WriteJob`].
type Work = dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + Send;

impl WriteJob {
    /// A job: `work` does the reads and writes; `done` gets `Ok(())` once they are durable, or
    /// the error.
    pub fn new(
        work: impl FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + Send + 'static,
        done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) -> WriteJob {
        WriteJob {
            work: Box::new(work),
            done: Box::new(done),
        }
    }

    /// Runs the work in `txn`.
    ///
    /// # Errors
    /// What the work returns.
    pub fn run(&mut self, txn: &mut dyn WriteTxn) -> Result<(), StoreError> {
        (self.work)(txn)
    }

    /// Reports the outcome.
    pub fn finish(self, result: Result<(), StoreError>) {
        (self.done)(result);
    }
}

impl fmt::Debug for WriteJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteJob").finish_non_exhaustive()
    }
}

/// A durable store for the server.
pub trait Store: Send + Sync + 'static {
    /// Runs `work` in a read-only snapshot.
    ///
    /// # Errors
    /// When the backend fails, or what `work` returns.
    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Queues a write job. Its `done` callback runs once the job's writes are durable (or
    /// failed); it may run on another thread, and must not block.
    fn write(&self, job: WriteJob);

    /// Stops accepting writes, finishes the queued ones, and releases the backend. Jobs
    /// written afterwards fail with [`StoreError::Closed`].
    fn close(&self);
}

/// What went wrong in the store.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (IO, a full disk, a corrupt file...).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored record does not decode: the data is corrupt or from another version.
    #[error("corrupt record in table {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Runs `work` in a snapshot and returns what it computed.
pub(crate) fn read<R>(
    store: &dyn Store,
    mut work: impl FnMut(&mut dyn ReadTxn) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let mut out = None;
    store.read(&mut |txn| {
        out = Some(work(txn)?);
        Ok(())
    })?;
    out.ok_or(StoreError::Closed)
}

/// Runs `work` in a write transaction and returns what it computed, once durable.
pub(crate) async fn write<R: Send + 'static>(
    store: &dyn Store,
    work: impl FnMut(&mut dyn WriteTxn) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    submit(store, work).wait().await
}

/// A write job queued by [`submit`]: its result, once durable.
#[derive(Debug)]
pub(crate) struct Pending<R>(tokio::sync::oneshot::Receiver<Result<Option<R>, StoreError>>);

impl<R> Pending<R> {
    /// Waits until the job's writes are durable (or failed).
    pub(crate) async fn wait(self) -> Result<R, StoreError> {
        match self.0.await {
            Ok(Ok(Some(value))) => Ok(value),
            Ok(Ok(None)) | Err(_) => Err(StoreError::Closed),
            Ok(Err(e)) => Err(e),
        }
    }
}

/// Queues `work` now (jobs run in the order they are submitted) without waiting for it.
pub(crate) fn submit<R: Send + 'static>(
    store: &dyn Store,
    mut work: impl FnMut(&mut dyn WriteTxn) -> Result<R, StoreError> + Send + 'static,
) -> Pending<R> {
    let slot: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let filled = Arc::clone(&slot);
    store.write(WriteJob::new(
        move |txn| {
            let value = work(txn)?;
            if let Ok(mut slot) = filled.lock() {
                *slot = Some(value);
            }
            Ok(())
        },
        move |result| {
            let value = result.map(|()| slot.lock().ok().and_then(|mut s| s.take()));
            let _ = tx.send(value);
        },
    ));
    Pending(rx)
}
