//! The default store: one `redb` file, with a write-ahead log in front of it.
//!
//! `redb` is an embedded, pure-Rust, crash-safe database: copy-on-write B-trees, ACID
//! transactions, and commits that are durable (fsync'd) when they return. Committing every
//! batch of messages to it cost most of the server's CPU (each commit rewrites the B-tree pages
//! it touches, for records most of which are deleted again a moment later, when the recipient
//! has the message). So the store commits to it in bulk instead:
//!
//! - One writer thread takes the queued [`WriteJob`]s and runs as many as are waiting, and
//!   those that arrive while they run (up to [`MAX_BATCH`]), over the in-memory
//!   [overlay](super::overlay) and the file. Each job writes
//!   into the batch's layer and remembers what it replaced there, so a failing job is undone:
//!   it leaves no trace and fails no other.
//! - The batch's writes are appended to the [write-ahead log](super::wal) and fsync'd, once for
//!   the batch; only then are they taken into the overlay (which every reader sees over the
//!   file) and do the jobs hear "done".
//! - When the overlay holds more than its memory bound, or its log segment passes twice that,
//!   the overlay is *frozen*: a new, empty overlay (and log segment) takes the writes that
//!   follow, and a flusher thread writes the frozen one to the file in one `redb` commit, then
//!   drops it and its segment. Writes do not wait for that commit; while it runs, reads look
//!   through both overlays. A record written and deleted between two freezes (a message
//!   delivered at once, its bookkeeping) never reaches the file.
//! - On open, the log a crash left is replayed into the file first (a torn last record, never
//!   acknowledged, is dropped); on close, everything goes to the file and the log is emptied.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase as _, ReadableTableMetadata,
    TableDefinition,
};

use super::overlay::{self, FileEntries, Layer, Overlay, Slot};
use super::wal::{self, Wal};
use super::{Entry, ReadTxn, Store, StoreError, Table, WriteJob, WriteTxn};

/// The most jobs committed together in one transaction (one fsync).
pub const MAX_BATCH: usize = 256;

/// The overlay's default memory bound: past it the overlay is frozen and written to the file
/// (32 MiB). Its log segment is frozen at twice this length too.
pub const DEFAULT_OVERLAY_BYTES: usize = 32 << 20;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// The file's own bookkeeping, apart from the core's tables: under `flushed`, the number of
/// the last overlay written to it (so that a reader can tell whether its snapshot of the file
/// already has the frozen overlay it sees, and an opening store which log segments it has).
const STATE: TableDefinition<'static, &'static str, u64> = TableDefinition::new("wa_wal_state");

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The overlays: what every reader sees over the file.
struct Layers {
    /// Takes the writes of each batch once they are in the log.
    active: Overlay,
    /// The previous overlay, while the flusher writes it to the file.
    frozen: Option<Arc<Overlay>>,
}

impl Layers {
    /// The frozen overlay, unless `file`, a snapshot taken under the lock these layers were
    /// read under, already has it. The file's count is read only when there is one.
    fn frozen_over(&self, file: &mut FileRead) -> Result<Option<&Overlay>, StoreError> {
        match self.frozen.as_deref() {
            Some(frozen) if frozen.number() > file.flushed()? => Ok(Some(frozen)),
            _ => Ok(None),
        }
    }
}

/// What the writer, the flusher and the readers share.
struct Shared {
    db: Database,
    /// A reader holds the read lock for its whole read, and opens its `redb` snapshot under it.
    /// The flusher commits the frozen overlay (counting it in the file's [`STATE`]) while
    /// readers go on, then drops it under the write lock: a reader whose snapshot counts it
    /// leaves it out, so it sees the file before the commit with the frozen overlay, or after
    /// it without.
    layers: RwLock<Layers>,
}

impl Shared {
    fn layers(&self) -> std::sync::RwLockReadGuard<'_, Layers> {
        self.layers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn layers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Layers> {
        self.layers.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A [`Store`] in one `redb` file and its write-ahead log (`<file>.wal`, and `<file>.wal.old`
/// while a frozen overlay is written to the file), all created with mode 0600: they hold
/// session keys.
pub struct RedbStore {
    shared: Arc<Shared>,
    path: PathBuf,
    queue: Mutex<Option<mpsc::Sender<WriteJob>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The page cache of [`RedbStore::open`]: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl RedbStore {
    /// Opens the store at `path`, creating it (and its tables) if needed, and replays the log
    /// a crash left.
    ///
    /// # Errors
    /// When the file cannot be created or opened, is not a redb database, or is in use by
    /// another process; when the log is damaged before its last record.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        RedbStore::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store at `path` with a page cache of at most `cache_bytes` (the server's
    /// memory grows with the database up to it; redb's own default is 1 GiB).
    ///
    /// # Errors
    /// As [`RedbStore::open`].
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, StoreError> {
        RedbStore::open_with_limits(path, cache_bytes, DEFAULT_OVERLAY_BYTES)
    }

    /// Opens the store at `path` with a page cache of at most `cache_bytes` and overlays of
    /// about `overlay_bytes` (the writes not yet in the file; a small bound writes to the file
    /// more often).
    ///
    /// # Errors
    /// As [`RedbStore::open`].
    pub fn open_with_limits(
        path: &Path,
        cache_bytes: usize,
        overlay_bytes: usize,
    ) -> Result<RedbStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        #[cfg(unix)]
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(backend)?;
        }
        // A damaged file must give an error, not take the process down: redb reports what it
        // detects, and a panic on what it does not is caught here and reported the same way.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_db(path, cache_bytes)))
            .unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "the database file is damaged or truncated (redb failed an internal check reading it)".to_owned(),
                ))
            });
        let db = opened?;
        let log = log_path(path);
        let flushed = FileRead::begin(&db)?.flushed()?;
        let mut last = flushed;
        let mut writes = 0;
        let mut records = Vec::new();
        for segment in wal::read_segments(&log)? {
            if segment.torn > 0 {
                tracing::warn!(
                    path = %log.display(),
                    dropped = segment.torn,
                    "the write-ahead log ends in a torn record (a crash while it was written; it was never acknowledged): dropped"
                );
            }
            // A segment the file already counts was written to it; its removal did not reach
            // the disk.
            if segment.number > flushed {
                last = last.max(segment.number);
                writes += segment.records.iter().map(Vec::len).sum::<usize>();
                records.extend(segment.records);
            }
        }
        if writes > 0 {
            replay(&db, records, last)?;
            tracing::info!(
                path = %path.display(),
                writes,
                "replayed the write-ahead log a crash left into the database"
            );
        }
        let wal = Wal::create(&log, last + 1)?;
        let shared = Arc::new(Shared {
            db,
            layers: RwLock::new(Layers {
                active: Overlay::numbered(last + 1),
                frozen: None,
            }),
        });
        let (flush_tx, flush_rx) = mpsc::channel::<Arc<Overlay>>();
        let (flushed_tx, flushed_rx) = mpsc::channel();
        let closing = Arc::new(AtomicBool::new(false));
        let flusher = {
            let (shared, closing) = (Arc::clone(&shared), Arc::clone(&closing));
            std::thread::Builder::new()
                .name("wa-server-flush".to_owned())
                .spawn(move || flusher(&shared, &flush_rx, &flushed_tx, &closing))
                .map_err(backend)?
        };
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let writer = Writer {
            shared: Arc::clone(&shared),
            wal,
            overlay_bytes,
            refusing: None,
            flush_tx: Some(flush_tx),
            flushed_rx,
            flushing: false,
            failing: false,
            closing,
            flusher: Some(flusher),
        };
        let writer = std::thread::Builder::new()
            .name("wa-server-store".to_owned())
            .spawn(move || writer.run(&rx))
            .map_err(backend)?;
        Ok(RedbStore {
            shared,
            path: path.to_owned(),
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the write-ahead log is: beside the file, with `.wal` added to its name (and
    /// `.wal.old` for the segment of an overlay being written to the file).
    pub fn log_path(&self) -> PathBuf {
        log_path(&self.path)
    }
}

fn log_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let open = || {
        redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
    };
    let db = match open() {
        Err(redb::DatabaseError::UpgradeRequired(2)) => {
            upgrade_v2(path)?;
            open()
        }
        opened => opened,
    }
    .map_err(|e| match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Backend(format!("the database file is damaged: {detail}"))
        }
        e => backend(e),
    })?;
    let txn = db.begin_write().map_err(backend)?;
    for table in Table::ALL {
        txn.open_table(def(table)).map_err(backend)?;
    }
    txn.open_table(STATE).map_err(backend)?;
    txn.commit().map_err(backend)?;
    Ok(db)
}

