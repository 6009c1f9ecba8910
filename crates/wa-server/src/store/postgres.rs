//! The cluster's store: the core's [`Store`] on PostgreSQL, shared by every node.
//!
//! **Why a blocking client on dedicated threads.** The [`Store`] trait is synchronous: a
//! job's closure calls `get` and `range` inline and decides what to write from what it read,
//! so a job holds one database connection for its whole run. Each connection is
//! `tokio-postgres`'s client with a single-threaded runtime of its own, waited on by the
//! store's thread (what the `postgres` crate does), without touching the server's runtime; and,
//! what the `postgres` crate cannot, it sends statements that need no answer in between in one
//! round trip (see below).
//!
//! **Layout.** Every store lives in one PostgreSQL *schema* (a name the caller gives; `public`
//! by default), so that tests and clusters side by side never see each other's data. The
//! schema holds one table `kv (tbl smallint, k bytea, v bytea, primary key (tbl, k))` (the
//! core's tables by their position in [`Table::ALL`]), a sequence for message numbers, and
//! `schema_migrations`. Migrations are the SQL files of `crates/wa-server/migrations/`,
//! compiled in, applied at open inside one transaction under an advisory lock (nodes starting
//! together apply them once); a schema migrated by a newer server is refused.
//!
//! **Isolation.** Write jobs run in `SERIALIZABLE` transactions: whatever several nodes do to
//! the same records, the outcome is that of some order of the jobs. By default
//! ([`Writers::Serialized`]) the nodes also take turns: a writer holds a session advisory lock
//! of the schema from before its transaction begins until after it commits, so the
//! transactions of a cluster never overlap and never conflict. The lock is sent with `BEGIN`
//! (PostgreSQL runs them in order, and the transaction's snapshot is taken by its first
//! query, after the lock), and given back in the round trip of the `COMMIT` (or `ROLLBACK`),
//! before the commit reaches the disk (see **Durability**). Concurrent serializable
//! transactions ([`Writers::Concurrent`]) are correct too, but PostgreSQL tracks their reads
//! by B-tree page: a receipt's scan of a message's devices and a relay's new entries meet on
//! the same leaf pages, so under load concurrent batches often conflict, and a conflicted
//! batch is run again job by job. Measured with three nodes (BENCHMARKS.md), taking turns
//! delivers 2.4 to 4.8 times as many messages with 16 and 64 clients, and about as many with
//! 4 (where conflicts were rare), at less CPU per message in both. The lock is the session's:
//! a node that dies gives it back with its connection; a writer's session stopped inside its
//! transaction ends after [`IDLE_IN_TRANSACTION`], one stopped outside after
//! [`IDLE_SESSION`], and one on a host that vanished after about 25 s (server-side TCP
//! keepalives). Session locks need a session per connection: no transaction-pooling proxy
//! (PgBouncer in transaction mode) may sit between the nodes and PostgreSQL. A serialization
//! failure (SQLSTATE 40001) or a deadlock (40P01) re-runs the job with a growing, jittered pause, for
//! up to [`CONFLICT_PATIENCE`], then reports [`StoreError::Conflict`]. A writer thread ([`WRITERS`])
//! with its own connection takes queued jobs in order and commits up to [`MAX_BATCH`] waiting
//! ones in one transaction (group commit: one commit, one WAL flush), with those queued while
//! it waited for the lock; if that batch fails for
//! any reason each of its jobs is run again alone, in order (with its own retries), so one
//! job's conflict or error never fails another. Reads run in `REPEATABLE READ READ ONLY` transactions (one snapshot)
//! on a small pool of connections ([`MAX_READERS`]).
//!
//! **Round trips.** Each `get`, `range` and `count` is a statement; puts and deletes are kept
//! in the transaction (its reads see them first) and sent in one statement with the commit
//! (`unnest` of arrays: an upsert, with the deletes and a plain insert of the keys the jobs
//! wrote as new, `insert` and `put_absent`, in `WITH`s; then `COMMIT` and the unlock,
//! without waiting in between), so a batch of jobs writes and commits in one round trip however
//! many records it touches: with its first reads, a batch is three round trips
//! ([`PgStore::round_trips`]), of which the lock is held for one and two halves. A transaction remembers what its `get`s answered (its
//! snapshot does not move, and its own writes update what it remembers): the jobs of a batch
//! read the same accounts, devices and counters, and read again they cost no statement. The
//! records a job announces with `prefetch` (an account's devices; a receipt's message, its
//! inbox entry, the counters) are read in one statement, and what the jobs of a batch name as
//! read first ([`WriteJob::reading`]: a relay's sender and recipient records, a receipt's sent
//! ids, counters, and message and inbox entry through them) in one statement for the batch,
//! after `BEGIN`. The message
//! numbers of the batch's jobs that say they take one ([`WriteJob::taking_numbers`]: a relay)
//! are taken in the same round trip as those reads (`nextval` over a `generate_series`, a
//! statement pipelined after the read); a job that takes one without saying so takes one for
//! each job left in the batch, in a statement of its own. Numbers a batch does not hand out
//! are skipped. A `delete` asks whether
//! the row exists, unless the transaction knows (its answer is part of the trait); `remove`
//! does not ask.
//!
//! Measured (BENCHMARKS.md, three nodes, 16 clients, all on one machine): a batch is 28 to
//! 40 jobs, and the cluster's writers hold the lock nearly all the time. PostgreSQL's own
//! time per batch (`log_min_duration_statement = 0`): the batch's reads 0.6 ms (about 75
//! keys and 60 through sent ids), its writes 0.45 ms, the rest under 0.1 ms; about 2.3 µs per
//! key read, the same whether the keys are looked up one by one in the statement or as one
//! `= ANY` array. On loopback the work PostgreSQL does for each record, not the round trips,
//! is the cluster's limit (fewer round trips and the flush after the unlock made the lock's
//! turns shorter, the copies per second within the noise). Between hosts each round trip
//! saved under the lock (two per batch) is a network round trip.
//!
//! **Plans.** A connection prepares its statements once, and PostgreSQL keeps a generic plan
//! of each, made when it was first run often enough: maybe while the table was nearly empty.
//! A plan that reads the whole table is the cheapest then, and stays as the table grows (a
//! delete of a batch's keys took 3 ms with 16,000 rows). Every statement finds its rows by the
//! primary key, so the store's sessions turn sequential scans off (`enable_seqscan = off`),
//! and the delete looks each key up, then deletes by row address.
//!
//! **Durability.** `done` gets `Ok(())` once the commit is in PostgreSQL's write-ahead log on
//! disk (with its default `synchronous_commit = on`; a database set to wait for standbys too
//! waits for them). Taking turns, a writer does not hold the lock while the disk writes: its
//! transaction sets `synchronous_commit = off` for itself, so its `COMMIT` returns once the
//! commit record is written to the log's buffers and the transaction is visible, the unlock
//! follows at once, and a third statement in the same round trip, a transaction that takes a
//! transaction id (`SELECT txid_current()`) and so commits as the session does, waits until
//! the log is on disk up to its own commit record, which comes after the batch's. Only then
//! are the jobs done. Several nodes' waits meet in one flush of the log (PostgreSQL's group
//! commit), which a lock held across each flush prevented: a cluster on a disk with slow
//! flushes committed at most one batch per flush. Measured on loopback (16 clients, three
//! nodes): the last round trip of a batch 1.17 → 0.85 ms. The next writer may read the
//! batch's records before they are on disk: what it then does is reported only after its own
//! wait, which covers the batch's records too (the log is written in order). If PostgreSQL
//! stops in between, the log loses both; readers (`REPEATABLE READ`, outside the lock) may
//! have shown such records meanwhile (a queued message sent to its device whose sender then
//! got an error, sent it again, and the device dropped the copy by its id). A commit whose
//! wait fails (the connection broke) is reported as an error, and its jobs are not run again:
//! they committed.
//!
//! **Failures.** A connection that fails is dropped; the job gets [`StoreError::Backend`] with
//! the cause, and the next job connects again. Connections use no TLS (`NoTls`): the store is
//! meant for loopback or a private network; put PostgreSQL behind a TLS tunnel otherwise.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::future::join4;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, Error, NoTls, Row, Statement};

