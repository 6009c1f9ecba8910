//! The default store: one `redb` file, with group commit.
//!
//! `redb` is an embedded, pure-Rust, crash-safe database: copy-on-write B-trees, ACID
//! transactions, and commits that are durable (fsync'd) when they return. One writer thread
//! takes the queued [`WriteJob`]s, runs as many as are waiting (up to [`MAX_BATCH`]) in one
//! transaction and commits once, so concurrent senders share an fsync instead of queueing for
//! one each. If a batch fails, each of its jobs is retried alone, so one bad job cannot fail
//! another.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};

use super::{Entry, ReadTxn, Store, StoreError, Table, WriteJob, WriteTxn};

/// The most jobs committed together in one transaction (one fsync).
pub const MAX_BATCH: usize = 256;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
type Guard<'a> = redb::AccessGuard<'a, &'static [u8]>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A [`Store`] in one `redb` file (created with mode 0600: it holds session keys).
pub struct RedbStore {
    db: Arc<Database>,
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
    /// Opens the store at `path`, creating it (and its tables) if needed.
    ///
    /// # Errors
    /// When the file cannot be created or opened, is not a redb database, or is in use by
    /// another process.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        RedbStore::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store at `path` with a page cache of at most `cache_bytes` (the server's
    /// memory grows with the database up to it; redb's own default is 1 GiB).
    ///
    /// # Errors
    /// As [`RedbStore::open`].
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, StoreError> {
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
        let db = Arc::new(opened?);
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let writer_db = Arc::clone(&db);
        let writer = std::thread::Builder::new()
            .name("wa-server-store".to_owned())
            .spawn(move || writer_loop(&writer_db, &rx))
            .map_err(backend)?;
        Ok(RedbStore {
            db,
            path: path.to_owned(),
            queue: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let db = redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(backend)?;
    let txn = db.begin_write().map_err(backend)?;
    for table in Table::ALL {
        txn.open_table(def(table)).map_err(backend)?;
    }
    txn.commit().map_err(backend)?;
    Ok(db)
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(db: &Database, rx: &mpsc::Receiver<WriteJob>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(db, batch);
    }
}

fn run_batch(db: &Database, mut batch: Vec<WriteJob>) {
    let result = commit(db, &mut batch);
    match result {
        Ok(()) => {
            for job in batch {
                job.finish(Ok(()));
            }
        }
        Err(e) if batch.len() == 1 => {
            tracing::warn!(error = %e, "store write failed");
            for job in batch {
                job.finish(Err(e.clone()));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, jobs = batch.len(), "batch failed: retrying one by one");
            for job in batch {
                run_batch(db, vec![job]);
            }
        }
    }
}

fn commit(db: &Database, batch: &mut [WriteJob]) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    {
        let mut w = RedbWrite::new(&txn);
        for job in batch.iter_mut() {
            job.run(&mut w)?;
        }
    }
    // Dropping `txn` without committing (on an error above) aborts it.
    txn.commit().map_err(backend)
}

impl Store for RedbStore {
    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let mut r = RedbRead {
            txn,
            tables: std::array::from_fn(|_| None),
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

struct RedbRead {
    txn: ReadTransaction,
    tables: [Option<ReadOnlyTable<&'static [u8], &'static [u8]>>; Table::ALL.len()],
}

impl RedbRead {
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
}

impl ReadTxn for RedbRead {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.table(table)?;
        Ok(t.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let t = self.table(table)?;
        collect(t, from, to, reverse, limit)
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        self.table(table)?.len().map_err(backend)
    }

    fn count(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<usize, StoreError> {
        let t = self.table(table)?;
        count(t, from, to, limit)
    }
}

/// Counts keys only: no value is copied.
fn count<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    from: &[u8],
    to: &[u8],
    limit: usize,
) -> Result<usize, StoreError> {
    if from >= to || limit == 0 {
        return Ok(0);
    }
    let mut n = 0;
    for item in t.range::<&[u8]>(from..to).map_err(backend)?.take(limit) {
        item.map_err(backend)?;
        n += 1;
    }
    Ok(n)
}

fn collect<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    from: &[u8],
    to: &[u8],
    reverse: bool,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    if from >= to || limit == 0 {
        return Ok(Vec::new());
    }
    let range = t.range::<&[u8]>(from..to).map_err(backend)?;
    let mut out = Vec::new();
    let mut push = |item: Result<(Guard<'_>, Guard<'_>), redb::StorageError>| {
        let (k, v) = item.map_err(backend)?;
        out.push((k.value().to_vec(), v.value().to_vec()));
        Ok::<(), StoreError>(())
    };
    if reverse {
        for item in range.rev().take(limit) {
            push(item)?;
        }
    } else {
        for item in range.take(limit) {
            push(item)?;
        }
    }
    Ok(out)
}

struct RedbWrite<'t> {
    txn: &'t WriteTransaction,
    tables: [Option<redb::Table<'t, &'static [u8], &'static [u8]>>; Table::ALL.len()],
}

impl<'t> RedbWrite<'t> {
    fn new(txn: &'t WriteTransaction) -> RedbWrite<'t> {
        RedbWrite {
            txn,
            tables: std::array::from_fn(|_| None),
        }
    }

    fn table(
        &mut self,
        table: Table,
    ) -> Result<&mut redb::Table<'t, &'static [u8], &'static [u8]>, StoreError> {
        let slot = self
            .tables
            .get_mut(table.index())
            .ok_or(StoreError::Closed)?;
        if slot.is_none() {
            *slot = Some(self.txn.open_table(def(table)).map_err(backend)?);
        }
        slot.as_mut().ok_or(StoreError::Closed)
    }
}

impl ReadTxn for RedbWrite<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.table(table)?;
        Ok(t.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
    }

    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let t = self.table(table)?;
        collect(&*t, from, to, reverse, limit)
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        self.table(table)?.len().map_err(backend)
    }

    fn count(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<usize, StoreError> {
        let t = self.table(table)?;
        count(&*t, from, to, limit)
    }
}

impl WriteTxn for RedbWrite<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.table(table)?.insert(key, value).map_err(backend)?;
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.table(table)?.remove(key).map_err(backend)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::read;

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

    #[test]
    fn every_core_table_exists() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        for table in Table::ALL {
            assert_eq!(read(&store, |txn| txn.len(table)).unwrap(), 0, "{table:?}");
        }
    }
}