/// Rewrites, in place, a file that wa-server built on redb 2 wrote in redb's v2 format (redb 3
/// and later open only the v3 format): redb 2.6's own upgrade.
fn upgrade_v2(path: &Path) -> Result<(), StoreError> {
    let failed = |e: &dyn std::fmt::Display| {
        StoreError::Backend(format!(
            "upgrading {} from redb's v2 file format: {e}",
            path.display()
        ))
    };
    let mut db = redb2::Database::open(path).map_err(|e| failed(&e))?;
    db.upgrade().map_err(|e| failed(&e))?;
    drop(db);
    tracing::info!(path = %path.display(), "upgraded the database file from redb's v2 format to v3");
    Ok(())
}

/// Writes a log's records into the file, in one durable commit that counts segment `last` as
/// written: each key's last write, as a flush of an overlay holding them would.
fn replay(db: &Database, records: Vec<Vec<wal::Write>>, last: u64) -> Result<(), StoreError> {
    let mut layer = Layer::default();
    for (table, key, value) in records.into_iter().flatten() {
        layer.insert(
            table,
            &key,
            Slot {
                value,
                in_file: false,
            },
        );
    }
    commit_layer(db, &layer, last).map(drop)
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    wal: Wal,
    overlay_bytes: usize,
    /// Set while writes are refused: the log could not be written (and not cut back), or the
    /// file cannot be written and the active overlay is past four times its bound.
    refusing: Option<StoreError>,
    flush_tx: Option<mpsc::Sender<Arc<Overlay>>>,
    /// What the flusher reports of each frozen overlay.
    flushed_rx: mpsc::Receiver<Flushed>,
    /// Whether an overlay is frozen and being written.
    flushing: bool,
    /// Whether the flusher's last try failed.
    failing: bool,
    /// Tells a flusher that keeps failing to give up (the log keeps the writes).
    closing: Arc<AtomicBool>,
    flusher: Option<JoinHandle<()>>,
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<WriteJob>) {
        while let Ok(first) = rx.recv() {
            self.run_batch(first, rx);
            self.after_batch();
        }
        self.close();
    }

    /// Takes the flusher's news, and freezes the overlay if it is due.
    fn after_batch(&mut self) {
        while let Ok(outcome) = self.flushed_rx.try_recv() {
            self.flushed(outcome);
        }
        let mut bytes = self.shared.layers().active.bytes();
        // Memory stays bounded when writes outrun the flusher: past twice the bound, the
        // writer waits for it before it takes more.
        if self.flushing && !self.failing && bytes >= self.overlay_bytes.saturating_mul(2) {
            while self.flushing && !self.failing {
                match self.flushed_rx.recv() {
                    Ok(outcome) => self.flushed(outcome),
                    Err(_) => break,
                }
            }
            bytes = self.shared.layers().active.bytes();
        }
        let due = bytes >= self.overlay_bytes
            || self.wal.len() >= (self.overlay_bytes as u64).saturating_mul(2);
        // A frozen overlay that nobody writes (the flusher is gone) keeps its log segment:
        // never freeze over it, and hold writes as when the flusher fails.
        if !self.flushing && self.shared.layers().frozen.is_some() {
            self.failing = true;
        } else if due && !self.flushing && !self.wal.is_broken() {
            self.freeze();
        }
        // Writes wait in memory for the file at most so long: past four times the bound, while
        // the flusher keeps failing, they are refused until it succeeds.
        if self.failing && bytes >= self.overlay_bytes.saturating_mul(4) && self.refusing.is_none()
        {
            self.refusing = Some(StoreError::Backend(
                "the database file cannot take the writes waiting for it (see the log): writes are refused until it can".to_owned(),
            ));
        }
    }

    /// What the flusher reports of the frozen overlay.
    fn flushed(&mut self, outcome: Flushed) {
        match outcome {
            Flushed::Written => {
                self.flushing = false;
                self.failing = false;
                self.wal.remove_old();
                if !self.wal.is_broken() {
                    self.refusing = None;
                }
            }
            // The frozen overlay stays (readers see it), and so does its log segment.
            Flushed::Failed => self.failing = true,
            Flushed::GaveUp => {
                self.failing = true;
                self.flushing = false;
            }
        }
    }

    /// Starts a new overlay and log segment; the flusher takes the old ones.
    fn freeze(&mut self) {
        let ended = match self.wal.rotate() {
            Ok(ended) => ended,
            Err(e) => {
                tracing::error!(error = %e, "starting a new write-ahead log segment failed");
                return;
            }
        };
        let frozen = {
            let mut layers = self.shared.layers_mut();
            let active = std::mem::replace(&mut layers.active, Overlay::numbered(ended + 1));
            debug_assert_eq!(active.number(), ended);
            let frozen = Arc::new(active);
            layers.frozen = Some(Arc::clone(&frozen));
            frozen
        };
        if let Some(tx) = &self.flush_tx
            && tx.send(frozen).is_ok()
        {
            self.flushing = true;
        }
    }

    /// Closed: the frozen overlay, then the active one, go to the file; the log is emptied.
    fn close(mut self) {
        self.closing.store(true, Ordering::Relaxed);
        self.wait_for_flusher();
        let empty = self.shared.layers().active.layer.is_empty();
        if !self.failing && !empty {
            self.freeze();
            self.wait_for_flusher();
        }
        // The flusher ends with its channel.
        self.flush_tx = None;
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        let layers = self.shared.layers();
        if layers.frozen.is_none() && layers.active.layer.is_empty() {
            let number = layers.active.number();
            drop(layers);
            // Everything is in the file: a fresh segment, the old ones gone.
            if let Err(e) = Wal::create(self.wal.path(), number) {
                tracing::error!(error = %e, "emptying the write-ahead log failed");
            }
        }
    }

    /// Waits until the frozen overlay is written, or the flusher gives up on it.
    fn wait_for_flusher(&mut self) {
        while self.flushing {
            match self.flushed_rx.recv() {
                Ok(outcome) => self.flushed(outcome),
                Err(_) => break,
            }
        }
    }

    /// Runs `first` and the jobs queued behind it as one batch: the jobs that arrive while
    /// it runs join it too (up to [`MAX_BATCH`]), so that one fsync serves as many as are
    /// there by the time it starts.
    fn run_batch(&mut self, first: WriteJob, queued: &mpsc::Receiver<WriteJob>) {
        // (Lazy: a job is taken off the queue only once the one before it has run.)
        let jobs = std::iter::once(first)
            .chain(std::iter::from_fn(|| queued.try_recv().ok()))
            .take(MAX_BATCH);
        if let Some(e) = &self.refusing {
            for job in jobs {
                job.finish(Err(e.clone()));
            }
            return;
        }
        let mut batch = Layer::default();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        {
            let layers = self.shared.layers();
            let view = FileRead::begin(&self.shared.db).and_then(|mut file| {
                let frozen = layers.frozen_over(&mut file)?;
                Ok((file, frozen))
            });
            let (mut file, frozen) = match view {
                Ok(view) => view,
                Err(e) => {
                    drop(layers);
                    for job in jobs {
                        job.finish(Err(e.clone()));
                    }
                    return;
                }
            };
            for mut job in jobs {
                let mut txn = Layered {
                    batch: &mut batch,
                    undo: Vec::new(),
                    active: &layers.active,
                    frozen,
                    file: &mut file,
                };
                match job.run(&mut txn) {
                    Ok(()) => done.push(job),
                    Err(e) => {
                        txn.undo();
                        failed.push((job, e));
                    }
                }
            }
        }
        for (job, e) in failed {
            job.finish(Err(e));
        }
        if !batch.is_empty()
            && let Err(e) = self.wal.append(&batch)
        {
            tracing::error!(error = %e, "the write-ahead log failed");
            if self.wal.is_broken() {
                self.refusing = Some(e.clone());
            }
            for job in done {
                job.finish(Err(e.clone()));
            }
            return;
        }
        self.shared.layers_mut().active.absorb(batch);
        for job in done {
            job.finish(Ok(()));
        }
    }
}