use super::overlay::{self, Layer, Slot};
use super::{Entry, Indirect, ReadTxn, Store, StoreError, Table, WriteJob, WriteTxn};

/// The most jobs committed together in one transaction.
pub const MAX_BATCH: usize = 64;

/// Writer threads (each with one connection). One, as for [`super::RedbStore`]: a node's
/// jobs commit in the order they were queued, so a connection's requests keep their order (a
/// relay queued right after a group's creation finds the group; a device's messages are pushed
/// in the order they were sent). The nodes' writers take turns ([`Writers::Serialized`]) or
/// write concurrently under serializable isolation ([`Writers::Concurrent`]).
pub const WRITERS: usize = 1;

/// Read connections open at most (more readers wait for one).
pub const MAX_READERS: usize = 8;

/// How long one job is run again while it keeps conflicting with other writers. Serialized
/// writers do not conflict; concurrent ones (and a cluster that mixes both while it is
/// upgraded node by node) do, because PostgreSQL tracks their reads by B-tree page: under load
/// a node's job may conflict for a second or more. A count of attempts gave up on a relay (a
/// 500 to its sender) in a three-node load run; a time does not give up while the cluster
/// makes progress.
pub const CONFLICT_PATIENCE: Duration = Duration::from_secs(5);

/// The most bytes of keys and values a write transaction remembers of what it read.
const KNOWN_BYTES: usize = 4 << 20;

/// How long a writer's session may sit in an open transaction without sending anything
/// before PostgreSQL ends it (and with it the write lock it holds): a node stopped in the
/// middle of a transaction (`SIGSTOP`, a hung host) does not stop the cluster's writes for
/// longer than this.
pub const IDLE_IN_TRANSACTION: &str = "30s";

/// How long a writer's session may sit idle outside a transaction before PostgreSQL ends it.
/// (The lock is never held outside a transaction: it is sent with `BEGIN`, and given back in
/// the round trip of the `COMMIT`.) A writer whose session ended this way connects again at its
/// next job.
pub const IDLE_SESSION: &str = "60s";

/// What a writer's session sets besides the schema: the two timeouts above, and TCP
/// keepalives on the server's side, so that the session (and the lock) of a host that
/// vanished ends in about 25 s rather than the system's default two hours.
fn writer_settings() -> String {
    format!(
        "SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'; \
         SET idle_session_timeout = '{IDLE_SESSION}'; \
         SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; \
         SET tcp_keepalives_count = 3"
    )
}

/// The key of the write lock (`pg_advisory_lock(class, key)`), with the schema's hash as the
/// key: the migrations' lock is class 7765.
const WRITE_LOCK_CLASS: i32 = 7766;

/// How a write transaction begins.
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

/// How a write transaction begins under the write lock: its `COMMIT` does not wait for the
/// disk, so that the lock is not held while it does; [`FLUSH_COMMITS`], sent after the unlock,
/// waits instead (see [`PgTxn::end`]).
const BEGIN_WRITE_LOCKED: &str =
    "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off";

/// A transaction that commits as the session commits (`synchronous_commit` as the database
/// sets it, `on` by default: to the disk): it takes a transaction id, so its `COMMIT` writes a
/// record to PostgreSQL's write-ahead log and waits until the log is on disk up to it, and
/// with it every commit written before, the batch's own included.
const FLUSH_COMMITS: &str = "SELECT txid_current()";

/// How the writers of the nodes sharing a schema meet. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Writers {
    /// One write transaction at a time across every node of the schema, under a session
    /// advisory lock: no conflicts. The default.
    #[default]
    Serialized,
    /// Write transactions of different nodes run at once; PostgreSQL's serializable isolation
    /// keeps the outcome that of some order, and a transaction that conflicts is run again.
    /// Nodes of a version that predates [`Writers::Serialized`] write this way; the two mix
    /// safely.
    Concurrent,
}

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema migrations, in order: `(version, name, SQL)`. The files are in
/// `crates/wa-server/migrations/`; a new one gets the next number and is never edited once
/// released.
pub const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "kv", include_str!("../../migrations/0001_kv.sql"))];

/// The schema version this code knows (the last migration's).
pub fn schema_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// What a store URL says to connect to, with the connection timeout, and the user `postgres`
/// when it names none.
fn connect_config(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url.parse().map_err(|e: Error| {
        StoreError::Backend(format!("postgresql: the URL does not parse: {e}"))
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    if config.get_user().is_none() {
        config.user("postgres");
    }
    Ok(config)
}

fn backend(context: &str, e: &Error) -> StoreError {
    // The database's own message (with its SQLSTATE) when it sent one, else the client's.
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    StoreError::Backend(format!("postgresql: {context}: {detail}"))
}

/// Whether the connection is of no more use after `e`: no answer from the server (IO, closed),
/// or the server ending the session (FATAL, PANIC, connection exceptions `08`, operator
/// intervention `57`: a shutdown, `pg_terminate_backend`). An ordinary `ERROR` leaves it
/// usable.
fn breaks_connection(e: &Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            matches!(db.severity(), "FATAL" | "PANIC")
                || code.starts_with("08")
                || code.starts_with("57")
        }
    }
}

/// Whether the error asks for the transaction to be run again.
fn is_conflict(e: &Error) -> bool {
    // A unique violation: a key inserted as new (`insert`, `put_absent`) that a concurrent
    // serializable transaction inserted first (PostgreSQL may report that so rather than as a
    // serialization failure); run again, the job finds the key.
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A schema name the store accepts: a lowercase SQL identifier that needs no quoting
/// (`[a-z_][a-z0-9_]*`, at most 63 bytes).
pub fn valid_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 63
}

/// Where a [`PgStore`] lives.
#[derive(Clone)]
struct Target {
    config: Config,
    schema: String,
    writers: Writers,
    /// Statements sent inside transactions ([`PgStore::statements`]).
    statements: Arc<AtomicU64>,
    /// Round trips of every connection ([`PgStore::round_trips`]).
    round_trips: Arc<AtomicU64>,
}

