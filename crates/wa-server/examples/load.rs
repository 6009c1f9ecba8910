//! Load test on loopback: N accounts (a phone and a web client each) exchanging messages.
//!
//! ```text
//! cargo build --release -p wa-server --bins --examples
//! target/release/examples/load [CLIENTS] [SECONDS] [WINDOW]
//! ```
//!
//! The server runs as its own process (`target/<profile>/wa-server`, next to this example's
//! directory), so its RSS is its own; the clients are real `wa-session` state machines on
//! real sockets. Prints messages per second (delivered to web clients), delivery latency
//! percentiles (send → the recipient's web client has it), and the server's RSS.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a measuring tool: a panic is a failed run"
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let clients = arg(0, 16) as usize;
    let seconds = arg(1, 5);
    let window = arg(2, 4) as usize;

    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("wa-server");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release -p wa-server --bins"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&bin)
        // A load generator is not a person: lift the per-connection request rate.
        .args([
            "--listen",
            "127.0.0.1:0",
            "--requests-per-second",
            "100000",
            "--data",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (ws_url, status_url) = (words[1].to_owned(), words[3].to_owned());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (report, status) = runtime.block_on(async {
        let report =
            support::run_load(&ws_url, clients, Duration::from_secs(seconds), window).await;
        let (_, body) = support::http("GET", &status_url, Vec::new()).await;
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (report, status)
    });
    let cpu = server_cpu_seconds(child.id());
    let _ = child.kill();
    let _ = child.wait();

    let rss = status["rss_bytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    println!(
        "clients {clients}, window {window}, {seconds} s: sent {}, delivered {} to web clients \
         ({} deliveries in all, phones included)",
        report.sent, report.delivered, status["messages"]["deliveries"]
    );
    println!("throughput: {:.0} messages/s", report.per_second());
    println!(
        "latency: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        report.percentile(0.5),
        report.percentile(0.9),
        report.percentile(0.99),
        report.latencies_ms.last().copied().unwrap_or(0)
    );
    println!("server RSS after the run: {rss:.1} MiB");
    if let Some(cpu) = cpu {
        println!(
            "server CPU time (linking included): {cpu:.2} s, {:.0} µs per message",
            cpu * 1e6 / report.sent.max(1) as f64
        );
    }
}

/// User + system CPU time of a process, from `/proc/<pid>/stat` (Linux; 100 ticks a second).
fn server_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
