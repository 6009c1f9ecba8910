//! [`PgStore`] against a real PostgreSQL (127.0.0.1:5432, database `test`; skipped with a
//! notice when it does not answer, unless `WA_CLUSTER_TESTS=require`): migrations applied once
//! and a newer schema refused; the store's semantics (ordered ranges both ways, limits, counts,
//! rollback of a failed job, the sequence); no lost update when two stores on one schema and
//! several threads increment one record, with writers serialized, concurrent or mixed;
//! serialized writers of two stores taking turns, jobs queued while a writer waits for the
//! lock joining its batch, and the lock given back after a failed job;
//! what a transaction remembers giving way to its writes, and what a job costs in statements
//! (a record read again or prefetched: none; what a batch's jobs name as read first, and the
//! message numbers of its relays: one statement each for the batch); no statement scanning the
//! whole table after it grew; the core's flows on two servers sharing one schema,
//! with receipts for the same messages raced on both: each recipient account's ack 2 once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

use support::services::{self, Schema};
use support::*;
use wa_server::store::{PgStore, Store, StoreError, Table, WriteJob, WriteTxn, Writers, read};
use wa_server::{Config, StoreKind};
use wa_wire::phone::PhoneEvent;

/// Writes through the store's queue and waits, without a runtime.
fn write_sync(
    store: &dyn Store,
    work: impl FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + Send + 'static,
) -> Result<(), StoreError> {
    let (tx, rx) = mpsc::channel();
    store.write(WriteJob::new(work, move |r| {
        let _ = tx.send(r);
    }));
    rx.recv_timeout(WAIT).expect("the job finishes in time")
}

fn raw_client() -> postgres::Client {
    postgres::Client::connect(&services::postgres_url(), postgres::NoTls).unwrap()
}

#[test]
fn migrations_apply_once_and_a_newer_schema_is_refused() {
    if !services::available("migrations_apply_once_and_a_newer_schema_is_refused", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    store.close();
    // Again: nothing to apply, nothing applied twice.
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    store.close();
    let mut client = raw_client();
    let rows = client
        .query(
            &format!(
                "SELECT version, name FROM {}.schema_migrations ORDER BY version",
                schema.name
            ),
            &[],
        )
        .unwrap();
    let applied: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        applied,
        wa_server::store::postgres::MIGRATIONS
            .iter()
            .map(|(v, n, _)| (*v, (*n).to_owned()))
            .collect::<Vec<_>>()
    );
    // A newer server migrated it: this one refuses to touch it.
    client
        .execute(
            &format!(
                "INSERT INTO {}.schema_migrations (version, name) VALUES (9999, 'future')",
                schema.name
            ),
            &[],
        )
        .unwrap();
    let err = PgStore::open(&schema.url, &schema.name).unwrap_err();
    assert!(err.to_string().contains("newer than this server"), "{err}");
    // Names that would need quoting are refused before anything is sent.
    let err = PgStore::open(&schema.url, "Robert'); DROP TABLE x; --").unwrap_err();
    assert!(
        err.to_string().contains("not a lowercase identifier"),
        "{err}"
    );
}

#[test]
fn ranges_counts_rollback_and_the_sequence() {
    if !services::available("ranges_counts_rollback_and_the_sequence", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    // Keys whose byte order differs from their text order and from their length order.
    let keys: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x01],
        vec![0x7F, 0xFF],
        vec![0x80],
        vec![0xFF],
        vec![0xFF, 0x00],
    ];
    let written = keys.clone();
    write_sync(&store, move |txn| {
        for (i, k) in written.iter().enumerate() {
            txn.put(Table::Inbox, k, &[u8::try_from(i).unwrap()])?;
        }
        // Same key in another table: tables are apart.
        txn.put(Table::Meta, &[0x01], b"other")?;
        Ok(())
    })
    .unwrap();
    let all = read(&store, |txn| {
        txn.range(Table::Inbox, &[], &[0xFF, 0xFF], false, 100)
    })
    .unwrap();
    assert_eq!(all.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), keys);
    let last_two = read(&store, |txn| {
        txn.range(Table::Inbox, &[0x01], &[0xFF, 0x01], true, 2)
    })
    .unwrap();
    assert_eq!(last_two[0].0, vec![0xFF, 0x00]);
    assert_eq!(last_two[1].0, vec![0xFF]);
    let none = read(&store, |txn| {
        txn.range(Table::Inbox, &[0x80], &[0x80], false, 10)
    })
    .unwrap();
    assert!(none.is_empty());
    assert_eq!(read(&store, |txn| txn.len(Table::Inbox)).unwrap(), 7);
    assert_eq!(
        read(&store, |txn| txn.get(Table::Meta, &[0x01])).unwrap(),
        Some(b"other".to_vec())
    );
    // A job that fails leaves nothing behind.
    let err = write_sync(&store, |txn| {
        txn.delete(Table::Inbox, &[0x00])?;
        txn.put(Table::Inbox, b"new", b"1")?;
        Err(StoreError::Backend("boom".into()))
    })
    .unwrap_err();
    assert_eq!(err, StoreError::Backend("boom".into()));
    assert_eq!(read(&store, |txn| txn.len(Table::Inbox)).unwrap(), 7);
    // Deleting says whether it was there; the sequence only grows.
    let seen = Arc::new(std::sync::Mutex::new(None));
    let slot = Arc::clone(&seen);
    write_sync(&store, move |txn| {
        let gone = txn.delete(Table::Inbox, &[0x00])?;
        let again = txn.delete(Table::Inbox, &[0x00])?;
        let a = txn.next_seq()?;
        let b = txn.next_seq()?;
        *slot.lock().unwrap() = Some((gone, again, a, b));
        Ok(())
    })
    .unwrap();
    let (gone, again, a, b) = seen.lock().unwrap().unwrap();
    assert!(gone && !again);
    assert!(b > a && a >= 1);
    // Reads see committed writes only: a job's value was committed before `done`.
    assert_eq!(read(&store, |txn| txn.len(Table::Inbox)).unwrap(), 6);
    store.close();
    assert_eq!(
        write_sync(&store, |_| Ok(())).unwrap_err(),
        StoreError::Closed
    );
}