impl Target {
    /// A connection for reads, or (`writer`) for a writer thread, with its settings.
    fn connect(&self, writer: bool) -> Result<Conn, StoreError> {
        let client = Client::connect(&self.config, &self.round_trips)?;
        // Every statement of the store finds its rows by the primary key. A connection plans
        // its prepared statements once, maybe while the table is nearly empty, and keeps
        // those plans as the table grows: without this, a plan that scans the whole table
        // (cheapest when it is empty) stays, and costs in proportion to what is stored.
        let mut settings = format!(
            "SET search_path TO {}; SET enable_seqscan = off",
            self.schema
        );
        if writer {
            settings.push_str("; ");
            settings.push_str(&writer_settings());
        }
        client
            .batch_execute(&settings)
            .map_err(|e| backend("setting up the session", &e))?;
        let stmts = Stmts::prepare(&client)?;
        Ok(Conn { client, stmts })
    }
}

/// A connection used from a plain thread: tokio-postgres's client, with a single-threaded
/// runtime of its own that drives the connection while the thread waits for an answer (as the
/// `postgres` crate does), and that can send several statements before it waits
/// ([`Client::pipelined`]): one round trip for all of them.
struct Client {
    runtime: tokio::runtime::Runtime,
    inner: tokio_postgres::Client,
    /// Counts each wait for answers ([`PgStore::round_trips`]).
    round_trips: Arc<AtomicU64>,
}

impl Client {
    fn connect(config: &Config, round_trips: &Arc<AtomicU64>) -> Result<Client, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Backend(format!("postgresql: a runtime for a connection: {e}"))
            })?;
        let (inner, connection) = runtime
            .block_on(config.connect(NoTls))
            .map_err(|e| backend("connecting", &e))?;
        // It runs while the thread waits on the runtime; it ends with the session (an error
        // here is also every waiting statement's).
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgresql connection ended");
            }
        });
        Ok(Client {
            runtime,
            inner,
            round_trips: Arc::clone(round_trips),
        })
    }

    /// Sends what `f` sends and waits for its answers: one round trip.
    fn wait<T>(&self, f: impl Future<Output = T>) -> T {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.runtime.block_on(f)
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.wait(self.inner.batch_execute(sql))
    }

    fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.wait(self.inner.prepare(sql))
    }

    fn query(&self, stmt: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        self.wait(self.inner.query(stmt, params))
    }

    fn query_opt(
        &self,
        stmt: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        self.wait(self.inner.query_opt(stmt, params))
    }

    fn query_one(&self, stmt: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        self.wait(self.inner.query_one(stmt, params))
    }

    fn execute(&self, stmt: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        self.wait(self.inner.execute(stmt, params))
    }

    /// Sends up to four statements, in order, without waiting for an answer in between:
    /// `first` (a prepared statement and its parameters), `sql` (simple statements), `last`
    /// (a prepared statement taking the write lock's class), `after` (simple statements).
    /// PostgreSQL runs each on its own (an error in one does not stop the next) and in that
    /// order; the answers come back together.
    fn pipelined(
        &self,
        first: Option<(&Statement, &[&(dyn ToSql + Sync)])>,
        sql: &str,
        last: Option<&Statement>,
        after: Option<&str>,
    ) -> Answers {
        let inner = &self.inner;
        // Each statement is sent when its future is first polled, and `join4` polls them in
        // order.
        self.wait(join4(
            async move {
                match first {
                    Some((stmt, params)) => Some(inner.execute(stmt, params).await),
                    None => None,
                }
            },
            inner.batch_execute(sql),
            async move {
                match last {
                    Some(stmt) => Some(inner.execute(stmt, &[&WRITE_LOCK_CLASS]).await),
                    None => None,
                }
            },
            async move {
                match after {
                    Some(sql) => Some(inner.batch_execute(sql).await),
                    None => None,
                }
            },
        ))
    }
}

/// The answers to [`Client::pipelined`]'s four statements (`None` for one not sent).
type Answers = (
    Option<Result<u64, Error>>,
    Result<(), Error>,
    Option<Result<u64, Error>>,
    Option<Result<(), Error>>,
);

/// The statements every connection prepares once.
struct Stmts {
    get: Statement,
    range_asc: Statement,
    range_desc: Statement,
    len: Statement,
    count: Statement,
    range_keys: Statement,
    exists: Statement,
    get_many: Statement,
    get_through: Statement,
    write_many: Statement,
    next_seqs: Statement,
    lock: Statement,
    unlock: Statement,
}

impl Stmts {
    fn prepare(client: &Client) -> Result<Stmts, StoreError> {
        let p = |sql: &str| client.prepare(sql).map_err(|e| backend("preparing", &e));
        Ok(Stmts {
            get: p("SELECT v FROM kv WHERE tbl = $1 AND k = $2")?,
            range_asc: p(
                "SELECT k, v FROM kv WHERE tbl = $1 AND k >= $2 AND k < $3 ORDER BY k ASC LIMIT $4",
            )?,
            range_desc: p(
                "SELECT k, v FROM kv WHERE tbl = $1 AND k >= $2 AND k < $3 ORDER BY k DESC LIMIT $4",
            )?,
            len: p("SELECT count(*) FROM kv WHERE tbl = $1")?,
            count: p(
                "SELECT count(*) FROM (SELECT 1 FROM kv WHERE tbl = $1 AND k >= $2 AND k < $3 LIMIT $4) AS s",
            )?,
            range_keys: p(
                "SELECT k FROM kv WHERE tbl = $1 AND k >= $2 AND k < $3 ORDER BY k ASC LIMIT $4",
            )?,
            exists: p("SELECT 1 FROM kv WHERE tbl = $1 AND k = $2")?,
            get_many: p(
                "SELECT w.tbl, w.k, (SELECT kv.v FROM kv WHERE kv.tbl = w.tbl AND kv.k = w.k) \
                 FROM unnest($1::int2[], $2::bytea[]) AS w (tbl, k)",
            )?,
            // The same, and the records whose keys are a prefix followed by the value of one
            // of those (`Indirect`).
            get_through: p("WITH base AS (SELECT w.tbl, w.k, \
                   (SELECT kv.v FROM kv WHERE kv.tbl = w.tbl AND kv.k = w.k) AS v \
                   FROM unnest($1::int2[], $2::bytea[]) AS w (tbl, k)), \
                 derived AS (SELECT d.tbl, d.prefix || b.v AS k \
                   FROM unnest($3::int2[], $4::bytea[], $5::int2[], $6::bytea[]) \
                     AS d (tbl, prefix, vtbl, vk) \
                   JOIN base b ON b.tbl = d.vtbl AND b.k = d.vk WHERE b.v IS NOT NULL) \
                 SELECT tbl, k, v FROM base \
                 UNION ALL \
                 SELECT d.tbl, d.k, (SELECT kv.v FROM kv WHERE kv.tbl = d.tbl AND kv.k = d.k) \
                 FROM derived d")?,
            // The kept writes: the upsert, with the deletes in a `WITH` (a transaction's kept
            // writes put and delete different keys). Each row to delete is found by its own
            // lookup, then deleted by its address (a TID scan): a join of the keys with `kv`
            // could be planned, while the table is nearly empty, as a hash join over a scan of
            // the whole table, and that plan would stay cached as the table grows (as a
            // sequential scan once did: 3 ms a statement at 16,000 rows, most of the cluster's
            // time under its write lock).
            //
            // Keys the transaction knows to be new (`insert`, `put_absent`) are inserted
            // plainly, in a `WITH` of their own: an upsert first looks for the row it would
            // replace (150 new rows: 0.42–0.52 ms inserted, 0.64–1.17 ms upserted).
            write_many: p("WITH gone AS (DELETE FROM kv WHERE ctid = ANY (ARRAY( \
                   SELECT (SELECT kv.ctid FROM kv WHERE kv.tbl = d.tbl AND kv.k = d.k) \
                   FROM unnest($1::int2[], $2::bytea[]) AS d (tbl, k))) RETURNING 1), \
                 fresh AS (INSERT INTO kv (tbl, k, v) \
                   SELECT * FROM unnest($6::int2[], $7::bytea[], $8::bytea[]) RETURNING 1) \
                 INSERT INTO kv (tbl, k, v) \
                 SELECT * FROM unnest($3::int2[], $4::bytea[], $5::bytea[]) \
                 ON CONFLICT (tbl, k) DO UPDATE SET v = EXCLUDED.v")?,
            next_seqs: p("SELECT nextval('msg_seq') FROM generate_series(1, $1::int4)")?,
            lock: p("SELECT pg_advisory_lock($1, hashtext(current_schema()))")?,
            unlock: p("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")?,
        })
    }
}

