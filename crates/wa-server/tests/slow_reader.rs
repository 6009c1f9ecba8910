//! A phone that stops reading while messages flow to it: its push queue overflows its byte
//! budget, the server closes it (not waiting for the write timeout), and every message is still
//! stored: it gets them all when it comes back.

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
async fn a_phone_that_stops_reading_is_closed_and_loses_nothing() {
    let mut t = TestServer::start(|c| {
        c.push_queue_bytes = 256 << 10;
        // Long enough that only the byte budget can be why it closes.
        c.write_timeout = Duration::from_secs(120);
    })
    .await;
    let mut alice = t.phone("15550000061", 61).await;
    let bob = t.phone("15550000062", 62).await;
    let bob_jid = bob.jid();
    bob.close().await;
    let addr = t.server.local_addr();
    let url = t.server.phone_url();
    // Bob comes back on a socket with a small receive buffer, and stops reading.
    let mut slow_bob = Phone::login_small_buffer(&url, addr, "15550000062", 62).await;

    // 24 messages of 400 KiB: far more than the kernel buffers (4 MiB here) and the budget.
    let count = 24u8;
    for i in 0..count {
        let ciphertext = vec![i; 400 << 10];
        alice
            .relay_to(&bob_jid, &format!("BIG{i}"), &ciphertext)
            .await
            .unwrap();
    }
    // The server closed Bob's socket for overflowing his queue.
    slow_bob.closed().await;
    let s = status(addr).await;
    assert!(s["connections"]["lagged"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["connections"]["write_timeouts"], 0);

    // Nothing was lost: every message waits for him, in order, with its bytes.
    let mut bob = Phone::login(&url, "15550000062", 62).await;
    for i in 0..count {
        let message = bob.message().await;
        assert_eq!(message.id, format!("BIG{i}"));
        let body = message.olm.unwrap().body;
        assert_eq!(body.len(), 400 << 10);
        assert!(body.iter().all(|b| *b == i));
    }
    t.server.shutdown().await;
}