#[test]
fn a_lost_connection_fails_one_job_and_the_next_reconnects() {
    if !services::available(
        "a_lost_connection_fails_one_job_and_the_next_reconnects",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    write_sync(&store, |txn| txn.put(Table::Meta, b"a", b"1")).unwrap();
    assert!(
        read(&store, |txn| txn.get(Table::Meta, b"a"))
            .unwrap()
            .is_some()
    );
    // The database ends every session of this store (a restart, a failover, a network cut).
    let mut admin = raw_client();
    let ended: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
            &[&format!("wa-server/{}", schema.name)],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 2, "the writer's and a reader's sessions: {ended}");
    // A job on a dead connection fails with the cause (or, if the client noticed first,
    // reconnects at once); the next one connects again either way.
    for attempt in 0..2 {
        let result = write_sync(&store, |txn| txn.put(Table::Meta, b"b", b"2"));
        match result {
            Ok(()) => break,
            Err(StoreError::Backend(cause)) if attempt == 0 => {
                assert!(cause.starts_with("postgresql:"), "{cause}");
            }
            Err(e) => panic!("attempt {attempt}: {e}"),
        }
    }
    for attempt in 0..2 {
        match read(&store, |txn| txn.get(Table::Meta, b"b")) {
            Ok(value) => {
                assert_eq!(value, Some(b"2".to_vec()));
                break;
            }
            Err(StoreError::Backend(_)) if attempt == 0 => {}
            Err(e) => panic!("attempt {attempt}: {e}"),
        }
    }
    assert_eq!(
        read(&store, |txn| txn.get(Table::Meta, b"a")).unwrap(),
        Some(b"1".to_vec())
    );
}

#[test]
fn two_stores_on_one_schema_lose_no_update() {
    if !services::available("two_stores_on_one_schema_lose_no_update", false) {
        return;
    }
    // Both kinds of writers, and one of each (as in a cluster upgraded node by node).
    for writers in [
        [Writers::Serialized; 2],
        [Writers::Concurrent; 2],
        [Writers::Serialized, Writers::Concurrent],
    ] {
        increments_on_two_stores(writers);
    }
}

fn increments_on_two_stores(writers: [Writers; 2]) {
    let schema = Schema::new();
    let stores: Vec<Arc<PgStore>> = writers
        .iter()
        .map(|&w| Arc::new(PgStore::open_with(&schema.url, &schema.name, w).unwrap()))
        .collect();
    const THREADS: usize = 4;
    const INCREMENTS: u64 = 25;
    // Each thread of each store increments one counter, read and written in the job: under
    // anything weaker than serializable (with the job re-run on conflict) updates get lost.
    let handles: Vec<_> = (0..THREADS * stores.len())
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            std::thread::spawn(move || {
                for _ in 0..INCREMENTS {
                    write_sync(&*store, |txn| {
                        let n = txn
                            .get(Table::Meta, b"counter")?
                            .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                        txn.put(Table::Meta, b"counter", &(n + 1).to_be_bytes())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = read(&*stores[0], |txn| txn.get(Table::Meta, b"counter"))
        .unwrap()
        .map(|v| u64::from_be_bytes(v.try_into().unwrap()));
    assert_eq!(
        total,
        Some(INCREMENTS * (THREADS * stores.len()) as u64),
        "{writers:?}"
    );
}

/// A transaction remembers what it read, and what it sent since must replace that: a read,
/// a write, a `len` (which sends the kept writes), and the read again; the same for a delete,
/// and a `remove` that does not ask.
#[test]
fn what_a_transaction_read_gives_way_to_its_writes() {
    if !services::available("what_a_transaction_read_gives_way_to_its_writes", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    write_sync(&store, |txn| {
        txn.put(Table::Meta, b"gone", b"x")?;
        txn.put(Table::Meta, b"there", b"y")
    })
    .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let notes = Arc::clone(&seen);
    write_sync(&store, move |txn| {
        let mut n = notes.lock().unwrap();
        n.clear();
        n.push(format!("{:?}", txn.get(Table::Meta, b"k")?));
        txn.put(Table::Meta, b"k", b"v1")?;
        n.push(format!("{}", txn.len(Table::Meta)?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"k")?));
        n.push(format!("{}", txn.delete(Table::Meta, b"k")?));
        n.push(format!("{}", txn.len(Table::Meta)?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"k")?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"gone")?));
        txn.remove(Table::Meta, b"gone")?;
        n.push(format!("{}", txn.len(Table::Meta)?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"gone")?));
        n.push(format!("{}", txn.delete(Table::Meta, b"gone")?));
        // Prefetched: a kept write wins over it, a write sent afterwards replaces it.
        txn.put(Table::Meta, b"kept", b"new")?;
        txn.prefetch(&[
            (Table::Meta, b"kept".to_vec()),
            (Table::Meta, b"there".to_vec()),
            (Table::Meta, b"absent".to_vec()),
        ])?;
        n.push(format!("{:?}", txn.get(Table::Meta, b"kept")?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"absent")?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"there")?));
        txn.put(Table::Meta, b"there", b"z")?;
        n.push(format!("{}", txn.len(Table::Meta)?));
        n.push(format!("{:?}", txn.get(Table::Meta, b"there")?));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "None",
            "3",
            "Some([118, 49])",
            "true",
            "2",
            "None",
            "Some([120])",
            "1",
            "None",
            "false",
            "Some([110, 101, 119])",
            "None",
            "Some([121])",
            "2",
            "Some([122])"
        ]
    );
    store.close();
}