/// One connection and its statements.
struct Conn {
    client: Client,
    stmts: Stmts,
}

/// The read connections: idle ones, and how many are open.
struct Pool {
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
    closed: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle connection, a new one, or (all [`MAX_READERS`] in use) the next one freed.
    fn take(&self, target: &Target) -> Result<Conn, StoreError> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(StoreError::Closed);
            }
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(conn);
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                return target.connect(false).inspect_err(|_| self.gone());
            }
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn put_back(&self, conn: Conn) {
        let mut state = self.lock();
        if state.closed || conn.client.is_closed() {
            state.open = state.open.saturating_sub(1);
        } else {
            state.idle.push(conn);
        }
        drop(state);
        self.freed.notify_one();
    }

    /// A connection taken was dropped (failed).
    fn gone(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.open = state.open.saturating_sub(state.idle.len());
        let idle = std::mem::take(&mut state.idle);
        drop(state);
        self.freed.notify_all();
        // A client's drop blocks on its own runtime, which panics on an async worker (the
        // store may be dropped there): let them go on a thread of their own.
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("wa-server-pg-close".to_owned())
                .spawn(move || drop(idle));
        }
    }
}

/// A [`Store`] in a schema of a PostgreSQL database, shared by the nodes of a cluster. See the
/// [module docs](self).
pub struct PgStore {
    target: Target,
    readers: Pool,
    queue: Mutex<Option<mpsc::Sender<WriteJob>>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the schema is shown.
        f.debug_struct("PgStore")
            .field("schema", &self.target.schema)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, or the key=value
    /// form; without a user, as `postgres`), creates `schema` if needed, applies the
    /// migrations it lacks, and starts the writer thread. Blocks: call it from a thread that
    /// may block (`spawn_blocking`), and use the store from such threads (the server does:
    /// reads on the blocking pool, writes on the store's thread).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the URL does not parse, the schema name is not a plain
    /// lowercase identifier, the database does not answer, a migration fails, or the schema was
    /// migrated by a newer version of the server.
    pub fn open(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        PgStore::open_with(url, schema, Writers::default())
    }

    /// As [`PgStore::open`], with the writers meeting as `writers` says.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub fn open_with(url: &str, schema: &str, writers: Writers) -> Result<PgStore, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Backend(format!(
                "postgresql: schema name {schema:?} is not a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 bytes)"
            )));
        }
        let mut config = connect_config(url)?;
        // Which store a session belongs to, for operators (`pg_stat_activity`).
        config.application_name(format!("wa-server/{schema}"));
        let target = Target {
            config,
            schema: schema.to_owned(),
            writers,
            statements: Arc::new(AtomicU64::new(0)),
            round_trips: Arc::new(AtomicU64::new(0)),
        };
        migrate(&target)?;
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let rx = Arc::new(Mutex::new(rx));
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let rx = Arc::clone(&rx);
            let target = target.clone();
            let handle = std::thread::Builder::new()
                .name(format!("wa-server-pg-writer-{i}"))
                .spawn(move || writer_loop(&target, &rx))
                .map_err(|e| StoreError::Backend(format!("starting a writer thread: {e}")))?;
            writers.push(handle);
        }
        Ok(PgStore {
            target,
            readers: Pool {
                state: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                    closed: false,
                }),
                freed: Condvar::new(),
            },
            queue: Mutex::new(Some(tx)),
            writers: Mutex::new(writers),
        })
    }

    /// The schema the store lives in.
    pub fn schema(&self) -> &str {
        &self.target.schema
    }

    /// How many statements this store has sent inside its transactions since it was opened:
    /// reads, prefetches, and the writes sent before each commit (not `BEGIN`, `COMMIT` or the
    /// write lock's). For monitoring, and for tests of what a job costs.
    pub fn statements(&self) -> u64 {
        self.target.statements.load(Ordering::Relaxed)
    }

    /// How many round trips to PostgreSQL this store's connections have made since it was
    /// opened: each statement, or group of statements sent together (the write lock with
    /// `BEGIN`; a batch's writes with `COMMIT` and the unlock), once its connection was set up.
    /// For monitoring, and for tests of what a batch costs.
    pub fn round_trips(&self) -> u64 {
        self.target.round_trips.load(Ordering::Relaxed)
    }

    /// Removes `schema` and everything in it (`DROP SCHEMA ... CASCADE`), for tests and
    /// demos that made one of their own. Blocks.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Backend(format!(
                "postgresql: schema name {schema:?} is not a lowercase identifier"
            )));
        }
        let config = connect_config(url)?;
        let client = Client::connect(&config, &Arc::default())?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .map_err(|e| backend("dropping the schema", &e))
    }
}

