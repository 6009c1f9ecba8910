//! An in-memory [`Store`]: every table a `BTreeMap`, every write job run at once on the caller's
//! thread, atomically (an undo log rolls a failed job back). For tests and the in-memory harness;
//! nothing survives the process.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use super::{Entry, ReadTxn, Store, StoreError, Table, WriteJob, WriteTxn};

type Tables = Vec<BTreeMap<Vec<u8>, Vec<u8>>>;

/// An in-memory store.
///
/// ```
/// use wa_server_core::store::{self, MemStore, Store, Table, WriteJob};
///
/// let store = MemStore::new();
/// store.write(WriteJob::new(|txn| txn.put(Table::Meta, b"k", b"v"), |r| assert!(r.is_ok())));
/// let value = store::read(&store, |txn| txn.get(Table::Meta, b"k"))?;
/// assert_eq!(value.as_deref(), Some(&b"v"[..]));
/// # Ok::<(), wa_server_core::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct MemStore {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tables: Tables,
    closed: bool,
    commits: u64,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore {
            state: Mutex::new(State {
                tables: vec![BTreeMap::new(); Table::ALL.len()],
                closed: false,
                commits: 0,
            }),
        }
    }

    /// Runs `work` as a write job and returns what it computed (the job runs before
    /// [`Store::write`] returns): the crate's unit tests set up and inspect records with it.
    ///
    /// # Panics
    /// When the job fails: a failed test.
    #[cfg(test)]
    pub(crate) fn write_now<R: Send + 'static>(
        &self,
        mut work: impl FnMut(&mut dyn super::WriteTxn) -> Result<R, StoreError> + Send + 'static,
    ) -> R {
        let slot = std::sync::Arc::new(Mutex::new(None));
        let filled = std::sync::Arc::clone(&slot);
        self.write(super::WriteJob::new(
            move |txn| {
                *filled.lock().unwrap() = Some(work(txn)?);
                Ok(())
            },
            |r| r.unwrap(),
        ));
        let out = slot.lock().unwrap().take();
        out.unwrap()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every key and value of every table, concatenated: what a file-backed store would have on
    /// disk, for tests that look for what must not be stored.
    pub fn dump(&self) -> Vec<u8> {
        let state = self.lock();
        let mut out = Vec::new();
        for (table, map) in Table::ALL.iter().zip(&state.tables) {
            out.extend_from_slice(table.name().as_bytes());
            for (k, v) in map {
                out.extend_from_slice(k);
                out.extend_from_slice(v);
            }
        }
        out
    }

    /// Entries per table (for tests that check what is kept).
    pub fn counts(&self) -> Vec<(Table, usize)> {
        let state = self.lock();
        Table::ALL
            .iter()
            .copied()
            .zip(state.tables.iter().map(BTreeMap::len))
            .collect()
    }

    /// Committed write jobs so far.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }
}

struct Txn<'a> {
    tables: &'a mut Tables,
    undo: Vec<(Table, Vec<u8>, Option<Vec<u8>>)>,
}

fn table_of(tables: &Tables, table: Table) -> Result<&BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
    tables
        .get(table.index())
        .ok_or_else(|| StoreError::Backend(format!("no table {}", table.name())))
}

fn range_of(
    map: &BTreeMap<Vec<u8>, Vec<u8>>,
    from: &[u8],
    to: &[u8],
    reverse: bool,
    limit: usize,
) -> Vec<Entry> {
    if from >= to {
        return Vec::new();
    }
    let range = map.range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
    let pairs = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
    if reverse {
        range.rev().take(limit).map(pairs).collect()
    } else {
        range.take(limit).map(pairs).collect()
    }
}

impl ReadTxn for Txn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(table_of(self.tables, table)?.get(key).cloned())
    }

    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(range_of(
            table_of(self.tables, table)?,
            from,
            to,
            reverse,
            limit,
        ))
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        Ok(table_of(self.tables, table)?.len() as u64)
    }
}

