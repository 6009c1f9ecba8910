//! Durable storage behind a trait: ordered key-value tables with snapshot reads and atomic,
//! durable write transactions, the shape that embedded databases (`redb`) and networked ones
//! (a table in PostgreSQL) both offer.
//!
//! The server's data model ([`crate::model`]) lives above this trait, so a backend implements
//! only bytes in, bytes out. The core never runs a transaction itself: it hands the driver
//! [`crate::Job`]s, and the driver runs them against its [`Store`] and reports the outcome.
//! [`MemStore`] runs them in memory, for tests and the in-memory test harness.
//!
//! **Durability contract:** when a write job's `done` callback gets `Ok(())`, every write of
//! the job survives a crash of the process. The server answers "stored" (ack 1) only after that.

mod keys;
mod mem;

use std::fmt;

pub use self::keys::{KeyBuf, KeyReader, prefix_end};
pub use self::mem::MemStore;

/// The tables of the server's data model. A backend maps each to its own key space.
///
/// What each holds, and for how long, is documented in the crate docs ("What the server keeps").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Table {
    /// Counters (the next message sequence number).
    Meta,
    /// Accounts by phone number.
    Accounts,
    /// Devices by `(number, device)`.
    Devices,
    /// Linked web clients: client id → `(number, device)`.
    ClientIds,
    /// The key directory: `(number, device, key id)` → one-time key.
    OneTimeKeys,
    /// QR refs waiting for a scan, by ref.
    Refs,
    /// Registration codes waiting to be verified, by number.
    Codes,
    /// Messages not yet delivered to every device (and their receipt bookkeeping), by sequence
    /// number.
    Messages,
    /// Per device, the messages it still has to get, with its own ciphertext: `(device, seq)`.
    Inbox,
    /// The same entries by message: `(seq, device)`, so that a group message's devices are
    /// found without a scan of every inbox. (A message to a user lists its few devices in its
    /// record; records of earlier versions here.)
    MsgDevices,
    /// Per group message and member account, how far it got: `(seq, number)` → delivered or
    /// read. (A message to a user keeps it in its record; records of earlier versions here.)
    Receipts,
    /// `(sender, message id) → seq`: receipts and duplicate sends.
    SentIds,
    /// When messages expire: `(expiry step's end, block of message numbers)` for the messages
    /// of a block that expire in the same minute (one entry for many: see
    /// `model::expiry_block_key`), `(expiry time, seq)` for a message whose expiry moved (and
    /// every message of earlier versions).
    Expiry,
    /// Groups by JID.
    Groups,
    /// `(number, group)`: the groups of each member.
    MemberGroups,
    /// `(number, number)`: accounts that have exchanged messages (who may see whose presence,
    /// who hears of whose identity change).
    Peers,
    /// Uploaded media by id.
    Media,
    /// Media upload auth tokens (their SHA-256) → account and expiry.
    MediaAuth,
    /// When short-lived records expire: `(expiry ms, table, key)`, so the sweep finds refs,
    /// codes and media auth without scanning their tables.
    Timers,
    /// Per account: bytes of ciphertext queued for its devices, messages queued for each
    /// device, and bytes it sent today (the quotas), written by relays; and under
    /// `(number, "released")` the bytes and messages given back as its devices got them (or
    /// they expired), written by its receipts and the sweep.
    Counters,
    /// Web clients' current browser tokens (their SHA-256) → `(number, device)`: the offline
    /// logout (PROTOCOL.md §2.6) finds its device by it.
    BrowserTokens,
    /// Group ciphertexts by message sequence number, as raw bytes (kept apart from the
    /// message's record, so that the body is written once, unencoded, and receipts do not read
    /// it), until every device has the message.
    Bodies,
    /// Per account, the devices senders encrypt for (the phone first), as a few bytes: what
    /// every relay checks its targets against, kept by the writes of accounts and devices so
    /// that a relay reads one small record per account instead of parsing the account's and
    /// each device's (see `model::endpoint_addresses`).
    Endpoints,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 23] = [
        Table::Meta,
        Table::Accounts,
        Table::Devices,
        Table::ClientIds,
        Table::OneTimeKeys,
        Table::Refs,
        Table::Codes,
        Table::Messages,
        Table::Inbox,
        Table::MsgDevices,
        Table::Receipts,
        Table::SentIds,
        Table::Expiry,
        Table::Groups,
        Table::MemberGroups,
        Table::Peers,
        Table::Media,
        Table::MediaAuth,
        Table::Timers,
        Table::Counters,
        Table::BrowserTokens,
        Table::Bodies,
        Table::Endpoints,
    ];

    /// A stable name (the backend's table name).
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Accounts => "accounts",
            Table::Devices => "devices",
            Table::ClientIds => "client_ids",
            Table::OneTimeKeys => "one_time_keys",
            Table::Refs => "refs",
            Table::Codes => "codes",
            Table::Messages => "messages",
            Table::Inbox => "inbox",
            Table::MsgDevices => "msg_devices",
            Table::Receipts => "receipts",
            Table::SentIds => "sent_ids",
            Table::Expiry => "expiry",
            Table::Groups => "groups",
            Table::MemberGroups => "member_groups",
            Table::Peers => "peers",
            Table::Media => "media",
            Table::MediaAuth => "media_auth",
            Table::Timers => "timers",
            Table::Counters => "counters",
            Table::BrowserTokens => "browser_tokens",
            Table::Bodies => "bodies",
            Table::Endpoints => "endpoints",
        }
    }

    /// The position in [`Table::ALL`] (which lists the tables in declaration order).
    pub fn index(self) -> usize {
        self as usize
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

    /// Hands the value under `key` to `read`, borrowed (`None` when there is none): for a
    /// caller that only decodes it, without the copy [`ReadTxn::get`] returns. The default
    /// reads it with `get`; a backend that holds values in memory overrides it.
    ///
    /// # Errors
    /// When the backend fails.
    fn get_with(
        &mut self,
        table: Table,
        key: &[u8],
        read: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), StoreError> {
        let value = self.get(table, key)?;
        read(value.as_deref());
        Ok(())
    }

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

    /// Says that the job is about to read `keys` (with [`ReadTxn::get`]), so that a backend
    /// for which each read is a round trip can read them all in one. Reading them afterwards
    /// gives what `get` would have given without this; the default does nothing.
    ///
    /// # Errors
    /// When the backend fails.
    fn prefetch(&mut self, keys: &[(Table, Vec<u8>)]) -> Result<(), StoreError> {
        let _ = keys;
        Ok(())
    }

    /// Whether [`ReadTxn::prefetch`] does anything here: a caller on a busy path asks before
    /// it builds keys only to name them. The default, like `prefetch`'s, is no.
    fn prefetches(&self) -> bool {
        false
    }

    /// How many entries have `from <= key < to`, counting up to `limit`. The default reads
    /// them with [`ReadTxn::range`]; a backend that can count without copying values
    /// overrides it.
    ///
    /// # Errors
    /// When the backend fails.
    fn count(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<usize, StoreError> {
        Ok(self.range(table, from, to, false, limit)?.len())
    }
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

    /// Adds `key`, which no record has ever had: its key holds a message number that
    /// [`next_seq`](WriteTxn::next_seq) has just handed out. A backend that looks for the
    /// record a write replaces (to keep counts, or to know what to delete later) skips that
    /// search; the default is [`put`](WriteTxn::put).
    ///
    /// Adding a key that a record has, or had, is a bug of the caller: the embedded store may
    /// then lose track of the record below it (its debug builds check for it), and the
    /// PostgreSQL store, which adds it with a plain `INSERT`, fails the transaction.
    ///
    /// # Errors
    /// When the backend fails.
    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(table, key, value)
    }

    /// Sets `key`, which this transaction has just read as absent (a `get` that found
    /// nothing, with no write of the key since): a backend that looks for the record a write
    /// replaces skips the part of that search the read already made (the PostgreSQL store:
    /// a plain `INSERT`, not an upsert). The default is [`put`](WriteTxn::put).
    ///
    /// # Errors
    /// When the backend fails.
    fn put_absent(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(table, key, value)
    }

    /// Removes `key`, without saying whether it was there: a backend for which that answer
    /// costs a round trip overrides it.
    ///
    /// # Errors
    /// When the backend fails.
    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        self.delete(table, key).map(|_| ())
    }

    /// The next message sequence number: unique across every writer of the store, and greater
    /// than every number handed out before it. Numbers need not be consecutive (a backend may
    /// skip the numbers of transactions that rolled back) nor committed in order.
    ///
    /// The default keeps the counter under `seq` in [`Table::Meta`], read and written in the
    /// transaction: right for a single writer. A backend with concurrent writers (several
    /// nodes on one database) overrides it with its own sequence, so that every relay does not
    /// conflict with every other one on that one record.
    ///
    /// # Errors
    /// When the backend fails, or the stored counter is not 8 bytes.
    fn next_seq(&mut self) -> Result<u64, StoreError> {
        let key = b"seq";
        let current = match self.get(Table::Meta, key)? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    table: Table::Meta.name(),
                    detail: "sequence number is not 8 bytes".to_owned(),
                })?,
            None => 0,
        };
        let next = current + 1;
        self.put(Table::Meta, key, &next.to_be_bytes())?;
        Ok(next)
    }
}