/// Creates the schema and applies the missing migrations, in one transaction under an advisory
/// lock per schema.
fn migrate(target: &Target) -> Result<(), StoreError> {
    let client = Client::connect(&target.config, &target.round_trips)?;
    let schema = &target.schema;
    // An error leaves the transaction open: the connection is dropped with it, and the
    // session's end rolls it back.
    client
        .batch_execute("BEGIN")
        .map_err(|e| backend("starting the migration", &e))?;
    let lock = client
        .prepare("SELECT pg_advisory_xact_lock(7765, hashtext($1))")
        .map_err(|e| backend("locking for the migration", &e))?;
    client
        .execute(&lock, &[&schema.as_str()])
        .map_err(|e| backend("locking for the migration", &e))?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
        ))
        .map_err(|e| backend("creating the schema", &e))?;
    let version = client
        .prepare("SELECT coalesce(max(version), 0) FROM schema_migrations")
        .map_err(|e| backend("reading the schema version", &e))?;
    let current: i32 = client
        .query_one(&version, &[])
        .map_err(|e| backend("reading the schema version", &e))?
        .get(0);
    let known = schema_version();
    if current > known {
        return Err(StoreError::Backend(format!(
            "postgresql: schema {schema} is at version {current}, newer than this server knows ({known}): upgrade the server"
        )));
    }
    let record = client
        .prepare("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
        .map_err(|e| backend("recording a migration", &e))?;
    for (version, name, sql) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        client
            .batch_execute(sql)
            .map_err(|e| backend(&format!("migration {version:04}_{name}"), &e))?;
        client
            .execute(&record, &[version, name])
            .map_err(|e| backend("recording a migration", &e))?;
        tracing::info!(schema, version, name, "schema migration applied");
    }
    client
        .batch_execute("COMMIT")
        .map_err(|e| backend("committing the migration", &e))
}

/// A transaction of either kind, with the connection's statements. It remembers a conflict
/// reported by any statement: the transaction is then aborted whatever the job makes of the
/// error, and the job runs again.
///
/// Puts and deletes are kept until the transaction's jobs are done, then sent in one
/// statement ([`PgTxn::send_writes`]) before the commit: a statement is a round trip, and a
/// relay writes some fifteen records. The jobs' reads see the kept writes first.
struct PgTxn<'a> {
    client: &'a Client,
    stmts: &'a Stmts,
    conflict: bool,
    broken: bool,
    /// Whether the transaction committed but the wait for the disk after it failed: its jobs
    /// are not reported done, and must not run again either.
    committed: bool,
    /// Statements sent.
    sent: u64,
    /// Whether a statement failed: PostgreSQL has aborted the transaction, and it must not be
    /// reported as committed (its `COMMIT` would answer `ROLLBACK`), whatever the jobs made of
    /// the error.
    failed: bool,
    /// The writes not sent yet, each with `in_file` saying whether the table may hold its key
    /// (a plain `INSERT` when not: see `keep_new`).
    pending: Layer,
    /// What the database holds, as far as this transaction learnt it: values its `get`s read
    /// (`None`: no such row) and the writes it sent. The snapshot does not move, so this
    /// stays true until the transaction ends. At most [`KNOWN_BYTES`] of keys and values.
    known: Layer,
    known_bytes: usize,
    /// Message numbers taken and not handed out yet, the greatest first.
    seqs: Vec<u64>,
    /// How many numbers to take at once: the jobs left in the batch (each takes at most one),
    /// so that a batch's relays take theirs in one statement. The rest are skipped.
    seq_block: usize,
}