/// What the flusher reports of a frozen overlay.
enum Flushed {
    /// The file has it; it was dropped.
    Written,
    /// A try failed; the flusher tries again.
    Failed,
    /// A try failed while the store closes: it stays in the log, for the next open.
    GaveUp,
}

/// The flusher thread: writes each frozen overlay to the file, then drops it. A failure is
/// retried (after 1 s, doubling up to 30 s) until it succeeds or the store closes; the writer
/// hears each outcome.
fn flusher(
    shared: &Shared,
    rx: &mpsc::Receiver<Arc<Overlay>>,
    tx: &mpsc::Sender<Flushed>,
    closing: &AtomicBool,
) {
    while let Ok(frozen) = rx.recv() {
        let mut pause = Duration::from_secs(1);
        loop {
            let started = std::time::Instant::now();
            match commit_layer(&shared.db, &frozen.layer, frozen.number()) {
                Ok(writes) => {
                    shared.layers_mut().frozen = None;
                    tracing::debug!(
                        writes,
                        ms = started.elapsed().as_millis(),
                        "wrote a frozen overlay to the database file"
                    );
                    let _ = tx.send(Flushed::Written);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "writing a frozen overlay to the database file failed");
                    if closing.load(Ordering::Relaxed) {
                        let _ = tx.send(Flushed::GaveUp);
                        break;
                    }
                    let _ = tx.send(Flushed::Failed);
                    // A pause before the next try, cut short when the store closes.
                    let until = std::time::Instant::now() + pause;
                    while std::time::Instant::now() < until && !closing.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Writes overlay `number`'s writes to the file and counts it as written, in one commit; how
/// many writes it held.
fn commit_layer(db: &Database, layer: &Layer, number: u64) -> Result<usize, StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    let mut writes = 0;
    for table in Table::ALL {
        let entries = layer.table(table);
        if entries.is_empty() {
            continue;
        }
        let mut t = txn.open_table(def(table)).map_err(backend)?;
        for (key, slot) in entries {
            match &slot.value {
                Some(v) => drop(t.insert(key.as_slice(), v.as_slice()).map_err(backend)?),
                None => drop(t.remove(key.as_slice()).map_err(backend)?),
            }
        }
        writes += entries.len();
    }
    txn.open_table(STATE)
        .map_err(backend)?
        .insert("flushed", number)
        .map_err(backend)?;
    txn.commit().map_err(backend)?;
    Ok(writes)
}

impl Store for RedbStore {
    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let layers = self.shared.layers();
        let mut file = FileRead::begin(&self.shared.db)?;
        let frozen = layers.frozen_over(&mut file)?;
        // A read is a job's view with no batch (and no writes: `ReadTxn` has none).
        let mut no_batch = Layer::default();
        let mut r = Layered {
            batch: &mut no_batch,
            undo: Vec::new(),
            active: &layers.active,
            frozen,
            file: &mut file,
        };
        work(&mut r)
    }

    fn write(&self, job: WriteJob) {
        let queue = self.queue.lock().ok().and_then(|q| q.clone());
        match queue {
            Some(queue) => {
                if let Err(mpsc::SendError(job)) = queue.send(job) {
                    job.finish(Err(StoreError::Closed));
                }
            }
            None => job.finish(Err(StoreError::Closed)),
        }
    }

    fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

/// A snapshot of the file.
struct FileRead {
    txn: ReadTransaction,
    tables: [Option<ReadOnlyTable<&'static [u8], &'static [u8]>>; Table::ALL.len()],
}

impl FileRead {
    fn begin(db: &Database) -> Result<FileRead, StoreError> {
        Ok(FileRead {
            txn: db.begin_read().map_err(backend)?,
            tables: std::array::from_fn(|_| None),
        })
    }

    fn table(
        &mut self,
        table: Table,
    ) -> Result<&ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
        let slot = self
            .tables
            .get_mut(table.index())
            .ok_or(StoreError::Closed)?;
        if slot.is_none() {
            *slot = Some(self.txn.open_table(def(table)).map_err(backend)?);
        }
        slot.as_ref().ok_or(StoreError::Closed)
    }

    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.table(table)?;
        Ok(t.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
    }

    /// The number of the last overlay written to the file in this snapshot.
    fn flushed(&mut self) -> Result<u64, StoreError> {
        let t = match self.txn.open_table(STATE) {
            Ok(t) => t,
            // A file from before the count: none yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(backend(e)),
        };
        Ok(t.get("flushed").map_err(backend)?.map_or(0, |v| v.value()))
    }

    fn contains(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        let t = self.table(table)?;
        Ok(t.get(key).map_err(backend)?.is_some())
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        self.table(table)?.len().map_err(backend)
    }

    /// The file's entries in a range, lazily, in the range's order (values empty unless
    /// `values`).
    fn entries(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        values: bool,
    ) -> Result<FileEntries<'_>, StoreError> {
        if from >= to {
            return Ok(Box::new(std::iter::empty()));
        }
        let t = self.table(table)?;
        let range = t.range::<&[u8]>(from..to).map_err(backend)?;
        let entry = move |item: Result<_, redb::StorageError>| {
            let (k, v): (redb::AccessGuard<'_, &[u8]>, redb::AccessGuard<'_, &[u8]>) =
                item.map_err(backend)?;
            let value = if values {
                v.value().to_vec()
            } else {
                Vec::new()
            };
            Ok((k.value().to_vec(), value))
        };
        Ok(if reverse {
            Box::new(range.rev().map(entry))
        } else {
            Box::new(range.map(entry))
        })
    }
}

/// `table` in each layer above the file, topmost first (a free function: the caller borrows
/// its file mutably beside them).
fn stack<'o>(
    table: Table,
    layers: [&'o Layer; 2],
    frozen: Option<&'o Overlay>,
) -> Vec<&'o std::collections::BTreeMap<overlay::Key, Slot>> {
    let mut stack: Vec<_> = layers.iter().map(|l| l.table(table)).collect();
    stack.extend(frozen.map(|f| f.layer.table(table)));
    stack
}