impl WriteTxn for Txn<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let map = self
            .tables
            .get_mut(table.index())
            .ok_or_else(|| StoreError::Backend(format!("no table {}", table.name())))?;
        let old = map.insert(key.to_vec(), value.to_vec());
        self.undo.push((table, key.to_vec(), old));
        Ok(())
    }

    /// Refuses a key that a record has (the caller's bug, which other stores do not check
    /// for): the reference store catches it in every test that uses it.
    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.get(table, key)?.is_some() {
            return Err(StoreError::Backend(format!(
                "insert of a key that {} already has",
                table.name()
            )));
        }
        self.put(table, key, value)
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        let map = self
            .tables
            .get_mut(table.index())
            .ok_or_else(|| StoreError::Backend(format!("no table {}", table.name())))?;
        let old = map.remove(key);
        let was = old.is_some();
        if was {
            self.undo.push((table, key.to_vec(), old));
        }
        Ok(was)
    }
}

impl Txn<'_> {
    fn roll_back(mut self) {
        while let Some((table, key, old)) = self.undo.pop() {
            if let Some(map) = self.tables.get_mut(table.index()) {
                match old {
                    Some(value) => map.insert(key, value),
                    None => map.remove(&key),
                };
            }
        }
    }
}

struct Snapshot<'a>(&'a Tables);

impl ReadTxn for Snapshot<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(table_of(self.0, table)?.get(key).cloned())
    }

    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(range_of(table_of(self.0, table)?, from, to, reverse, limit))
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        Ok(table_of(self.0, table)?.len() as u64)
    }
}

impl Store for MemStore {
    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let state = self.lock();
        if state.closed {
            return Err(StoreError::Closed);
        }
        work(&mut Snapshot(&state.tables))
    }

    fn write(&self, mut job: WriteJob) {
        let result = {
            let mut state = self.lock();
            if state.closed {
                Err(StoreError::Closed)
            } else {
                let mut txn = Txn {
                    tables: &mut state.tables,
                    undo: Vec::new(),
                };
                match job.run(&mut txn) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        txn.roll_back();
                        Err(e)
                    }
                }
                .inspect(|()| state.commits += 1)
            }
        };
        // Outside the lock: the callback may read the store.
        job.finish(result);
    }

    fn close(&self) {
        self.lock().closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_dropped_unrun_reports_the_store_closed() {
        let (tx, rx) = std::sync::mpsc::channel();
        let job = WriteJob::new(|_| Ok(()), move |r| tx.send(r).unwrap());
        drop(job);
        assert!(matches!(rx.try_recv(), Ok(Err(StoreError::Closed))));
        // Finished, it reports once.
        let (tx, rx) = std::sync::mpsc::channel();
        MemStore::new().write(WriteJob::new(|_| Ok(()), move |r| tx.send(r).unwrap()));
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_failed_job_leaves_nothing() {
        let store = MemStore::new();
        store.write(WriteJob::new(
            |txn| txn.put(Table::Meta, b"a", b"1"),
            |r| assert!(r.is_ok()),
        ));
        store.write(WriteJob::new(
            |txn| {
                txn.put(Table::Meta, b"a", b"2")?;
                txn.put(Table::Meta, b"b", b"2")?;
                txn.delete(Table::Meta, b"a")?;
                Err(StoreError::Backend("boom".into()))
            },
            |r| assert!(r.is_err()),
        ));
        let all = super::super::read(&store, |txn| {
            txn.range(Table::Meta, b"", b"\xff", false, 10)
        })
        .unwrap();
        assert_eq!(all, vec![(b"a".to_vec(), b"1".to_vec())]);
        assert_eq!(store.commits(), 1);
    }

    #[test]
    fn tables_are_indexed_in_declaration_order() {
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(table.index(), i, "{}", table.name());
        }
    }
}
