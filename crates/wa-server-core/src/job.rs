//! Store jobs: the transactions the core asks the driver to run, and what they produced.
//!
//! A connection never touches the store. When it needs to read or write, it emits
//! [`Action::Job`](crate::Action::Job) with a [`Job`]: a closure over a transaction that returns
//! an [`Outcome`]. The driver runs it (the embedded store on its writer thread, grouped with
//! others into one fsync'd commit; a networked store with retries) and hands the outcome back to
//! the connection that asked (`handle_job`). Outcomes describe themselves, so a connection needs
//! no table of what it asked for.
//!
//! **Architecture Invariant:** a connection handles its jobs' outcomes in the order it issued
//! the jobs ([`Issued`]), whatever order they finish in. A read-only job runs on a snapshot
//! beside the store's writer and can finish after a write job asked for later (a phone's queue,
//! read at login, and its link request just after): what the connection says for each then
//! still goes out in the order of the requests that caused it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::store::{Indirect, ReadTxn, Store, StoreError, Table, WriteJob, WriteTxn};

/// Identifies a job of one connection, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// The jobs one connection issued, and their outcomes held until those of every job issued
/// before them were handled (the module's invariant).
#[derive(Default)]
pub(crate) struct Issued {
    /// The last job issued (ids start at 1).
    last: u64,
    /// The last job whose outcome was handed on.
    handled: u64,
    /// Outcomes that came before an earlier job's. At most as many as jobs in flight.
    early: BTreeMap<u64, Result<Outcome, StoreError>>,
}

impl Issued {
    /// The id of a new job.
    pub(crate) fn issue(&mut self) -> JobId {
        self.last += 1;
        JobId(self.last)
    }

    /// Takes the outcome of job `id`: hands it back if its turn has come (then ask
    /// [`Issued::next`] for the ones it held up), or holds it. An id never issued, or handled
    /// already (a driver's mistake), is dropped and logged.
    pub(crate) fn arrived(
        &mut self,
        id: JobId,
        result: Result<Outcome, StoreError>,
    ) -> Option<(JobId, Result<Outcome, StoreError>)> {
        if id.0 == self.handled + 1 {
            self.handled = id.0;
            return Some((id, result));
        }
        if id.0 <= self.handled || id.0 > self.last || self.early.contains_key(&id.0) {
            tracing::error!(job = id.0, "an outcome for no job in flight: dropped");
            return None;
        }
        self.early.insert(id.0, result);
        None
    }

    /// Jobs issued whose outcomes were not handled yet: those running and those held. A
    /// driver bounds this (not only the jobs running) to bound what is held.
    pub(crate) fn in_flight(&self) -> u64 {
        self.last - self.handled
    }

    /// The next held outcome whose turn has come.
    pub(crate) fn next(&mut self) -> Option<(JobId, Result<Outcome, StoreError>)> {
        let entry = self.early.first_entry()?;
        if *entry.key() != self.handled + 1 {
            return None;
        }
        let (id, result) = entry.remove_entry();
        self.handled = id;
        Some((JobId(id), result))
    }
}

type ReadWork = dyn FnMut(&mut dyn ReadTxn) -> Result<Outcome, StoreError> + Send;
type WriteWork = dyn FnMut(&mut dyn WriteTxn) -> Result<Outcome, StoreError> + Send;

enum Work {
    Read(Box<ReadWork>),
    Write(Box<WriteWork>),
}

/// A transaction to run: read-only (any snapshot will do) or read-write (atomic and durable
/// before its outcome is reported). The closure may run more than once (a backend that retries
/// a conflicting transaction), so it leaves no trace but its writes.
pub struct Job {
    name: &'static str,
    work: Work,
    /// Names the records the work reads first ([`WriteJob::reading`] and
    /// [`WriteJob::reading_through`]), for a store that [reads ahead](Store::reads_ahead).
    reads: Option<Box<Reads>>,
    /// How many message numbers the work takes at most ([`WriteJob::taking_numbers`]).
    numbers: usize,
}

/// What names the records a job reads first: directly, and through other records.
type Reads = dyn FnOnce() -> (Vec<(Table, Vec<u8>)>, Vec<Indirect>) + Send;

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("read_only", &self.is_read_only())
            .finish()
    }
}

impl Job {
    pub(crate) fn read(
        name: &'static str,
        work: impl FnMut(&mut dyn ReadTxn) -> Result<Outcome, StoreError> + Send + 'static,
    ) -> Job {
        Job {
            name,
            work: Work::Read(Box::new(work)),
            reads: None,
            numbers: 0,
        }
    }

