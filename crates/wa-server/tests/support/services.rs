//! The real servers the cluster tests run against: PostgreSQL and NATS on loopback.
//!
//! [`available`] probes both with a short connect timeout. Without them a test prints a notice
//! and passes (a developer machine without the services), except when `WA_CLUSTER_TESTS` is
//! `require` (CI, which starts them): then it fails. `WA_TEST_POSTGRES` and `WA_TEST_NATS`
//! override the addresses. Each test works in its own schema ([`Schema`], dropped at the end,
//! also when the test fails) and its own cluster name ([`unique`]).

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wa_server::store::PgStore;

/// The test database: trust authentication on loopback, database `test`.
pub fn postgres_url() -> String {
    std::env::var("WA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The test NATS server.
pub fn nats_url() -> String {
    std::env::var("WA_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn answers(addr: &str) -> bool {
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return false;
    };
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn host_port(url: &str, default: &str) -> String {
    // `scheme://[user@]host:port[/...]` → `host:port`.
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(default);
    if hostport.contains(':') {
        hostport.to_owned()
    } else {
        default.to_owned()
    }
}

/// Whether the services the test needs answer. When they do not: a notice and `false`, or a
/// failure when `WA_CLUSTER_TESTS=require`.
pub fn available(test: &str, need_nats: bool) -> bool {
    let pg = host_port(&postgres_url(), "127.0.0.1:5432");
    let nats = host_port(&nats_url(), "127.0.0.1:4222");
    let mut missing = Vec::new();
    if !answers(&pg) {
        missing.push(format!("PostgreSQL at {pg}"));
    }
    if need_nats && !answers(&nats) {
        missing.push(format!("NATS at {nats}"));
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(" and ");
    if std::env::var("WA_CLUSTER_TESTS").is_ok_and(|v| v == "require") {
        panic!("{test}: {what} do(es) not answer, and WA_CLUSTER_TESTS=require");
    }
    // Straight to the file, past the test harness's capture of `eprintln!`: the notice shows
    // in an ordinary `cargo test`.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "NOTICE: {test} skipped: {what} do(es) not answer (set WA_CLUSTER_TESTS=require to fail instead)"
    );
    false
}

/// A name no other test run uses: `prefix_<pid>_<counter>_<nanoseconds>` in hex.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{:x}_{n:x}_{nanos:x}", std::process::id())
}

/// A schema of the test database of this test alone, dropped with everything in it when the
/// guard goes (the test passed or failed).
pub struct Schema {
    pub name: String,
    pub url: String,
}

impl Schema {
    /// A new schema name (the store creates the schema when it opens).
    pub fn new() -> Schema {
        Schema {
            name: unique("wa_test"),
            url: postgres_url(),
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // The blocking client must not run on an async runtime's thread: a thread of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || PgStore::drop_schema(&url, &name)).join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop schema {}: {e}", self.name),
            Err(_) => eprintln!("dropping schema {} panicked", self.name),
        }
    }
}
