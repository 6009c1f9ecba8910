//! `wa demo` runs on this machine, alone, in under a minute, and tells what happened.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test"
)]

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_demo_runs_end_to_end_in_under_a_minute() {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_wa"))
        .args(["demo", "--json"])
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "the demo took {elapsed:?}"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("qr").len(), 2, "two QR codes shown");
    assert_eq!(of("linked").len(), 2);
    for level in ["sent", "delivered", "read"] {
        let acks = of("ack")
            .into_iter()
            .filter(|a| a["level"] == level)
            .count();
        assert_eq!(acks, 2, "two messages reached {level}");
    }
    let verified = of("image_verified");
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["bytes"], of("image_sent")[0]["bytes"]);
    assert_eq!(
        of("group_fanout")[0]["devices"].as_array().unwrap().len(),
        3
    );
    assert_eq!(of("done").len(), 1);
}

#[test]
fn the_demo_for_people_shows_the_qr_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_wa"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains('▀') && stdout.contains('█'),
        "QR codes in half blocks"
    );
    assert!(stdout.contains("read ✓✓ (blue)"));
    assert!(stdout.contains("All good"));
}
