//! What a group message costs the server on disk: 20 messages of 100 KB to a group of 257
//! whose other 256 members are offline. The group's ciphertext is stored once, with a pending
//! entry per device, so what the server stores (the blocks its database file takes, as `du`
//! counts them, and the records of its write-ahead log) grows by at most 3× the bytes sent; and once every device has acknowledged every message,
//! nothing waits any more.
//!
//! The figure for BENCHMARKS.md: `cargo test --release -p wa-server --test group_disk --
//! --nocapture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test: a panic is a failure"
)]

mod support;

use support::{Phone, TestServer, dir_size, stored_bytes};
use wa_server_core::budget::Rate;
use wa_wire::Jid;

const MEMBERS: usize = 257;
const MESSAGES: usize = 20;
const BODY: usize = 100_000;

fn number(i: usize) -> String {
    format!("1555{:07}", 3_000_000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_message_is_stored_once_and_forgotten_after_delivery() {
    let mut server = TestServer::start(|config| {
        // One test process plays 257 phones from one address.
        config.max_connections_per_address = 1024;
        config.core.limits.daily_send_bytes = 1 << 40;
        config.core.limits.budgets.register = Rate {
            per_second: 1000.0,
            burst: 1000,
        };
    })
    .await;
    let mut sender = server.phone(&number(0), 0).await;
    let mut members: Vec<Jid> = Vec::new();
    for i in 1..MEMBERS {
        let seed = u8::try_from(i % 256).unwrap();
        let phone = server.phone(&number(i), seed).await;
        members.push(phone.jid());
        // Offline from here on: everything for it waits on disk.
        drop(phone);
    }
    let group = sender.create_group("disk", members.clone()).await;

    let before = stored_bytes(server.dir.path());
    let apparent_before = dir_size(server.dir.path());
    let body = vec![0x5a_u8; BODY];
    for m in 0..MESSAGES {
        sender
            .relay_to_group(&group, members.clone(), &format!("G{m}"), &body)
            .await
            .unwrap();
    }
    let after = stored_bytes(server.dir.path());
    let apparent_after = dir_size(server.dir.path());

    let sent = u64::try_from(MESSAGES * BODY).unwrap();
    let grown = after.saturating_sub(before);
    println!(
        "group of {MEMBERS}, {MESSAGES} messages of {BODY} bytes ({sent} bytes sent): what the \
         data directory stores grew by {grown} bytes ({:.2}× the bytes sent); its files' length \
         by {} bytes (the log grows by 4 MiB chunks of zeros, redb doubles its file)",
        grown as f64 / sent as f64,
        apparent_after.saturating_sub(apparent_before)
    );
    // Each body is stored once, raw; every message adds an entry to each of the 256 devices'
    // queues. Measured 1.41× (2.8 MB, all of it in the write-ahead log: nothing reached the
    // database file yet); before the log, 2.32× (4.6 MB of redb pages); the server before
    // that one grew by 1,077 MB.
    assert!(
        grown <= 3 * sent,
        "what the server stores grew by {grown} bytes for {sent} bytes of group messages"
    );

    let queued = |status: serde_json::Value| status["messages"]["queued"].as_u64();
    assert_eq!(
        queued(server.server.status().await),
        Some(u64::try_from((MEMBERS - 1) * MESSAGES).unwrap()),
        "one pending entry per device and message"
    );

    // Every member comes back, gets the 20 messages and acknowledges each (the answer to a
    // receipt comes once it is committed).
    let sender_jid = sender.jid();
    drop(sender);
    for i in 1..MEMBERS {
        let seed = u8::try_from(i % 256).unwrap();
        let mut phone = Phone::login(&server.server.phone_url(), &number(i), seed).await;
        for _ in 0..MESSAGES {
            let message = phone.message().await;
            assert_eq!(message.chat, group);
            assert_eq!(message.group.as_deref(), Some(&body[..]));
            let rid = phone
                .send(Phone::receipt_request(
                    &group,
                    Some(sender_jid.clone()),
                    &message.id,
                ))
                .await;
            let _: serde_json::Value = phone.answer(rid).await.unwrap();
        }
    }
    assert_eq!(
        queued(server.server.status().await),
        Some(0),
        "nothing waits once every device has every message"
    );
}