/// The work of a write transaction: the code that reads and writes, run by the store (possibly
/// on another thread, possibly together with other jobs in one commit, and possibly more than
/// once if a commit fails and is retried), and the callback that learns the outcome.
///
/// The work must leave no trace but its writes: it may be run again. A job dropped before it
/// finished (a store that closed with it queued) reports [`StoreError::Closed`]: its caller
/// always hears back.
pub struct WriteJob {
    work: Box<Work>,
    /// `None` once called.
    done: Option<Box<Done>>,
    reads: Vec<(Table, Vec<u8>)>,
    reads_through: Vec<Indirect>,
    numbers: usize,
}

/// A record a job reads first whose key another record holds: `prefix` followed by the value
/// of record `via`. A receipt names its message so: the message's number (its key in
/// [`Table::Messages`], and the end of its inbox entry's key) is the value of a sent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indirect {
    /// The record's table.
    pub table: Table,
    /// What its key starts with.
    pub prefix: Vec<u8>,
    /// The record whose value ends the key.
    pub via: (Table, Vec<u8>),
}

/// What learns a [`WriteJob`]'s outcome.
type Done = dyn FnOnce(Result<(), StoreError>) + Send;

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
            done: Some(Box::new(done)),
            reads: Vec::new(),
            reads_through: Vec::new(),
            numbers: 0,
        }
    }

    /// Says which records the work reads first (those it would name in
    /// [`ReadTxn::prefetch`]), so that a store that runs several jobs in one transaction can
    /// read the records of all of them at once: a networked store, in one round trip for the
    /// batch. Only a hint: the work still reads them, and sees what the jobs before it in the
    /// transaction wrote.
    #[must_use]
    pub fn reading(mut self, keys: Vec<(Table, Vec<u8>)>) -> WriteJob {
        self.reads = keys;
        self
    }

    /// The records the work reads first (see [`WriteJob::reading`]).
    pub fn reads(&self) -> &[(Table, Vec<u8>)] {
        &self.reads
    }

    /// Says which records the work reads first by keys that other records hold (see
    /// [`Indirect`], and [`WriteJob::reading`]).
    #[must_use]
    pub fn reading_through(mut self, reads: Vec<Indirect>) -> WriteJob {
        self.reads_through = reads;
        self
    }

    /// The records the work reads first by keys that other records hold.
    pub fn reads_through(&self) -> &[Indirect] {
        &self.reads_through
    }

    /// Says that the work takes up to `n` message numbers ([`WriteTxn::next_seq`]): a store
    /// that reads a batch's records at once may take the batch's numbers with those reads.
    #[must_use]
    pub fn taking_numbers(mut self, n: usize) -> WriteJob {
        self.numbers = n;
        self
    }

    /// How many message numbers the work takes at most, as far as it said (see
    /// [`WriteJob::taking_numbers`]; 0 when it did not).
    pub fn numbers(&self) -> usize {
        self.numbers
    }

    /// Runs the work in `txn`.
    ///
    /// # Errors
    /// What the work returns.
    pub fn run(&mut self, txn: &mut dyn WriteTxn) -> Result<(), StoreError> {
        (self.work)(txn)
    }

    /// Reports the outcome.
    pub fn finish(mut self, result: Result<(), StoreError>) {
        if let Some(done) = self.done.take() {
            done(result);
        }
    }
}

impl Drop for WriteJob {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(Err(StoreError::Closed));
        }
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

    /// Whether the store reads what the jobs of a batch name as read first
    /// ([`WriteJob::reading`]) at once: only then do callers name them. The default is no.
    fn reads_ahead(&self) -> bool {
        false
    }

    /// Stops accepting writes, finishes the queued ones, and releases the backend. Jobs
    /// written afterwards fail with [`StoreError::Closed`].
    fn close(&self);
}

/// What went wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// Two writers touched the same records at once; the job may be run again (networked
    /// backends with optimistic transactions).
    #[error("transaction conflict: retry")]
    Conflict,
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Runs `work` in a snapshot of `store` and returns what it computed.
///
/// # Errors
/// When the backend fails, or what `work` returns.
pub fn read<R>(
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