/// A job's view while it runs: its batch's writes, its own among them, over the overlays,
/// over the file. A read is the same view with an empty batch.
///
/// A job writes into its batch's layer directly, and remembers what each key it writes held
/// there before: a job that fails puts that back ([`Layered::undo`]), so it leaves nothing. (A
/// layer of its own, taken into the batch's when the job succeeded, cost every write a second
/// insertion into an ordered map, and every read a search of one more.)
struct Layered<'a> {
    batch: &'a mut Layer,
    /// Each write of the job, oldest first: the table, the key, and what the batch held
    /// under it before.
    undo: Vec<(Table, overlay::Key, Option<Slot>)>,
    active: &'a Overlay,
    frozen: Option<&'a Overlay>,
    file: &'a mut FileRead,
}

impl Layered<'_> {
    /// The topmost slot for `key` above the frozen overlay, if a layer has it.
    fn slot(&self, table: Table, key: &[u8]) -> Option<&Slot> {
        self.batch
            .get(table, key)
            .or_else(|| self.active.layer.get(table, key))
    }

    /// Writes `slot` under `key` in the batch's layer, remembering what was there.
    fn write(&mut self, table: Table, key: &[u8], slot: Slot) {
        let key = overlay::Key::from_slice(key);
        let before = self.batch.replace(table, key.clone(), slot);
        self.undo.push((table, key, before));
    }

    /// Takes the job's writes back out of the batch's layer, newest first.
    fn undo(&mut self) {
        for (table, key, before) in self.undo.drain(..).rev() {
            match before {
                Some(slot) => drop(self.batch.replace(table, key, slot)),
                None => self.batch.remove(table, &key),
            }
        }
    }

    /// Writes `value` under `key`, which the caller (`what`) says no layer has and the file
    /// has or not as `in_file` says, without searching (debug builds search, and refuse a
    /// misjudged key).
    fn add_unsearched(
        &mut self,
        table: Table,
        key: &[u8],
        value: &[u8],
        in_file: bool,
        what: &str,
    ) -> Result<(), StoreError> {
        if cfg!(debug_assertions) && self.known(table, key)? != (false, in_file) {
            return Err(StoreError::Backend(format!(
                "{what} of a key whose place in {} was misjudged",
                table.name()
            )));
        }
        self.write(
            table,
            key,
            Slot {
                value: Some(value.to_vec()),
                in_file,
            },
        );
        Ok(())
    }

    fn frozen_slot(&self, table: Table, key: &[u8]) -> Option<&Slot> {
        self.frozen.and_then(|f| f.layer.get(table, key))
    }

    /// Sets `key` in the job's layer; whether it had a value before.
    fn set(
        &mut self,
        table: Table,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let (existed, in_file) = self.known(table, key)?;
        self.write(table, key, Slot { value, in_file });
        Ok(existed)
    }

    /// Whether the view has `key`, and whether what is below the active overlay (the frozen
    /// overlay, then the file) has it: the `in_file` of a slot written now.
    fn known(&mut self, table: Table, key: &[u8]) -> Result<(bool, bool), StoreError> {
        if let Some(slot) = self.slot(table, key) {
            return Ok((slot.value.is_some(), slot.in_file));
        }
        let below = match self.frozen_slot(table, key) {
            Some(slot) => slot.value.is_some(),
            None => self.file.contains(table, key)?,
        };
        Ok((below, below))
    }
}