impl<'a> PgTxn<'a> {
    fn new(client: &'a Client, stmts: &'a Stmts) -> PgTxn<'a> {
        PgTxn {
            client,
            stmts,
            conflict: false,
            broken: false,
            committed: false,
            failed: false,
            sent: 0,
            pending: Layer::default(),
            known: Layer::default(),
            known_bytes: 0,
            seqs: Vec::new(),
            seq_block: 1,
        }
    }

    /// Reads `keys` and the records `through` names (`Indirect`), those the transaction does
    /// not know yet, in one statement (none for fewer than two keys and nothing indirect);
    /// in the same round trip, takes `seqs` message numbers for [`WriteTxn::next_seq`] (when
    /// that statement is sent: the batch's first relay would take them in a round trip of
    /// its own, and they are taken after the write lock either way).
    fn prefetch_through<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k (Table, Vec<u8>)>,
        through: impl IntoIterator<Item = &'k Indirect>,
        seqs: usize,
    ) -> Result<(), StoreError> {
        let stmts = self.stmts;
        // Each key once (a batch's jobs name the same accounts).
        let mut wanted: BTreeSet<(i16, Cow<'k, [u8]>)> = BTreeSet::new();
        for (table, key) in keys {
            if self.seen(*table, key).is_none() {
                wanted.insert((tbl(*table), Cow::Borrowed(key.as_slice())));
            }
        }
        let mut indirect: Vec<&'k Indirect> = Vec::new();
        for read in through {
            let (via_table, via_key) = (read.via.0, read.via.1.as_slice());
            match self.seen(via_table, via_key) {
                // The key is known here: read the record directly.
                Some(slot) => {
                    if let Some(value) = &slot.value {
                        let key = [read.prefix.as_slice(), value].concat();
                        if self.seen(read.table, &key).is_none() {
                            wanted.insert((tbl(read.table), Cow::Owned(key)));
                        }
                    }
                }
                None => {
                    wanted.insert((tbl(via_table), Cow::Borrowed(via_key)));
                    indirect.push(read);
                }
            }
        }
        if wanted.len() < 2 && indirect.is_empty() {
            // One key costs a statement either way: its `get` reads it.
            return Ok(());
        }
        let tbls: Vec<i16> = wanted.iter().map(|(t, _)| *t).collect();
        let ks: Vec<&[u8]> = wanted.iter().map(|(_, k)| k.as_ref()).collect();
        let d_tbls: Vec<i16> = indirect.iter().map(|r| tbl(r.table)).collect();
        let prefixes: Vec<&[u8]> = indirect.iter().map(|r| r.prefix.as_slice()).collect();
        let v_tbls: Vec<i16> = indirect.iter().map(|r| tbl(r.via.0)).collect();
        let v_ks: Vec<&[u8]> = indirect.iter().map(|r| r.via.1.as_slice()).collect();
        let (read, params): (_, &[&(dyn ToSql + Sync)]) = if indirect.is_empty() {
            (&stmts.get_many, &[&tbls, &ks])
        } else {
            (
                &stmts.get_through,
                &[&tbls, &ks, &d_tbls, &prefixes, &v_tbls, &v_ks],
            )
        };
        let block = (self.seqs.is_empty() && seqs > 0)
            .then(|| i32::try_from(seqs.min(MAX_BATCH)).unwrap_or(1));
        self.sent += 1 + u64::from(block.is_some());
        let inner = &self.client.inner;
        // The two statements in one round trip: the second is sent when `join` first polls
        // it, before the first's answer is in.
        let (result, numbers) = self.client.wait(futures_util::future::join(
            inner.query(read, params),
            async move {
                match &block {
                    Some(block) => Some(inner.query(&stmts.next_seqs, &[block]).await),
                    None => None,
                }
            },
        ));
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail("get", &e)),
        };
        match numbers {
            Some(Ok(rows)) => self.take_seqs(rows)?,
            Some(Err(e)) => return Err(self.fail("nextval", &e)),
            None => {}
        }
        // One row per key, its value NULL when there is no such record. A key reached
        // through another record may be one the transaction has written meanwhile: what it
        // knows stays.
        for row in rows {
            let (t, k): (i16, &[u8]) = (row.get(0), row.get(1));
            let Some(&table) = usize::try_from(t).ok().and_then(|i| Table::ALL.get(i)) else {
                continue;
            };
            if self.seen(table, k).is_none() {
                self.learn(table, k, row.get::<_, Option<&[u8]>>(2));
            }
        }
        Ok(())
    }

    /// Sends the kept writes, puts and deletes in one statement, and remembers them as what
    /// the database holds (the transaction goes on reading).
    fn send_writes(&mut self) -> Result<(), StoreError> {
        let stmts = self.stmts;
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let writes = Writes::of(&pending);
        let sent = self.counted().execute(&stmts.write_many, &writes.params());
        if let Err(e) = sent {
            return Err(self.fail("write", &e));
        }
        for (table, key, slot) in pending.iter() {
            self.learn(table, key, slot.value.as_deref());
        }
        Ok(())
    }

    /// Ends a write transaction whose jobs came to `outcome`: its kept writes and `COMMIT`
    /// if that is a success, else `ROLLBACK`; then `unlock` (the write lock's). One round trip
    /// for the three. The transaction's outcome, and the unlock's answer.
    fn end(
        &mut self,
        outcome: Result<(), StoreError>,
        unlock: Option<&Statement>,
    ) -> (Result<(), StoreError>, Option<Result<u64, Error>>) {
        let client = self.client;
        if outcome.is_err() {
            let (_, rolled_back, unlocked, _) = client.pipelined(None, "ROLLBACK", unlock, None);
            if let Err(e) = rolled_back
                && breaks_connection(&e)
            {
                self.broken = true;
            }
            return (outcome, unlocked);
        }
        let pending = std::mem::take(&mut self.pending);
        let writes = Writes::of(&pending);
        let params = writes.params();
        let write = (!pending.is_empty()).then(|| {
            self.sent += 1;
            (&self.stmts.write_many, &params[..])
        });
        // Under the write lock the `COMMIT` does not wait for the disk (`BEGIN_WRITE_LOCKED`):
        // the lock goes back first, and `FLUSH_COMMITS` waits for the disk after it, while the
        // next writer works. Nothing of the batch is reported done before that wait returned.
        let flush = unlock.is_some().then_some(FLUSH_COMMITS);
        let (written, committed, unlocked, flushed) =
            client.pipelined(write, "COMMIT", unlock, flush);
        // A failed write aborts the transaction: its `COMMIT` then answers `ROLLBACK`, which
        // is no error.
        if let Some(Err(e)) = written {
            return (Err(self.fail("write", &e)), unlocked);
        }
        let outcome = committed.map_err(|e| {
            if is_conflict(&e) {
                StoreError::Conflict
            } else {
                if breaks_connection(&e) {
                    self.broken = true;
                }
                backend("committing", &e)
            }
        });
        let outcome = match (outcome, flushed) {
            // Committed, but whether it reached the disk is not known: not done (a job run
            // again finds what it wrote: a relay's sent id answers the same).
            (Ok(()), Some(Err(e))) => {
                self.committed = true;
                if breaks_connection(&e) {
                    self.broken = true;
                }
                Err(backend("waiting for the commit to reach the disk", &e))
            }
            (outcome, _) => outcome,
        };
        (outcome, unlocked)
    }

    /// Keeps the message numbers of `next_seqs`'s answer, to hand out smallest first.
    fn take_seqs(&mut self, rows: Vec<Row>) -> Result<(), StoreError> {
        let mut seqs = Vec::with_capacity(rows.len());
        for row in rows {
            let seq = u64::try_from(row.get::<_, i64>(0))
                .map_err(|_| StoreError::Backend("postgresql: msg_seq is negative".to_owned()))?;
            seqs.push(seq);
        }
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        self.seqs = seqs;
        Ok(())
    }

    /// The transaction, to send one more statement.
    fn counted(&mut self) -> &'a Client {
        self.sent += 1;
        self.client
    }

    /// Notes that the database holds `value` (or no row) under `key`, as this transaction sees
    /// it; past [`KNOWN_BYTES`], forgets what it knew of the key instead.
    fn learn(&mut self, table: Table, key: &[u8], value: Option<&[u8]>) {
        let size = key.len() + value.map_or(0, <[u8]>::len);
        if self.known_bytes.saturating_add(size) > KNOWN_BYTES {
            self.known.remove(table, key);
            return;
        }
        self.known_bytes += size;
        let slot = Slot {
            value: value.map(<[u8]>::to_vec),
            in_file: false,
        };
        self.known.insert(table, key, slot);
    }

    /// The kept write of `key`, else what the transaction knows of the stored row.
    fn seen(&self, table: Table, key: &[u8]) -> Option<&Slot> {
        self.pending
            .get(table, key)
            .or_else(|| self.known.get(table, key))
    }

    /// Keeps a write until [`PgTxn::send_writes`].
    fn keep(&mut self, table: Table, key: &[u8], value: Option<Vec<u8>>) {
        let slot = Slot {
            value,
            in_file: true,
        };
        self.pending.insert(table, key, slot);
    }

    /// Keeps a write of a key the caller says is new (`insert`, `put_absent`): sent as a
    /// plain `INSERT` unless this transaction wrote the key already or learnt that the table
    /// holds it, in which case it is kept as any other write.
    fn keep_new(&mut self, table: Table, key: &[u8], value: &[u8]) {
        let written = self.pending.get(table, key).is_some();
        let stored = self
            .known
            .get(table, key)
            .is_some_and(|slot| slot.value.is_some());
        let slot = Slot {
            value: Some(value.to_vec()),
            in_file: written || stored,
        };
        self.pending.insert(table, key, slot);
    }

    /// Kept writes in `[from, to)` of `table`: how many are deletions (they may hide stored
    /// rows), and whether there is any.
    fn pending_in(&self, table: Table, from: &[u8], to: &[u8]) -> (usize, bool) {
        let mut deletions = 0;
        let mut any = false;
        for (_, slot) in self.pending.table(table).range::<[u8], _>((
            std::ops::Bound::Included(from),
            std::ops::Bound::Excluded(to),
        )) {
            any = true;
            deletions += usize::from(slot.value.is_none());
        }
        (deletions, any)
    }

    /// Up to `limit` rows of `[from, to)` read with `stmt` (keys, and values when `values`),
    /// with the kept writes over them: `deletions` more rows are read, as many as kept
    /// deletions may hide.
    #[allow(
        clippy::too_many_arguments,
        reason = "a range query's parts, passed through"
    )]
    fn under_kept(
        &mut self,
        stmt: &Statement,
        table: Table,
        (from, to): (&[u8], &[u8]),
        reverse: bool,
        limit: usize,
        deletions: usize,
        values: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let rows_limit = i64::try_from(limit.saturating_add(deletions)).unwrap_or(i64::MAX);
        let rows: Vec<Entry> = match self
            .counted()
            .query(stmt, &[&tbl(table), &from, &to, &rows_limit])
        {
            Ok(rows) => rows
                .into_iter()
                .map(|r| {
                    let value = if values { r.get(1) } else { Vec::new() };
                    (r.get::<_, Vec<u8>>(0), value)
                })
                .collect(),
            Err(e) => return Err(self.fail("range", &e)),
        };
        let layers = [self.pending.table(table)];
        overlay::merge(
            &layers,
            Box::new(rows.into_iter().map(Ok)),
            from,
            to,
            reverse,
            limit,
            values,
        )
    }

    fn fail(&mut self, context: &str, e: &Error) -> StoreError {
        self.failed = true;
        if is_conflict(e) {
            self.conflict = true;
            StoreError::Conflict
        } else {
            if breaks_connection(e) {
                self.broken = true;
            }
            backend(context, e)
        }
    }
}

