//! Measures the server's memory per idle WebSocket: the `wa-server` binary runs as its own
//! process, this program opens sockets to it on loopback and reads its RSS from `/status`.
//!
//! ```text
//! cargo build --release -p wa-server --bins --examples
//! target/release/examples/idle_rss [SOCKETS]
//! ```
//!
//! Two runs, each on a fresh server: SOCKETS web client sockets that have not logged in
//! (`/ws`, upgraded and idle), then SOCKETS / 4 phones registered, logged in and idle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a measuring tool: a panic is a failed run"
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;

use support::spawned::{Spawned, spawn};

fn start(bin: &Path, dir: &Path) -> Spawned {
    let mut args: Vec<&std::ffi::OsStr> = [
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "100000",
        "--max-connections-per-address",
        "100000",
        "--max-unauthenticated",
        "100000",
        "--requests-per-second",
        "100000",
        "--no-budgets",
        "--data-dir",
    ]
    .iter()
    .map(std::ffi::OsStr::new)
    .collect();
    args.push(dir.as_os_str());
    spawn(bin, args, "warn", false)
}

async fn rss(status: SocketAddr) -> u64 {
    support::status(status).await["rss_bytes"].as_u64().unwrap()
}

fn main() {
    let sockets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("wa-server");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release -p wa-server --bins"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Sockets that have not logged in.
        let dir = tempfile::tempdir().unwrap();
        let mut server = start(&bin, dir.path());
        let before = rss(server.status).await;
        let mut held = Vec::with_capacity(sockets);
        for _ in 0..sockets {
            held.push(tokio_tungstenite::connect_async(server.ws_url.as_str()).await.unwrap().0);
        }
        assert_eq!(support::status(server.status).await["connections"]["web"], sockets);
        let after = rss(server.status).await;
        println!(
            "{sockets} idle web sockets before login: RSS {:.1} MiB -> {:.1} MiB, {:.1} KiB per socket",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            (after - before) as f64 / 1024.0 / sockets as f64
        );
        drop(held);
        server.stop();

        // Phones logged in.
        let phones = (sockets / 4).max(1);
        let dir = tempfile::tempdir().unwrap();
        let mut server = start(&bin, dir.path());
        let before = rss(server.status).await;
        let mut held = Vec::with_capacity(phones);
        for i in 0..phones {
            let number = format!("1555{i:07}");
            let pending = support::Phone::request_code(&server.phone_url, &number, (i % 250) as u8 + 1).await;
            let (got, code) = server.codes.recv().unwrap();
            assert_eq!(got, number);
            held.push(pending.verify(&code).await);
        }
        assert_eq!(support::status(server.status).await["online_devices"], phones);
        let after = rss(server.status).await;
        println!(
            "{phones} idle phones logged in: RSS {:.1} MiB -> {:.1} MiB, {:.1} KiB per socket",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            (after - before) as f64 / 1024.0 / phones as f64
        );
        server.stop();
    });
}