impl ReadTxn for Layered<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self
            .slot(table, key)
            .or_else(|| self.frozen_slot(table, key))
        {
            Some(slot) => Ok(slot.value.clone()),
            None => self.file.get(table, key),
        }
    }

    fn get_with(
        &mut self,
        table: Table,
        key: &[u8],
        read: &mut dyn FnMut(Option<&[u8]>),
    ) -> Result<(), StoreError> {
        match self
            .slot(table, key)
            .or_else(|| self.frozen_slot(table, key))
        {
            Some(slot) => read(slot.value.as_deref()),
            None => read(self.file.get(table, key)?.as_deref()),
        }
        Ok(())
    }

    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let layers = stack(table, [self.batch, &self.active.layer], self.frozen);
        let file = self.file.entries(table, from, to, reverse, true)?;
        overlay::merge(&layers, file, from, to, reverse, limit, true)
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        let mut below = vec![&self.active.layer];
        below.extend(self.frozen.map(|f| &f.layer));
        let change = self.active.len_change(table)
            + self.frozen.map_or(0, |f| f.len_change(table))
            + self.batch.len_change(table, &below);
        Ok(self.file.len(table)?.saturating_add_signed(change))
    }

    fn count(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<usize, StoreError> {
        let layers = stack(table, [self.batch, &self.active.layer], self.frozen);
        let file = self.file.entries(table, from, to, false, false)?;
        Ok(overlay::merge(&layers, file, from, to, false, limit, false)?.len())
    }
}