/// Kept writes as the arrays of the `write_many` statement: the keys to delete, then the
/// rows to put.
#[derive(Default)]
struct Writes<'p> {
    del_t: Vec<i16>,
    del_k: Vec<&'p [u8]>,
    put_t: Vec<i16>,
    put_k: Vec<&'p [u8]>,
    put_v: Vec<&'p [u8]>,
    new_t: Vec<i16>,
    new_k: Vec<&'p [u8]>,
    new_v: Vec<&'p [u8]>,
}

impl<'p> Writes<'p> {
    fn of(pending: &'p Layer) -> Writes<'p> {
        let mut writes = Writes::default();
        for (table, key, slot) in pending.iter() {
            match &slot.value {
                // (A kept write's `in_file`: whether the table may hold the key.)
                Some(value) if !slot.in_file => {
                    writes.new_t.push(tbl(table));
                    writes.new_k.push(key.as_slice());
                    writes.new_v.push(value.as_slice());
                }
                Some(value) => {
                    writes.put_t.push(tbl(table));
                    writes.put_k.push(key.as_slice());
                    writes.put_v.push(value.as_slice());
                }
                None => {
                    writes.del_t.push(tbl(table));
                    writes.del_k.push(key.as_slice());
                }
            }
        }
        writes
    }

    /// `write_many`'s parameters, in its order.
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.del_t,
            &self.del_k,
            &self.put_t,
            &self.put_k,
            &self.put_v,
            &self.new_t,
            &self.new_k,
            &self.new_v,
        ]
    }
}

fn tbl(table: Table) -> i16 {
    i16::try_from(table.index()).unwrap_or(i16::MAX)
}

impl ReadTxn for PgTxn<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let stmts = self.stmts;
        if let Some(slot) = self.seen(table, key) {
            return Ok(slot.value.clone());
        }
        match self.counted().query_opt(&stmts.get, &[&tbl(table), &key]) {
            Ok(row) => {
                let value = row.map(|r| r.get::<_, Vec<u8>>(0));
                self.learn(table, key, value.as_deref());
                Ok(value)
            }
            Err(e) => Err(self.fail("get", &e)),
        }
    }

    fn range(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let stmts = self.stmts;
        let stmt = if reverse {
            &stmts.range_desc
        } else {
            &stmts.range_asc
        };
        let (deletions, _) = self.pending_in(table, from, to);
        self.under_kept(stmt, table, (from, to), reverse, limit, deletions, true)
    }

    fn prefetch(&mut self, keys: &[(Table, Vec<u8>)]) -> Result<(), StoreError> {
        self.prefetch_through(keys, [], 0)
    }

    fn prefetches(&self) -> bool {
        true
    }

    fn len(&mut self, table: Table) -> Result<u64, StoreError> {
        let stmts = self.stmts;
        self.send_writes()?;
        match self.counted().query_one(&stmts.len, &[&tbl(table)]) {
            Ok(row) => Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)),
            Err(e) => Err(self.fail("count", &e)),
        }
    }

    fn count(
        &mut self,
        table: Table,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<usize, StoreError> {
        let stmts = self.stmts;
        if from >= to || limit == 0 {
            return Ok(0);
        }
        let (deletions, any) = self.pending_in(table, from, to);
        if any {
            // The stored keys, merged with the kept writes.
            let stmt = &self.stmts.range_keys;
            return Ok(self
                .under_kept(stmt, table, (from, to), false, limit, deletions, false)?
                .len());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match self
            .counted()
            .query_one(&stmts.count, &[&tbl(table), &from, &to, &limit])
        {
            Ok(row) => Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0)),
            Err(e) => Err(self.fail("count", &e)),
        }
    }
}

impl WriteTxn for PgTxn<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.keep(table, key, Some(value.to_vec()));
        Ok(())
    }

    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.keep_new(table, key, value);
        Ok(())
    }

    fn put_absent(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.keep_new(table, key, value);
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        let stmts = self.stmts;
        let existed = match self.seen(table, key) {
            Some(slot) => slot.value.is_some(),
            None => match self
                .counted()
                .query_opt(&stmts.exists, &[&tbl(table), &key])
            {
                Ok(row) => row.is_some(),
                Err(e) => return Err(self.fail("delete", &e)),
            },
        };
        self.keep(table, key, None);
        Ok(existed)
    }

    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        self.keep(table, key, None);
        Ok(())
    }

    /// From the sequence `msg_seq`, taking numbers for the rest of the batch at once (see
    /// `seq_block`): numbers a transaction does not hand out are skipped.
    fn next_seq(&mut self) -> Result<u64, StoreError> {
        if let Some(seq) = self.seqs.pop() {
            return Ok(seq);
        }
        let stmts = self.stmts;
        let block = i32::try_from(self.seq_block.clamp(1, MAX_BATCH)).unwrap_or(1);
        let rows = match self.counted().query(&stmts.next_seqs, &[&block]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail("nextval", &e)),
        };
        self.take_seqs(rows)?;
        self.seqs
            .pop()
            .ok_or_else(|| StoreError::Backend("postgresql: msg_seq gave no number".to_owned()))
    }
}

impl Store for PgStore {
    /// Yes: a batch's first reads are one statement (see the [module docs](self)).
    fn reads_ahead(&self) -> bool {
        true
    }

    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.readers.take(&self.target)?;
        let (result, broken) = read_in(&mut conn, work, &self.target.statements);
        if broken || conn.client.is_closed() {
            drop(conn);
            self.readers.gone();
        } else {
            self.readers.put_back(conn);
        }
        result
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
        let writers = self
            .writers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for writer in writers {
            let _ = writer.join();
        }
        self.readers.close();
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs `work` in a read-only snapshot; whether the connection broke.
fn read_in(
    conn: &mut Conn,
    work: &mut dyn FnMut(&mut dyn ReadTxn) -> Result<(), StoreError>,
    statements: &AtomicU64,
) -> (Result<(), StoreError>, bool) {
    let Conn { client, stmts } = conn;
    if let Err(e) = client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
        return (Err(backend("starting a read", &e)), breaks_connection(&e));
    }
    let (result, broken) = {
        let mut r = PgTxn::new(client, stmts);
        let result = work(&mut r);
        statements.fetch_add(r.sent, Ordering::Relaxed);
        (result, r.broken)
    };
    // Nothing to keep: end the snapshot either way.
    match client.batch_execute("ROLLBACK") {
        Ok(()) => (result, broken),
        Err(e) => (
            result.and(Err(backend("ending a read", &e))),
            broken || breaks_connection(&e),
        ),
    }
}