/// What a job costs in statements: a record read again, or announced with `prefetch`, costs
/// none; a delete of a record the transaction knows does not ask whether it is there, and
/// `remove` never does; a transaction's puts and deletes go in one statement.
#[test]
fn a_record_read_again_or_prefetched_costs_no_statement() {
    if !services::available(
        "a_record_read_again_or_prefetched_costs_no_statement",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    const KEYS: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
    write_sync(&store, |txn| {
        for key in KEYS {
            txn.put(Table::Meta, key, b"1")?;
        }
        Ok(())
    })
    .unwrap();
    let cost = |work: fn(&mut dyn WriteTxn) -> Result<(), StoreError>| {
        let before = store.statements();
        write_sync(&store, work).unwrap();
        store.statements() - before
    };
    let once = cost(|txn| txn.get(Table::Meta, b"a").map(drop));
    let ten_times = cost(|txn| {
        for _ in 0..10 {
            txn.get(Table::Meta, b"a")?;
        }
        Ok(())
    });
    let each = cost(|txn| {
        for key in KEYS {
            txn.get(Table::Meta, key)?;
        }
        Ok(())
    });
    let prefetched = cost(|txn| {
        let wanted: Vec<(Table, Vec<u8>)> =
            KEYS.iter().map(|k| (Table::Meta, k.to_vec())).collect();
        txn.prefetch(&wanted)?;
        for key in KEYS {
            txn.get(Table::Meta, key)?;
        }
        Ok(())
    });
    // A read, then the delete sent before the commit.
    let known_delete = cost(|txn| {
        txn.get(Table::Meta, b"a")?;
        txn.delete(Table::Meta, b"a").map(drop)
    });
    // Whether it is there, then the delete.
    let blind_delete = cost(|txn| txn.delete(Table::Meta, b"b").map(drop));
    let remove = cost(|txn| txn.remove(Table::Meta, b"c"));
    // Puts and deletes kept, then sent together.
    let puts_and_deletes = cost(|txn| {
        txn.remove(Table::Meta, b"d")?;
        txn.put(Table::Meta, b"f", b"2")?;
        txn.put(Table::Meta, b"e", b"2")
    });
    assert_eq!(
        [
            once,
            ten_times,
            each,
            prefetched,
            known_delete,
            blind_delete,
            remove,
            puts_and_deletes,
        ],
        [1, 1, 5, 1, 2, 2, 1, 1]
    );
    let left = read(&store, |txn| txn.range(Table::Meta, b"a", b"z", false, 10)).unwrap();
    let left: Vec<(&[u8], &[u8])> = left.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    assert_eq!(left, [(&b"e"[..], &b"2"[..]), (b"f", b"2")]);
    store.close();
}

/// A write costs two round trips, three with the records its batch reads first: the write
/// lock sent with `BEGIN`, the reads (and the message numbers the jobs said they take), then
/// the writes sent with `COMMIT`, the unlock and the wait for the disk. A job that fails costs
/// two as well (its `ROLLBACK` goes with the unlock), and gives the lock back.
#[test]
fn a_write_is_the_lock_with_begin_its_reads_and_the_commit_with_the_unlock() {
    if !services::available(
        "a_write_is_the_lock_with_begin_its_reads_and_the_commit_with_the_unlock",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    // The writer's connection is set up by its first job.
    write_sync(&store, |txn| txn.put(Table::Meta, b"a", b"1")).unwrap();
    let trips = |job: WriteJob, done: &mpsc::Receiver<Result<(), StoreError>>| {
        let before = store.round_trips();
        store.write(job);
        let result = done.recv_timeout(WAIT).expect("the job finishes in time");
        (store.round_trips() - before, result)
    };
    let (tx, done) = mpsc::channel();
    let job = |work: fn(&mut dyn WriteTxn) -> Result<(), StoreError>| {
        let tx = tx.clone();
        WriteJob::new(work, move |r| {
            let _ = tx.send(r);
        })
    };
    let put = trips(job(|txn| txn.put(Table::Meta, b"b", b"2")), &done);
    let named = job(|txn| {
        txn.get(Table::Meta, b"a")?;
        txn.get(Table::Meta, b"b")?;
        txn.put(Table::Meta, b"c", b"3")
    })
    .reading(vec![
        (Table::Meta, b"a".to_vec()),
        (Table::Meta, b"b".to_vec()),
    ]);
    let read_then_put = trips(named, &done);
    // Message numbers: taken with the reads when the job says it takes them, else in a round
    // trip of their own; handed out in order either way.
    let numbered = |work: fn(&mut dyn WriteTxn) -> Result<(), StoreError>| {
        job(work).reading(vec![
            (Table::Meta, b"a".to_vec()),
            (Table::Meta, b"b".to_vec()),
        ])
    };
    let two_numbers = |txn: &mut dyn WriteTxn| {
        let (first, second) = (txn.next_seq()?, txn.next_seq()?);
        assert!(first < second, "{first} then {second}");
        txn.put(Table::Meta, b"seq", &second.to_be_bytes())
    };
    let one_number = |txn: &mut dyn WriteTxn| {
        let seq = txn.next_seq()?;
        txn.put(Table::Meta, b"seq", &seq.to_be_bytes())
    };
    let said = trips(numbered(two_numbers).taking_numbers(2), &done);
    let unsaid = trips(numbered(one_number), &done);
    let failed = trips(
        job(|txn| {
            txn.put(Table::Meta, b"d", b"4")?;
            Err(StoreError::Backend("refused".to_owned()))
        }),
        &done,
    );
    assert_eq!(put, (2, Ok(())));
    assert_eq!(read_then_put, (3, Ok(())));
    assert_eq!(said, (3, Ok(())));
    assert_eq!(unsaid, (4, Ok(())));
    assert_eq!(failed.0, 2);
    assert!(failed.1.is_err());
    // The lock went back with the rollback: another store's writer takes it.
    let other = PgStore::open(&schema.url, &schema.name).unwrap();
    write_sync(&other, |txn| txn.put(Table::Meta, b"e", b"5")).unwrap();
    let stored = read(&other, |txn| txn.range(Table::Meta, b"a", b"z", false, 10)).unwrap();
    let keys: Vec<&[u8]> = stored.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, [&b"a"[..], b"b", b"c", b"e", b"seq"]);
    other.close();
    store.close();
}

/// Keys written as new are inserted plainly, not upserted; one the transaction deleted first
/// (its row still in the table until the commit) is upserted, and one already in the table
/// fails the transaction (a caller's bug, reported and committed nowhere).
#[test]
fn keys_written_as_new_are_inserted_unless_the_table_may_hold_them() {
    if !services::available(
        "keys_written_as_new_are_inserted_unless_the_table_may_hold_them",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    write_sync(&store, |txn| {
        let seq = txn.next_seq()?.to_be_bytes();
        txn.insert(Table::Messages, &seq, b"new")?;
        txn.put(Table::Meta, b"k", b"old")?;
        txn.put(Table::Meta, b"seq", &seq)
    })
    .unwrap();
    // Deleted, read as absent, then written as such, in one transaction.
    write_sync(&store, |txn| {
        assert!(txn.delete(Table::Meta, b"k")?);
        assert_eq!(txn.get(Table::Meta, b"k")?, None);
        txn.put_absent(Table::Meta, b"k", b"again")?;
        assert_eq!(txn.get(Table::Meta, b"absent")?, None);
        txn.put_absent(Table::Meta, b"absent", b"now")
    })
    .unwrap();
    let read_back = read(&store, |txn| {
        let seq = txn.get(Table::Meta, b"seq")?.unwrap();
        Ok((
            txn.get(Table::Messages, &seq)?,
            txn.get(Table::Meta, b"k")?,
            txn.get(Table::Meta, b"absent")?,
        ))
    })
    .unwrap();
    assert_eq!(
        read_back,
        (
            Some(b"new".to_vec()),
            Some(b"again".to_vec()),
            Some(b"now".to_vec())
        )
    );
    // A key the table holds, inserted as new (a bug of the caller): the job fails, as a
    // conflict once it has been run again for `CONFLICT_PATIENCE`, and nothing of it is kept.
    let started = std::time::Instant::now();
    let result = write_sync(&store, |txn| {
        txn.put(Table::Meta, b"other", b"1")?;
        txn.insert(Table::Meta, b"k", b"clobbered")
    });
    assert_eq!(result, Err(StoreError::Conflict));
    assert!(started.elapsed() >= wa_server::store::postgres::CONFLICT_PATIENCE);
    let after = read(&store, |txn| {
        Ok((txn.get(Table::Meta, b"k")?, txn.get(Table::Meta, b"other")?))
    })
    .unwrap();
    assert_eq!(after, (Some(b"again".to_vec()), None));
    store.close();
}

/// Queues a job on `store` that runs `first`, then keeps its transaction open (its writer
/// busy, and, serialized, the cluster's write lock held) until told to go on; returns once it
/// runs, with the sender that tells it. `done` gets its outcome.
fn hold_writer(
    store: &PgStore,
    mut first: impl FnMut(&mut dyn WriteTxn) -> Result<(), StoreError> + Send + 'static,
    done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
) -> mpsc::Sender<()> {
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    store.write(WriteJob::new(
        move |txn| {
            first(txn)?;
            let _ = started_tx.send(());
            let _ = go_rx.lock().unwrap().recv_timeout(WAIT);
            Ok(())
        },
        done,
    ));
    started.recv_timeout(WAIT).expect("the holding job runs");
    go
}

/// Runs `jobs` in one batch of `store`'s writer (a job queued first holds the writer until
/// they are all queued), and waits for them; the statements the batch sent.
fn one_batch(
    store: &PgStore,
    jobs: Vec<WriteJob>,
    done: &mpsc::Receiver<Result<(), StoreError>>,
) -> u64 {
    let go = hold_writer(store, |_| Ok(()), |_| {});
    let before = store.statements();
    let count = jobs.len();
    for job in jobs {
        store.write(job);
    }
    go.send(()).unwrap();
    for _ in 0..count {
        done.recv_timeout(WAIT).unwrap().unwrap();
    }
    store.statements() - before
}

/// What the jobs of a batch name as read first ([`WriteJob::reading`]) is read in one
/// statement for the batch; without the names, each job's prefetch is a statement.
#[test]
fn a_batch_reads_what_its_jobs_name_in_one_statement() {
    if !services::available("a_batch_reads_what_its_jobs_name_in_one_statement", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    write_sync(&store, |txn| {
        for key in 0_u8..6 {
            txn.put(Table::Meta, &[key], b"1")?;
        }
        Ok(())
    })
    .unwrap();
    let batch_cost = |named: bool| {
        let (done_tx, done) = mpsc::channel();
        let jobs = [[0_u8, 1], [2, 3], [4, 5]].map(|pair| {
            let keys: Vec<(Table, Vec<u8>)> =
                pair.iter().map(|&k| (Table::Meta, vec![k])).collect();
            let own = keys.clone();
            let tx = done_tx.clone();
            let job = WriteJob::new(
                move |txn| {
                    txn.prefetch(&own)?;
                    for key in pair {
                        assert_eq!(txn.get(Table::Meta, &[key])?.as_deref(), Some(&b"1"[..]));
                    }
                    Ok(())
                },
                move |r| {
                    let _ = tx.send(r);
                },
            );
            if named { job.reading(keys) } else { job }
        });
        one_batch(&store, jobs.into(), &done)
    };
    assert_eq!([batch_cost(true), batch_cost(false)], [1, 3]);
    store.close();
}

/// What the jobs of a batch read through other records ([`WriteJob::reading_through`]: a
/// prefix, then another record's value) is read in the batch's one statement too, with what
/// they name directly; a pointer to nothing, or no pointer, costs no further statement, and
/// a record an earlier job of the batch wrote reads as written.
#[test]
fn a_batch_reads_through_pointers_in_its_one_statement() {
    if !services::available("a_batch_reads_through_pointers_in_its_one_statement", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    write_sync(&store, |txn| {
        // Pointers in one table, records under "p" + pointer in another.
        txn.put(Table::SentIds, b"to-a", b"a")?;
        txn.put(Table::SentIds, b"to-b", b"b")?;
        txn.put(Table::SentIds, b"to-none", b"z")?;
        txn.put(Table::Messages, b"pa", b"A")?;
        txn.put(Table::Messages, b"pb", b"B")?;
        txn.put(Table::Counters, b"c", b"1")
    })
    .unwrap();
    let (done_tx, done) = mpsc::channel();
    let reads: Vec<Vec<u8>> = ["p", "pa", "pb", "pz"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let jobs = ["to-a", "to-b", "to-none", "to-nowhere"]
        .into_iter()
        .enumerate()
        .map(|(i, pointer)| {
            let tx = done_tx.clone();
            let seen = Arc::clone(&seen);
            let wanted = reads.clone();
            WriteJob::new(
                move |txn| {
                    if i == 0 {
                        // Read again by the second job, through its pointer: this value.
                        txn.put(Table::Messages, b"pb", b"B2")?;
                    }
                    let mut got = Vec::new();
                    for key in &wanted[1..] {
                        got.push(txn.get(Table::Messages, key)?);
                    }
                    got.push(txn.get(Table::Counters, b"c")?);
                    seen.lock().unwrap().push((i, got));
                    Ok(())
                },
                move |r| {
                    let _ = tx.send(r);
                },
            )
            .reading(vec![(Table::Counters, b"c".to_vec())])
            .reading_through(vec![wa_server::store::Indirect {
                table: Table::Messages,
                prefix: b"p".to_vec(),
                via: (Table::SentIds, pointer.as_bytes().to_vec()),
            }])
        })
        .collect();
    let cost = one_batch(&store, jobs, &done);
    let seen = seen.lock().unwrap().clone();
    let some = |v: &[u8]| Some(v.to_vec());
    let after_first = vec![some(b"A"), some(b"B2"), None, some(b"1")];
    assert_eq!(seen.len(), 4);
    for (i, got) in &seen {
        assert_eq!(got, &after_first, "job {i}");
    }
    // One statement reads it all: every get afterwards is known. (The last of the two
    // statements is the batch's write.)
    assert_eq!(cost, 2);
    store.close();
}

/// No statement of the store scans the whole table, however the table grew after the
/// statement was planned: a connection prepares its statements while the table is nearly
/// empty (PostgreSQL plans a prepared statement's first five runs for their values, then
/// keeps a generic plan), then the table grows to 20,000 rows. A plan made for an empty table
/// (a hash join over a scan of the whole table) would cost in proportion to what is stored.
#[test]
fn no_statement_scans_the_whole_table_as_it_grows() {
    if !services::available("no_statement_scans_the_whole_table_as_it_grows", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    let work = |round: u64| {
        write_sync(&store, move |txn| {
            let key = round.to_be_bytes();
            let last = round.wrapping_sub(1).to_be_bytes();
            txn.prefetch(&[(Table::Inbox, key.to_vec()), (Table::Inbox, last.to_vec())])?;
            txn.put(Table::Inbox, &key, b"entry")?;
            txn.delete(Table::Inbox, &last)?;
            txn.remove(Table::Meta, &last)?;
            txn.put(Table::Meta, &key, b"m")?;
            txn.range(Table::Inbox, &[], &[0xFF], false, 3)?;
            txn.range(Table::Inbox, &[], &[0xFF], true, 3)?;
            txn.count(Table::Inbox, &[], &[0xFF], 3)?;
            txn.len(Table::Inbox)?;
            txn.next_seq()?;
            Ok(())
        })
        .unwrap();
        read(&store, |txn| {
            txn.get(Table::Inbox, &round.to_be_bytes())?;
            txn.range(Table::Inbox, &[], &[0xFF], false, 3)?;
            txn.count(Table::Meta, &[], &[0xFF], 3)
        })
        .unwrap();
    };
    for round in 0..8 {
        work(round);
    }
    let mut client = raw_client();
    client
        .batch_execute(&format!(
            "INSERT INTO {}.kv SELECT t, int8send(1000000 + i), 'x' \
             FROM generate_series(1, 10000) AS i, unnest(ARRAY[{}, {}]::int2[]) AS t",
            schema.name,
            Table::Inbox.index(),
            Table::Meta.index(),
        ))
        .unwrap();
    for round in 8..16 {
        work(round);
    }
    store.close();
    drop(store);
    // A session's statistics are in before it leaves pg_stat_activity.
    let app = format!("wa-server/{}", schema.name);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let sessions: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        if sessions == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store's sessions did not end"
        );
        std::thread::yield_now();
    }
    // Rows read by whole-table scans: the primary key's build (by the migration, on the empty
    // table) is one, of no rows.
    let (scanned, index_scans): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT seq_tup_read, idx_scan FROM pg_stat_user_tables \
                 WHERE schemaname = $1 AND relname = 'kv'",
                &[&schema.name],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(
        index_scans > 100,
        "the store's statements were counted: {index_scans}"
    );
    assert_eq!(scanned, 0);
}

/// The relays of a batch take their message numbers in one statement: each job one number,
/// every number new and greater than those before; the numbers a batch did not hand out are
/// skipped.
#[test]
fn a_batch_takes_its_message_numbers_in_one_statement() {
    if !services::available("a_batch_takes_its_message_numbers_in_one_statement", false) {
        return;
    }
    let schema = Schema::new();
    let store = PgStore::open(&schema.url, &schema.name).unwrap();
    let numbers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut costs = Vec::new();
    for round in 0..2 {
        let (done_tx, done) = mpsc::channel();
        // Four jobs; the second takes no number.
        let jobs = (0..4)
            .map(|i| {
                let numbers = Arc::clone(&numbers);
                let tx = done_tx.clone();
                WriteJob::new(
                    move |txn| {
                        if i != 1 {
                            let seq = txn.next_seq()?;
                            numbers.lock().unwrap().push((round, seq));
                        }
                        Ok(())
                    },
                    move |r| {
                        let _ = tx.send(r);
                    },
                )
            })
            .collect();
        costs.push(one_batch(&store, jobs, &done));
    }
    assert_eq!(costs, [1, 1]);
    let numbers = numbers.lock().unwrap().clone();
    assert_eq!(numbers.len(), 6);
    assert!(
        numbers.windows(2).all(|w| w[0].1 < w[1].1),
        "increasing: {numbers:?}"
    );
    // The first batch took four numbers and handed out three: the second starts after them.
    assert!(numbers[3].1 > numbers[2].1 + 1, "{numbers:?}");
    store.close();
}

/// A failed job gives the write lock back: another store's job runs next. And a job that
/// swallows a failed statement is not reported as committed (PostgreSQL has aborted the
/// transaction; its `COMMIT` answers `ROLLBACK`).
#[test]
fn a_failed_transaction_gives_the_lock_back_and_commits_nothing() {
    if !services::available(
        "a_failed_transaction_gives_the_lock_back_and_commits_nothing",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let a = PgStore::open(&schema.url, &schema.name).unwrap();
    let b = PgStore::open(&schema.url, &schema.name).unwrap();
    let refused = write_sync(&a, |txn| {
        txn.put(Table::Meta, b"a", b"1")?;
        Err(StoreError::Backend("the job gives up".into()))
    });
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
    // A key longer than a B-tree entry may be: the statement that sends it fails.
    let mut rng = Seeded(0x0BAD_C0FF_EE00_0001);
    let huge: Vec<u8> = (0..10_000)
        .map(|_| u8::try_from(rng.below(256)).unwrap())
        .collect();
    let swallowed = write_sync(&a, move |txn| {
        txn.put(Table::Meta, b"x", b"1")?;
        txn.put(Table::Meta, &huge, b"1")?;
        let _ = txn.len(Table::Meta);
        Ok(())
    });
    assert!(
        matches!(&swallowed, Err(StoreError::Backend(m)) if m.contains("nothing of it was committed")),
        "{swallowed:?}"
    );
    // B's job would wait for ever behind a lock A kept.
    write_sync(&b, |txn| txn.put(Table::Meta, b"b", b"2")).unwrap();
    let stored = read(&b, |txn| txn.range(Table::Meta, &[], &[0xFF], false, 10)).unwrap();
    assert_eq!(stored, vec![(b"b".to_vec(), b"2".to_vec())]);
    a.close();
    b.close();
}

/// The default writers take turns across stores: a job of one store that comes while another
/// store's transaction is open waits for the write lock, and then sees all of that transaction.
/// Returns once a writer of `schema`'s stores waits for the write lock: PostgreSQL shows one
/// advisory lock not granted to a session of the schema. `meanwhile` runs between looks.
fn waits_for_the_lock(schema: &Schema, mut meanwhile: impl FnMut()) {
    let mut client = raw_client();
    let app = format!("wa-server/{}", schema.name);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s USING (pid) \
                 WHERE l.locktype = 'advisory' AND NOT l.granted AND s.application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        if waiting == 1 {
            return;
        }
        meanwhile();
        assert!(
            std::time::Instant::now() < deadline,
            "no writer waited for the lock"
        );
        std::thread::yield_now();
    }
}

/// Jobs queued while a writer waits for the lock join its batch: one transaction for the job
/// it took and the two queued after it (their three message numbers, one statement).
#[test]
fn jobs_queued_while_a_writer_waits_for_the_lock_join_its_batch() {
    if !services::available(
        "jobs_queued_while_a_writer_waits_for_the_lock_join_its_batch",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let a = PgStore::open(&schema.url, &schema.name).unwrap();
    let b = PgStore::open(&schema.url, &schema.name).unwrap();
    // A's job holds the lock until told to go on.
    let go = hold_writer(&a, |_| Ok(()), |_| {});
    let (done_tx, done) = mpsc::channel();
    let numbered = |tx: mpsc::Sender<Result<(), StoreError>>| {
        WriteJob::new(
            |txn| txn.next_seq().map(drop),
            move |r| {
                let _ = tx.send(r);
            },
        )
    };
    let before = b.statements();
    b.write(numbered(done_tx.clone()));
    waits_for_the_lock(&schema, || {});
    b.write(numbered(done_tx.clone()));
    b.write(numbered(done_tx));
    go.send(()).unwrap();
    for _ in 0..3 {
        done.recv_timeout(WAIT).unwrap().unwrap();
    }
    assert_eq!(b.statements() - before, 1);
    a.close();
    b.close();
}

#[test]
fn serialized_writers_of_two_stores_take_turns() {
    if !services::available("serialized_writers_of_two_stores_take_turns", false) {
        return;
    }
    let schema = Schema::new();
    let a = PgStore::open(&schema.url, &schema.name).unwrap();
    let b = PgStore::open(&schema.url, &schema.name).unwrap();
    // A's job writes, then stays in its transaction until told to go on.
    let (a_done_tx, a_done) = mpsc::channel();
    let go = hold_writer(
        &a,
        |txn| txn.put(Table::Meta, b"first", b"a"),
        move |r| {
            let _ = a_done_tx.send(r);
        },
    );
    // B's job, queued while A's transaction is open, notes what it finds.
    let (b_done_tx, b_done) = mpsc::channel();
    b.write(WriteJob::new(
        move |txn| {
            let seen = txn.get(Table::Meta, b"first")?;
            txn.put(Table::Meta, b"second", &seen.unwrap_or_default())
        },
        move |r| {
            let _ = b_done_tx.send(r);
        },
    ));
    // B's writer waits for the lock.
    waits_for_the_lock(&schema, || {
        assert!(
            b_done.try_recv().is_err(),
            "B's job ended while A's transaction was open"
        );
    });
    go.send(()).unwrap();
    assert_eq!(a_done.recv_timeout(WAIT).unwrap(), Ok(()));
    assert_eq!(b_done.recv_timeout(WAIT).unwrap(), Ok(()));
    let second = read(&b, |txn| txn.get(Table::Meta, b"second")).unwrap();
    assert_eq!(second.as_deref(), Some(&b"a"[..]), "B saw A's write");
    a.close();
    b.close();
}

#[test]
fn a_check_then_set_raced_on_two_stores_is_won_once() {
    if !services::available("a_check_then_set_raced_on_two_stores_is_won_once", false) {
        return;
    }
    let schema = Schema::new();
    // Concurrent writers: with the default (serialized) the second job could not start before
    // the first ended, and the barrier would never open.
    let stores: Vec<Arc<PgStore>> = (0..2)
        .map(|_| {
            let store = PgStore::open_with(&schema.url, &schema.name, Writers::Concurrent);
            Arc::new(store.unwrap())
        })
        .collect();
    // The shape of a receipt: "not marked yet? mark it and tell the sender". Both jobs read
    // before either writes (a barrier on their first run forces it), so a store that let both
    // commit would tell the sender twice: PostgreSQL's serializable isolation must refuse one
    // of them, which is then run again.
    for round in 0..5u8 {
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let key = vec![b'k', round];
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let (store, barrier, key) = (Arc::clone(store), Arc::clone(&barrier), key.clone());
                std::thread::spawn(move || {
                    let won = Arc::new(std::sync::Mutex::new(false));
                    let slot = Arc::clone(&won);
                    let mut first_run = true;
                    write_sync(&*store, move |txn| {
                        let marked = txn.get(Table::Receipts, &key)?.is_some();
                        if std::mem::take(&mut first_run) {
                            barrier.wait();
                        }
                        *slot.lock().unwrap() = !marked;
                        if !marked {
                            txn.put(Table::Receipts, &key, b"delivered")?;
                        }
                        Ok(())
                    })
                    .unwrap();
                    *won.lock().unwrap()
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(wins, 1, "round {round}");
    }
}

/// Two servers on one schema, no bus: the store alone keeps them consistent.
async fn two_nodes(schema: &Schema) -> (TestServer, TestServer) {
    let start = || {
        TestServer::start(|config: &mut Config| {
            config.store = StoreKind::Postgres {
                url: schema.url.clone(),
                schema: schema.name.clone(),
            };
        })
    };
    let a = start().await;
    let b = start().await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_raced_on_two_nodes_give_each_account_one_ack_2() {
    if !services::available(
        "receipts_raced_on_two_nodes_give_each_account_one_ack_2",
        false,
    ) {
        return;
    }
    let schema = Schema::new();
    let (mut a, mut b) = two_nodes(&schema).await;
    // The core's flows on PostgreSQL: registration, keys, directory, groups, relays, receipts.
    let mut alice_a = a.phone("15550000101", 101).await;
    let bob_reg = a.phone("15550000102", 102).await;
    let carol_reg = b.phone("15550000103", 103).await;
    let (alice, bob, carol) = (alice_a.jid(), bob_reg.jid(), carol_reg.jid());
    bob_reg.close().await;
    carol_reg.close().await;
    // Every account on both nodes at once (without a bus nobody is replaced).
    let mut alice_b = Phone::login(&b.server.phone_url(), "15550000101", 101).await;
    let mut bob_a = Phone::login(&a.server.phone_url(), "15550000102", 102).await;
    let mut bob_b = Phone::login(&b.server.phone_url(), "15550000102", 102).await;
    let mut carol_a = Phone::login(&a.server.phone_url(), "15550000103", 103).await;
    let mut carol_b = Phone::login(&b.server.phone_url(), "15550000103", 103).await;
    let group = alice_a
        .create_group("race", vec![bob.clone(), carol.clone()])
        .await;

    const MESSAGES: usize = 20;
    for i in 0..MESSAGES {
        let id = format!("RACE{i}");
        let stored = alice_a
            .relay_to_group(
                &group,
                vec![alice.clone(), bob.clone(), carol.clone()],
                &id,
                &[7; 64],
            )
            .await
            .unwrap();
        assert!(stored.t > 0);
        // Four receipts for one message at once: two accounts, each from both nodes.
        let mut sent = Vec::new();
        for phone in [&mut bob_a, &mut bob_b, &mut carol_a, &mut carol_b] {
            let rid = phone
                .send(Phone::receipt_request(&group, Some(alice.clone()), &id))
                .await;
            sent.push(rid);
        }
        for (phone, rid) in [&mut bob_a, &mut bob_b, &mut carol_a, &mut carol_b]
            .into_iter()
            .zip(sent)
        {
            let _: serde_json::Value = phone.answer(rid).await.unwrap();
        }
    }
    // A barrier per node: a message from bob, pushed on each node to alice's connection
    // there, after every ack those receipts caused (one queue per connection, in order).
    bob_a.relay_to(&alice, "BARRIER_A", b"a").await.unwrap();
    bob_b.relay_to(&alice, "BARRIER_B", b"b").await.unwrap();
    let mut acks: HashMap<(String, String), usize> = HashMap::new();
    for (phone, barrier) in [(&mut alice_a, "BARRIER_A"), (&mut alice_b, "BARRIER_B")] {
        loop {
            match phone.event().await {
                PhoneEvent::Ack { ack } if ack.level == 2 => {
                    let who = ack.participant.map(|p| p.to_string()).unwrap_or_default();
                    *acks.entry((ack.id, who)).or_default() += 1;
                }
                PhoneEvent::Message { message } if message.id == barrier => break,
                _ => {}
            }
        }
    }
    for i in 0..MESSAGES {
        for who in [&bob, &carol] {
            assert_eq!(
                acks.get(&(format!("RACE{i}"), who.to_string())),
                Some(&1),
                "ack 2 of RACE{i} for {who}: {acks:?}"
            );
        }
    }
    assert_eq!(acks.len(), MESSAGES * 2, "{acks:?}");
    // No lost update: every queue entry retired, on both nodes' view of the one store (the
    // barriers are still waiting for alice's receipts).
    for node in [&a, &b] {
        assert_eq!(
            status(node.server.local_addr()).await["messages"]["queued"],
            2
        );
    }
}

/// A small seeded generator (xorshift64*), so that the model test is the same every run.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Runs `ops` (kind, table, a, b) in `txn`, noting what each read saw.
fn model_ops(
    txn: &mut dyn WriteTxn,
    ops: &[(u64, bool, u8, u8)],
    seen: &mut Vec<String>,
) -> Result<(), StoreError> {
    for &(kind, inbox, a, b) in ops {
        let t = if inbox { Table::Inbox } else { Table::Meta };
        let note = match kind {
            0..=3 => format!("{:?}", txn.put(t, &[a], &[b; 3])),
            4..=6 => format!("{:?}", txn.delete(t, &[a])),
            7 => format!("{:?}", txn.get(t, &[a])),
            8 => format!(
                "{:?}",
                txn.range(t, &[a], &[b], a % 2 == 0, usize::from(b % 5))
            ),
            9 => format!("{:?}", txn.count(t, &[a], &[b], usize::from(a % 6))),
            10 => format!("{:?}", txn.len(t)),
            11 => format!(
                "{:?}",
                txn.prefetch(&[(t, vec![a]), (Table::Inbox, vec![b]), (t, vec![a, b])])
            ),
            // A key read as absent, then written as such.
            12 => match txn.get(t, &[a])? {
                None => format!("{:?}", txn.put_absent(t, &[a], &[b; 2])),
                Some(v) => format!("{v:?} {:?}", txn.put(t, &[a], &[b; 2])),
            },
            // A key never written before (`a` and `b` number it).
            13 => format!("{:?}", txn.insert(t, &[0xF0, a, b], &[b; 4])),
            _ => return Err(StoreError::Backend("the job gives up".into())),
        };
        seen.push(note);
    }
    Ok(())
}

/// The PostgreSQL store, which keeps a transaction's writes and sends them before the commit
/// (keys written as new, `insert` and `put_absent`, as plain inserts), and remembers what it
/// read and prefetched, answers every read inside jobs and after them as the plain in-memory
/// store does: many jobs queued at once (so that they share transactions), some failing.
#[test]
fn kept_writes_read_back_as_the_memory_store_does() {
    if !services::available("kept_writes_read_back_as_the_memory_store_does", false) {
        return;
    }
    let schema = Schema::new();
    let pg = PgStore::open(&schema.url, &schema.name).unwrap();
    let model = wa_server::store::MemStore::new();
    let mut rng = Seeded(0x5EED_1234_ABCD_0001);
    let mut fresh = 0u16;
    for round in 0..40 {
        let jobs: Vec<Vec<(u64, bool, u8, u8)>> = (0..1 + rng.below(12))
            .map(|_| {
                (0..rng.below(8))
                    .map(|_| {
                        let kind = rng.below(15);
                        let inbox = rng.below(2) == 0;
                        let mut a = u8::try_from(rng.below(12)).unwrap();
                        let mut b = u8::try_from(rng.below(13)).unwrap();
                        if kind == 13 {
                            [a, b] = fresh.to_be_bytes();
                            fresh += 1;
                        }
                        (kind, inbox, a, b)
                    })
                    .collect()
            })
            .collect();
        let run = |store: &dyn Store| -> Vec<String> {
            let waits: Vec<_> = jobs
                .iter()
                .map(|ops| {
                    let ops = ops.clone();
                    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
                    let mine = Arc::clone(&seen);
                    let (tx, rx) = mpsc::channel();
                    store.write(WriteJob::new(
                        move |txn| {
                            let mut notes = Vec::new();
                            let result = model_ops(txn, &ops, &mut notes);
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
            let mut out: Vec<String> = waits
                .into_iter()
                .map(|(rx, seen)| {
                    let result = rx.recv_timeout(WAIT).unwrap();
                    format!("{result:?} {:?}", seen.lock().unwrap())
                })
                .collect();
            for t in [Table::Meta, Table::Inbox] {
                out.push(format!(
                    "{:?}",
                    read(store, |txn| Ok((
                        txn.range(t, &[], &[0xFF], false, 100)?,
                        txn.len(t)?,
                        txn.count(t, &[2], &[9], 3)?
                    )))
                    .unwrap()
                ));
            }
            out
        };
        assert_eq!(run(&pg), run(&model), "round {round}");
    }
    pg.close();
}