impl WriteTxn for Layered<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.set(table, key, Some(value.to_vec())).map(drop)
    }

    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        // Neither a layer nor the file has ever had the key (the caller vouches for it): no
        // search of them, as `set` makes to learn `in_file`.
        self.add_unsearched(table, key, value, false, "insert")
    }

    fn put_absent(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        // The read that found nothing looked in every layer and then in the file: a deletion
        // in the batch or the active overlay says whether the file has the key; one in the
        // frozen overlay, or none, that what is below has not (see `known`). No second search
        // of the file. (Debug builds search.)
        let slot = self.slot(table, key);
        let has = |slot: Option<&Slot>| slot.is_some_and(|s| s.value.is_some());
        if has(slot) || (slot.is_none() && has(self.frozen_slot(table, key))) {
            return Err(StoreError::Backend(format!(
                "put_absent of a key that {} has",
                table.name()
            )));
        }
        let in_file = slot.is_some_and(|s| s.in_file);
        self.add_unsearched(table, key, value, in_file, "put_absent")
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        self.set(table, key, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemStore, read};

    /// Writes through the store's queue and waits, without a runtime.
    fn write_sync(
        store: &RedbStore,
        work: impl FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + Send + 'static,
    ) -> std::sync::mpsc::Receiver<Result<(), StoreError>> {
        let (tx, rx) = std::sync::mpsc::channel();
        store.write(WriteJob::new(work, move |r| {
            let _ = tx.send(r);
        }));
        rx
    }

    #[test]
    fn batches_commit_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            let waits: Vec<_> = (0u64..50)
                .map(|i| {
                    write_sync(&store, move |txn| {
                        txn.put(Table::Meta, &i.to_be_bytes(), b"v")
                    })
                })
                .collect();
            for w in waits {
                w.recv().unwrap().unwrap();
            }
            store.close();
            let after = write_sync(&store, |_| Ok(()));
            assert_eq!(after.recv().unwrap(), Err(StoreError::Closed));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let store = RedbStore::open(&path).unwrap();
        let all = read(&store, |txn| {
            txn.range(Table::Meta, &[], &[0xFF; 9], false, 1000)
        })
        .unwrap();
        assert_eq!(all.len(), 50);
        let last_two = read(&store, |txn| {
            txn.range(Table::Meta, &[], &[0xFF; 9], true, 2)
        })
        .unwrap();
        assert_eq!(last_two[0].0, 49u64.to_be_bytes());
        assert_eq!(last_two[1].0, 48u64.to_be_bytes());
        assert_eq!(read(&store, |txn| txn.len(Table::Meta)).unwrap(), 50);
    }

    #[test]
    fn a_failing_job_does_not_fail_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        // Hold the writer busy so that the three jobs are committed as one batch.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let hold_rx = Mutex::new(hold_rx);
        let first = write_sync(&store, move |_| {
            let _ = hold_rx.lock().map(|rx| rx.recv());
            Ok(())
        });
        let good = write_sync(&store, |txn| txn.put(Table::Meta, b"good", b"1"));
        let bad = write_sync(&store, |txn| {
            txn.put(Table::Meta, b"bad", b"1")?;
            Err(StoreError::Backend("boom".into()))
        });
        let also_good = write_sync(&store, |txn| txn.put(Table::Meta, b"also", b"1"));
        hold_tx.send(()).unwrap();
        // The batch fails and each job is run again alone: the hold must not block then.
        drop(hold_tx);
        first.recv().unwrap().unwrap();
        good.recv().unwrap().unwrap();
        assert_eq!(bad.recv().unwrap(), Err(StoreError::Backend("boom".into())));
        also_good.recv().unwrap().unwrap();
        let (g, b, a) = read(&store, |txn| {
            Ok((
                txn.get(Table::Meta, b"good")?,
                txn.get(Table::Meta, b"bad")?,
                txn.get(Table::Meta, b"also")?,
            ))
        })
        .unwrap();
        assert!(g.is_some() && a.is_some());
        assert!(b.is_none(), "the failed job's write was rolled back");
    }

    /// One step of a job in the model test.
    #[derive(Debug, Clone)]
    enum Op {
        Put(bool, u8, u8),
        Delete(bool, u8),
        /// An insert of a key no record ever had (numbered by `fresh_keys`), as relays write
        /// the records of a new message number.
        Insert(bool, [u8; 2]),
        /// A delete of one of those keys: `back` inserts before the latest.
        DeleteFresh(bool, u8),
        /// A delete of one of those keys, once numbered.
        DeleteKey(bool, [u8; 2]),
        Get(bool, u8),
        /// A read, then (if it found nothing) a `put_absent`, as a relay writes its sent id.
        PutIfAbsent(bool, u8, u8),
        Range(bool, u8, u8, bool, usize),
        Count(bool, u8, u8, usize),
        Len(bool),
        Fail,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (any::<bool>(), 0..12_u8, any::<u8>()).prop_map(|(t, k, v)| Op::Put(t, k, v)),
            3 => (any::<bool>(), 0..12_u8).prop_map(|(t, k)| Op::Delete(t, k)),
            2 => any::<bool>().prop_map(|t| Op::Insert(t, [0; 2])),
            2 => (any::<bool>(), 0..4_u8).prop_map(|(t, back)| Op::DeleteFresh(t, back)),
            1 => (any::<bool>(), 0..12_u8).prop_map(|(t, k)| Op::Get(t, k)),
            2 => (any::<bool>(), 0..12_u8, any::<u8>()).prop_map(|(t, k, v)| Op::PutIfAbsent(t, k, v)),
            1 => (any::<bool>(), 0..13_u8, 0..13_u8, any::<bool>(), 0..6_usize)
                .prop_map(|(t, a, b, r, l)| Op::Range(t, a, b, r, l)),
            1 => (any::<bool>(), 0..13_u8, 0..13_u8, 0..6_usize)
                .prop_map(|(t, a, b, l)| Op::Count(t, a, b, l)),
            1 => any::<bool>().prop_map(Op::Len),
            1 => Just(Op::Fail),
        ]
    }

    /// Gives each insert a key of its own (`[200, n]`, after every other op's key), and each
    /// delete of a fresh key the key of an earlier insert.
    fn fresh_keys(rounds: &mut [Vec<Vec<Op>>]) {
        let mut next = 0_u8;
        for op in rounds.iter_mut().flatten().flatten() {
            match *op {
                Op::Insert(t, _) => {
                    *op = Op::Insert(t, [200, next]);
                    next += 1;
                }
                Op::DeleteFresh(t, back) => {
                    *op = Op::DeleteKey(t, [200, next.saturating_sub(back + 1)]);
                }
                _ => {}
            }
        }
    }

    fn table(inbox: bool) -> Table {
        if inbox { Table::Inbox } else { Table::Meta }
    }

    /// Runs `ops` in `txn`, noting what each read saw.
    fn apply(txn: &mut dyn WriteTxn, ops: &[Op], seen: &mut Vec<String>) -> Result<(), StoreError> {
        for op in ops {
            let note = match *op {
                Op::Put(t, k, v) => format!("{:?}", txn.put(table(t), &[k], &[v; 3])),
                Op::Delete(t, k) => format!("{:?}", txn.delete(table(t), &[k])),
                Op::Insert(t, k) => format!("{:?}", txn.insert(table(t), &k, &[k[1]; 2])),
                Op::DeleteFresh(..) => unreachable!("numbered by fresh_keys"),
                Op::DeleteKey(t, k) => format!("{:?}", txn.delete(table(t), &k)),
                Op::Get(t, k) => {
                    // Read in place too: the same value as the copy.
                    let mut borrowed = None;
                    txn.get_with(table(t), &[k], &mut |v| {
                        borrowed = Some(v.map(<[u8]>::to_vec))
                    })?;
                    let got = txn.get(table(t), &[k]);
                    assert_eq!(
                        got.as_ref().ok(),
                        borrowed.as_ref(),
                        "get_with and get disagree"
                    );
                    format!("{got:?}")
                }
                Op::PutIfAbsent(t, k, v) => match txn.get(table(t), &[k])? {
                    Some(had) => format!("had {had:?}"),
                    None => format!("{:?}", txn.put_absent(table(t), &[k], &[v; 2])),
                },
                Op::Range(t, a, b, r, l) => format!("{:?}", txn.range(table(t), &[a], &[b], r, l)),
                Op::Count(t, a, b, l) => format!("{:?}", txn.count(table(t), &[a], &[b], l)),
                Op::Len(t) => format!("{:?}", txn.len(table(t))),
                Op::Fail => return Err(StoreError::Backend("the job gives up".into())),
            };
            seen.push(note);
        }
        Ok(())
    }

    /// Queues every job on `store` at once (so that they share batches), then waits; returns
    /// each job's outcome and what its reads saw, then what a reader sees of both tables.
    fn run_jobs(store: &dyn Store, jobs: &[Vec<Op>]) -> Vec<String> {
        let waits: Vec<_> = jobs
            .iter()
            .map(|ops| {
                let ops = ops.clone();
                let seen = Arc::new(Mutex::new(Vec::new()));
                let (tx, rx) = std::sync::mpsc::channel();
                let mine = Arc::clone(&seen);
                store.write(WriteJob::new(
                    move |txn| {
                        let mut notes = Vec::new();
                        let result = apply(txn, &ops, &mut notes);
                        *mine.lock().unwrap() = notes;
                        result
                    },
                    move |r| {
                        let _ = tx.send(r);
                    },
                ));
                (rx, seen)
            })
            .collect();
        let mut out = Vec::new();
        for (rx, seen) in waits {
            let result = rx.recv().unwrap();
            out.push(format!("{result:?} {:?}", seen.lock().unwrap()));
        }
        for inbox in [false, true] {
            let t = table(inbox);
            let (all, len, some) = read(store, |txn| {
                Ok((
                    txn.range(t, &[], &[0xFF], false, 100)?,
                    txn.len(t)?,
                    (
                        txn.count(t, &[2], &[9], 3)?,
                        txn.range(t, &[1], &[8], true, 2)?,
                    ),
                ))
            })
            .unwrap();
            out.push(format!("{all:?} {len} {some:?}"));
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 48,
            // Nothing written to the source tree.
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// The layered store answers every read, inside jobs and after them, as the plain
        /// in-memory store does, across batches, failed jobs, flushes and a reopen.
        #[test]
        fn behaves_like_the_memory_store(
            mut rounds in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(op(), 0..8), 1..6),
                1..5,
            ),
            overlay_bytes in proptest::prop_oneof![proptest::strategy::Just(0_usize), 200..2_000_usize, proptest::strategy::Just(1 << 20)],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.redb");
            fresh_keys(&mut rounds);
            let model = MemStore::new();
            let mut store = RedbStore::open_with_limits(&path, 1 << 20, overlay_bytes).unwrap();
            for (n, jobs) in rounds.iter().enumerate() {
                proptest::prop_assert_eq!(run_jobs(&store, jobs), run_jobs(&model, jobs), "round {}", n);
                if n == 1 {
                    store.close();
                    drop(store);
                    store = RedbStore::open_with_limits(&path, 1 << 20, overlay_bytes).unwrap();
                }
            }
        }
    }

    /// Copies the store's files as a crash would leave them (the overlay not yet in the
    /// database file), while the store is still open.
    fn crash_copy(store: &RedbStore, to: &Path) {
        std::fs::copy(store.path(), to).unwrap();
        std::fs::copy(store.log_path(), log_path(to)).unwrap();
        let old = wal::old_path(&store.log_path());
        if old.exists() {
            std::fs::copy(old, wal::old_path(&log_path(to))).unwrap();
        }
    }

    #[test]
    fn a_crash_loses_no_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        for i in 0_u64..20 {
            write_sync(&store, move |txn| {
                txn.put(Table::Inbox, &i.to_be_bytes(), b"waiting")?;
                if i % 2 == 1 {
                    txn.delete(Table::Inbox, &(i - 1).to_be_bytes())?;
                }
                Ok(())
            })
            .recv()
            .unwrap()
            .unwrap();
        }
        // Nothing was flushed: the file has none of it, the log all of it.
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&store, &crashed);
        assert!(std::fs::metadata(log_path(&crashed)).unwrap().len() > 20 * 8);
        // A torn record after the last one, as a crash in the middle of an append leaves
        // (the rest of the file is the zeros it was grown by).
        let mut bytes = std::fs::read(log_path(&crashed)).unwrap();
        let end = usize::try_from(super::super::wal::decode(&bytes).unwrap().valid_len).unwrap();
        assert!(bytes.len() > end + 9 && bytes[end..].iter().all(|&b| b == 0));
        bytes[end..end + 9].copy_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
        std::fs::write(log_path(&crashed), &bytes).unwrap();
        let reopened = RedbStore::open(&crashed).unwrap();
        let keys: Vec<u64> = read(&reopened, |txn| {
            txn.range(Table::Inbox, &[], &[0xFF], false, 100)
        })
        .unwrap()
        .into_iter()
        .map(|(k, _)| u64::from_be_bytes(k.try_into().unwrap()))
        .collect();
        assert_eq!(keys, (0..20).filter(|i| i % 2 == 1).collect::<Vec<_>>());
        // The replay went into the file, and the log was emptied.
        assert_eq!(std::fs::metadata(reopened.log_path()).unwrap().len(), 16);
        assert_eq!(read(&reopened, |txn| txn.len(Table::Inbox)).unwrap(), 10);
    }

    #[test]
    fn a_damaged_log_is_an_error_not_a_loss() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        for i in 0_u8..3 {
            write_sync(&store, move |txn| txn.put(Table::Meta, &[i], &[i; 100]))
                .recv()
                .unwrap()
                .unwrap();
        }
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&store, &crashed);
        let mut bytes = std::fs::read(log_path(&crashed)).unwrap();
        bytes[16 + 4] ^= 0xFF; // inside the first of three records
        std::fs::write(log_path(&crashed), &bytes).unwrap();
        let e = RedbStore::open(&crashed).unwrap_err().to_string();
        assert!(
            e.contains("damaged at byte 16") && e.contains("move it aside"),
            "{e}"
        );
    }

    #[test]
    fn written_and_deleted_before_a_flush_never_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = RedbStore::open(&path).unwrap();
        write_sync(&store, |txn| txn.put(Table::Meta, b"kept", b"1"))
            .recv()
            .unwrap()
            .unwrap();
        for i in 0_u64..100 {
            write_sync(&store, move |txn| {
                txn.put(Table::Inbox, &i.to_be_bytes(), &[7; 1000])
            })
            .recv()
            .unwrap()
            .unwrap();
            write_sync(&store, move |txn| {
                txn.delete(Table::Inbox, &i.to_be_bytes()).map(drop)
            })
            .recv()
            .unwrap()
            .unwrap();
        }
        {
            let layers = store.shared.layers();
            let overlay = &layers.active;
            assert!(overlay.layer.table(Table::Inbox).is_empty());
            assert!(overlay.bytes() < 1000, "{}", overlay.bytes());
        }
        drop(store);
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(def(Table::Inbox)).unwrap().len().unwrap(), 0);
        assert_eq!(txn.open_table(def(Table::Meta)).unwrap().len().unwrap(), 1);
    }

    /// A `put_absent` after a read that found nothing knows without a second search whether
    /// the file has the key: here it does (the read found the job's own deletion), so the
    /// table's count stays right and the file ends with the new value.
    #[test]
    fn a_put_after_a_read_that_found_nothing_keeps_the_file_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let mut store = RedbStore::open(&path).unwrap();
        write_sync(&store, |txn| txn.put(Table::Meta, b"k", b"1"))
            .recv()
            .unwrap()
            .unwrap();
        // In the file.
        store.close();
        drop(store);
        store = RedbStore::open(&path).unwrap();
        let len = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&len);
        write_sync(&store, move |txn| {
            assert!(txn.delete(Table::Meta, b"k")?);
            assert_eq!(txn.get(Table::Meta, b"k")?, None);
            txn.put_absent(Table::Meta, b"k", b"2")?;
            *seen.lock().unwrap() = Some(txn.len(Table::Meta)?);
            Ok(())
        })
        .recv()
        .unwrap()
        .unwrap();
        assert_eq!(*len.lock().unwrap(), Some(1));
        store.close();
        drop(store);
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(def(Table::Meta)).unwrap();
        assert_eq!(table.len().unwrap(), 1);
        assert_eq!(table.get(&b"k"[..]).unwrap().unwrap().value(), b"2");
    }

    #[test]
    fn a_reader_sees_a_frozen_overlay_once_before_and_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        for i in 0_u8..5 {
            write_sync(&store, move |txn| txn.put(Table::Inbox, &[i], b"x"))
                .recv()
                .unwrap()
                .unwrap();
        }
        write_sync(&store, |txn| txn.delete(Table::Inbox, &[0]).map(drop))
            .recv()
            .unwrap()
            .unwrap();
        let seen = |store: &RedbStore| {
            read(store, |txn| {
                Ok((
                    txn.len(Table::Inbox)?,
                    txn.range(Table::Inbox, &[], &[0xFF], false, 10)?.len(),
                ))
            })
            .unwrap()
        };
        assert_eq!(seen(&store), (4, 4));
        // The writer is idle: freeze the overlay as it does, and let the next writes go to a
        // new one.
        let frozen = {
            let mut layers = store.shared.layers_mut();
            let number = layers.active.number();
            let active = std::mem::replace(&mut layers.active, Overlay::numbered(number + 1));
            let frozen = Arc::new(active);
            layers.frozen = Some(Arc::clone(&frozen));
            frozen
        };
        assert_eq!(seen(&store), (4, 4));
        write_sync(&store, |txn| {
            txn.delete(Table::Inbox, &[1])?;
            txn.put(Table::Inbox, &[7], b"x")
        })
        .recv()
        .unwrap()
        .unwrap();
        assert_eq!(seen(&store), (4, 4));
        // Commit the frozen overlay as the flusher does, and stop before it is dropped: a
        // reader's snapshot now has it, and must not count it again.
        commit_layer(&store.shared.db, &frozen.layer, frozen.number()).unwrap();
        assert_eq!(seen(&store), (4, 4));
        store.shared.layers_mut().frozen = None;
        assert_eq!(seen(&store), (4, 4));
        // And after a reopen.
        let path = store.path().to_owned();
        drop(store);
        assert_eq!(seen(&RedbStore::open(&path).unwrap()), (4, 4));
    }

    #[test]
    fn a_flush_writes_each_put_and_removal_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&dir.path().join("s.redb"), 1 << 20).unwrap();
        let put = |layer: &mut Layer, key: u64, value: &[u8]| {
            let slot = Slot {
                value: Some(value.to_vec()),
                in_file: false,
            };
            layer.insert(Table::Meta, &key.to_be_bytes(), slot);
        };
        let mut first = Layer::default();
        for key in [10, 20, 30] {
            put(&mut first, key, b"old");
        }
        commit_layer(&db, &first, 1).unwrap();
        // Before the file's last key: a removal, an insert, two overwrites (one of the last
        // key). Past it: a removal of a key never written, and 2 MB of new keys in order.
        let mut second = Layer::default();
        let removed = Slot {
            value: None,
            in_file: true,
        };
        second.insert(Table::Meta, &10_u64.to_be_bytes(), removed.clone());
        second.insert(Table::Meta, &40_u64.to_be_bytes(), removed);
        put(&mut second, 15, b"new");
        put(&mut second, 20, b"new");
        put(&mut second, 30, b"new");
        let appended = 31..20_031_u64;
        for key in appended.clone().filter(|&k| k != 40) {
            put(&mut second, key, &[key as u8; 100]);
        }
        commit_layer(&db, &second, 2).unwrap();

        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = [15, 20, 30]
            .map(|k: u64| (k.to_be_bytes().to_vec(), b"new".to_vec()))
            .to_vec();
        expected.extend(
            appended
                .filter(|&k| k != 40)
                .map(|k| (k.to_be_bytes().to_vec(), vec![k as u8; 100])),
        );
        let mut file = FileRead::begin(&db).unwrap();
        let found: Vec<_> = file
            .entries(Table::Meta, &[], &[0xFF; 9], false, true)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            found == expected,
            "{} entries, {} expected",
            found.len(),
            expected.len()
        );
        assert_eq!(file.len(Table::Meta).unwrap(), expected.len() as u64);
        assert_eq!(file.flushed().unwrap(), 2);
    }

    #[test]
    fn a_file_in_redb_2s_format_is_upgraded_with_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            // As wa-server built on redb 2.6 left it: the v2 format, two writes flushed.
            let db = redb2::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(redb2::TableDefinition::<&[u8], &[u8]>::new(
                Table::Accounts.name(),
            ))
            .unwrap()
            .insert(b"15550001".as_slice(), b"alice".as_slice())
            .unwrap();
            txn.open_table(redb2::TableDefinition::<&str, u64>::new("wa_wal_state"))
                .unwrap()
                .insert("flushed", 2)
                .unwrap();
            txn.commit().unwrap();
        }
        // redb 4 alone refuses it.
        assert!(matches!(
            Database::open(&path),
            Err(redb::DatabaseError::UpgradeRequired(2))
        ));
        for _ in 0..2 {
            let store = RedbStore::open(&path).unwrap();
            let got = read(&store, |txn| txn.get(Table::Accounts, b"15550001")).unwrap();
            assert_eq!(got.as_deref(), Some(b"alice".as_slice()));
            assert_eq!(read(&store, |txn| txn.len(Table::Messages)).unwrap(), 0);
            store.close();
        }
    }

    #[test]
    fn every_core_table_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        for table in Table::ALL {
            assert_eq!(read(&store, |txn| txn.len(table)).unwrap(), 0, "{table:?}");
        }
    }
}
