//! Storage: the core's [`Store`] trait (ordered key-value tables, snapshot reads, durable write
//! jobs), re-exported; its default backend, [`RedbStore`] (one node); and [`PgStore`], the
//! store a cluster's nodes share (PostgreSQL).
//!
//! **Durability contract** (the core's): when a write job's `done` callback gets `Ok(())`, every
//! write of the job survives a crash of the process, and for [`RedbStore`] of the machine (the
//! commit is fsync'd). The server answers "stored" (ack 1) only after that.

mod overlay;
pub mod postgres;
mod redb_store;
pub mod wal;

pub use self::postgres::{PgStore, Writers};
pub use self::redb_store::{DEFAULT_CACHE_BYTES, DEFAULT_OVERLAY_BYTES, MAX_BATCH, RedbStore};
pub use wa_server_core::store::{
    Entry, Indirect, KeyBuf, KeyReader, MemStore, ReadTxn, Store, StoreError, Table, WriteJob,
    WriteTxn, prefix_end, read,
};

/// Queues `work` as a write job and waits until it is durable (or failed).
pub(crate) async fn write<R: Send + 'static>(
    store: &dyn Store,
    mut work: impl FnMut(&mut dyn WriteTxn) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let filled = std::sync::Arc::clone(&slot);
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.write(WriteJob::new(
        move |txn| {
            let value = work(txn)?;
            if let Ok(mut slot) = filled.lock() {
                *slot = Some(value);
            }
            Ok(())
        },
        move |result| {
            let _ = tx.send(result);
        },
    ));
    match rx.await {
        Ok(Ok(())) => slot
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .ok_or(StoreError::Closed),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError::Closed),
    }
}
