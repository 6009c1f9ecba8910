//! A bounded load run on loopback: a few clients exchanging messages for a second; every
//! message stored is delivered, and the figures are sane. (The figures for BENCHMARKS come
//! from `examples/load.rs`, in release mode.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_clients_for_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = wa_server::Config::new(dir.path());
    config.limits.requests_per_second = 100_000;
    config.limits.request_burst = 100_000;
    let server = start_with(config).await;
    let report = run_load(&server.ws_url(), 4, Duration::from_secs(1), 8).await;
    assert!(report.sent > 0);
    assert_eq!(
        report.delivered, report.sent,
        "every message reaches its web client"
    );
    assert_eq!(
        status_of(&server, "messages", "stored") as usize,
        report.sent
    );
    assert!(
        report.settled,
        "every device acknowledged: the queue emptied"
    );
    assert!(report.percentile(0.99) < 10_000);
    server.shutdown().await;
}