    pub(crate) fn write(
        name: &'static str,
        work: impl FnMut(&mut dyn WriteTxn) -> Result<Outcome, StoreError> + Send + 'static,
    ) -> Job {
        Job {
            name,
            work: Work::Write(Box::new(work)),
            reads: None,
            numbers: 0,
        }
    }

    /// Names the records the work reads first, directly and through other records, for a
    /// store that reads a batch's at once ([`WriteJob::reading`]): `reads` runs only for such
    /// a store.
    #[must_use]
    pub(crate) fn reading(
        mut self,
        reads: impl FnOnce() -> (Vec<(Table, Vec<u8>)>, Vec<Indirect>) + Send + 'static,
    ) -> Job {
        self.reads = Some(Box::new(reads));
        self
    }

    /// Says that the work takes up to `n` message numbers, for a store that reads a batch's
    /// records at once ([`WriteJob::taking_numbers`]).
    #[must_use]
    pub(crate) fn taking_numbers(mut self, n: usize) -> Job {
        self.numbers = n;
        self
    }

    /// What the job does, for logs and metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether it only reads (a snapshot is enough; it need not wait for the writer).
    pub fn is_read_only(&self) -> bool {
        matches!(self.work, Work::Read(_))
    }

    /// Runs the job in a write transaction (read-only jobs run there too).
    ///
    /// # Errors
    /// What the store or the job's own decoding of records returns.
    pub fn run(&mut self, txn: &mut dyn WriteTxn) -> Result<Outcome, StoreError> {
        match &mut self.work {
            Work::Read(work) => work(txn),
            Work::Write(work) => work(txn),
        }
    }

    /// Runs a read-only job in a snapshot.
    ///
    /// # Errors
    /// What the store returns; [`StoreError::Backend`] if the job writes.
    pub fn run_read(&mut self, txn: &mut dyn ReadTxn) -> Result<Outcome, StoreError> {
        match &mut self.work {
            Work::Read(work) => work(txn),
            Work::Write(_) => Err(StoreError::Backend(format!(
                "job {} writes: it needs a write transaction",
                self.name
            ))),
        }
    }
}

/// Runs `job` against `store` and calls `done` with its outcome: at once for a read-only job,
/// once durable for a write job (possibly on the store's thread).
pub fn execute(
    store: &dyn Store,
    mut job: Job,
    done: impl FnOnce(Result<Outcome, StoreError>) + Send + 'static,
) {
    if job.is_read_only() {
        let mut out = None;
        let result = store.read(&mut |txn| {
            out = Some(job.run_read(txn)?);
            Ok(())
        });
        done(result.and_then(|()| out.ok_or(StoreError::Closed)));
        return;
    }
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let filled = std::sync::Arc::clone(&slot);
    let reads = job.reads.take().filter(|_| store.reads_ahead());
    let numbers = job.numbers;
    let write = WriteJob::new(
        move |txn| {
            let outcome = job.run(txn)?;
            if let Ok(mut slot) = filled.lock() {
                *slot = Some(outcome);
            }
            Ok(())
        },
        move |result| {
            let outcome = result.and_then(|()| {
                slot.lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .ok_or(StoreError::Closed)
            });
            done(outcome);
        },
    );
    store.write(match reads {
        Some(reads) => {
            let (keys, through) = reads();
            write
                .reading(keys)
                .reading_through(through)
                .taking_numbers(numbers)
        }
        None => write,
    });
}

/// What a job produced. Opaque: the connection that asked reads it.
pub struct Outcome(pub(crate) crate::jobs::Done);

impl Outcome {
    /// For the periodic sweep: how many messages expired.
    pub fn swept_messages(&self) -> Option<u64> {
        match &self.0 {
            crate::jobs::Done::Swept { messages, .. } => Some(*messages),
            _ => None,
        }
    }

    /// For the periodic sweep: whether it stopped at its batch's limit with more expired
    /// (run it again).
    pub fn swept_more(&self) -> bool {
        matches!(&self.0, crate::jobs::Done::Swept { more: true, .. })
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Outcome").field(&self.0.name()).finish()
    }
}

/// Why a request was refused: an HTTP-like status and a reason the client can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status (400 malformed, 401 not authenticated, 403 not allowed, 404 unknown, 409
    /// conflict, 410 gone, 413 too large, 429 too many, 500 server error, 507 quota).
    pub status: u16,
    /// Why.
    pub reason: Cow<'static, str>,
}

impl Refusal {
    /// A refusal.
    pub fn new(status: u16, reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }

    pub(crate) fn bad_request(reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal::new(400, reason)
    }

    pub(crate) fn forbidden(reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal::new(403, reason)
    }

    pub(crate) fn not_found(reason: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal::new(404, reason)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::new(500, format!("store: {e}"))
    }
}