fn writer_loop(target: &Target, rx: &Mutex<mpsc::Receiver<WriteJob>>) {
    let mut conn: Option<Conn> = None;
    loop {
        let batch = {
            let Ok(rx) = rx.lock() else { return };
            let Ok(first) = rx.recv() else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        run_batch(target, &mut conn, batch, rx);
    }
}

/// Runs `batch` in one transaction, with the jobs queued on `more` while the writer waited
/// for the lock; if that fails, each job alone.
fn run_batch(
    target: &Target,
    conn: &mut Option<Conn>,
    mut batch: Vec<WriteJob>,
    more: &Mutex<mpsc::Receiver<WriteJob>>,
) {
    let more = (target.writers == Writers::Serialized).then_some(more);
    if batch.len() > 1 || more.is_some() {
        match commit(target, conn, &mut batch, more) {
            Ok(()) => {
                for job in batch {
                    job.finish(Ok(()));
                }
                return;
            }
            // A job alone already: only a conflict is worth another run; and jobs that
            // committed never run again.
            Err(NotDone { error, committed })
                if committed || (batch.len() == 1 && error != StoreError::Conflict) =>
            {
                tracing::warn!(error = %error, "store write failed");
                for job in batch {
                    job.finish(Err(error.clone()));
                }
                return;
            }
            Err(NotDone { error, .. }) => {
                tracing::debug!(error = %error, jobs = batch.len(), "batch failed: running its jobs one by one");
            }
        }
    }
    for job in batch {
        let mut one = vec![job];
        let result = run_alone(target, conn, &mut one);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "store write failed");
        }
        for job in one {
            job.finish(result.clone());
        }
    }
}

/// Why a transaction's jobs are not done.
struct NotDone {
    error: StoreError,
    /// The transaction committed, but the wait for the disk after it failed: its jobs must
    /// not run again.
    committed: bool,
}

impl From<StoreError> for NotDone {
    fn from(error: StoreError) -> NotDone {
        NotDone {
            error,
            committed: false,
        }
    }
}

/// Runs one job until it commits, fails for another reason than a conflict, or has conflicted
/// for [`CONFLICT_PATIENCE`].
fn run_alone(
    target: &Target,
    conn: &mut Option<Conn>,
    alone: &mut Vec<WriteJob>,
) -> Result<(), StoreError> {
    let give_up = Instant::now() + CONFLICT_PATIENCE;
    let mut attempt = 0;
    loop {
        match commit(target, conn, alone, None) {
            Err(NotDone {
                error: StoreError::Conflict,
                committed: false,
            }) if Instant::now() < give_up => {
                attempt += 1;
                std::thread::sleep(backoff(attempt));
            }
            other => return other.map_err(|n| n.error),
        }
    }
}

/// A pause before run `attempt` (1, 2, ...): up to 1 ms doubled each time, capped at 64 ms, a
/// random point of it, so that writers that collided do not collide again in step.
fn backoff(attempt: u32) -> Duration {
    let cap_us = 1000u64 << attempt.min(6);
    let random = getrandom::u64().unwrap_or(u64::from(attempt).wrapping_mul(7919));
    Duration::from_micros(cap_us / 2 + random % (cap_us / 2).max(1))
}

/// Runs `jobs` in one serializable transaction and commits it.
///
/// Round trips: serialized, the write lock and `BEGIN` go together, and the writes, the
/// `COMMIT` (or `ROLLBACK`) and the unlock go together, so that the lock is held for the
/// batch's reads, its writes and its commit, and not for the answers in between.
fn commit(
    target: &Target,
    slot: &mut Option<Conn>,
    jobs: &mut Vec<WriteJob>,
    more: Option<&Mutex<mpsc::Receiver<WriteJob>>>,
) -> Result<(), NotDone> {
    let serialized = target.writers == Writers::Serialized;
    // The first statements on the connection: a session that ended while idle
    // (`IDLE_SESSION`) shows there, and is replaced once.
    for retry in [true, false] {
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(target.connect(true)?);
        }
        let Some(Conn { client, stmts }) = slot.as_mut() else {
            return Err(StoreError::Closed.into());
        };
        let lock =
            serialized.then_some((&stmts.lock, &[&WRITE_LOCK_CLASS as &(dyn ToSql + Sync)][..]));
        let begin = if serialized {
            BEGIN_WRITE_LOCKED
        } else {
            BEGIN_WRITE
        };
        let (locked, begun, _, _) = client.pipelined(lock, begin, None, None);
        let failed = match (locked, begun) {
            (Some(Err(e)), _) => ("taking the write lock", e),
            (_, Err(e)) => ("starting a write", e),
            (_, Ok(())) => break,
        };
        let (context, e) = failed;
        // Broken, or (an error of either statement) with the lock perhaps held, or a
        // transaction perhaps open: the session goes, and the lock with it.
        *slot = None;
        if !retry || !breaks_connection(&e) {
            return Err(backend(context, &e).into());
        }
    }
    // Jobs queued while the writer waited for the lock join the batch: the wait is the
    // longest part of a cluster's write, and the batch pays for its begin, commit and unlock
    // once.
    if let Some(Ok(rx)) = more.map(Mutex::lock) {
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
    }
    let Some(Conn { client, stmts }) = slot.as_mut() else {
        return Err(StoreError::Closed.into());
    };
    let unlock = serialized.then_some(&stmts.unlock);
    let mut w = PgTxn::new(client, stmts);
    // What the jobs read first, in one statement for the batch.
    let mut outcome = w.prefetch_through(
        jobs.iter().flat_map(WriteJob::reads),
        jobs.iter().flat_map(WriteJob::reads_through),
        jobs.iter().map(WriteJob::numbers).sum(),
    );
    let count = jobs.len();
    for (i, job) in jobs.iter_mut().enumerate() {
        if outcome.is_err() {
            break;
        }
        w.seq_block = count - i;
        outcome = job.run(&mut w);
    }
    if w.conflict {
        // Whatever the jobs made of it: the transaction is aborted, and they run again.
        outcome = Err(StoreError::Conflict);
    } else if outcome.is_ok() && w.failed {
        outcome = Err(StoreError::Backend(
            "postgresql: a statement of the transaction failed, so nothing of it was committed"
                .to_owned(),
        ));
    }
    // The transaction ends either way (and the lock goes back in the same round trip): the
    // next writer's transaction begins after this one's end, and so sees all of it.
    let (outcome, unlocked) = w.end(outcome, unlock);
    target.statements.fetch_add(w.sent, Ordering::Relaxed);
    let (broken, committed) = (w.broken, w.committed);
    if let Some(Err(e)) = unlocked {
        // The lock is the session's: it ends with the connection.
        tracing::warn!(error = %backend("giving the write lock back", &e), "reconnecting");
        *slot = None;
    }
    if outcome.is_err() && (broken || slot.as_ref().is_some_and(|c| c.client.is_closed())) {
        *slot = None;
    }
    outcome.map_err(|error| NotDone { error, committed })
}
