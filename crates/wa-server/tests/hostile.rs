//! The server under hostile load: each attack runs while a legitimate pair (Alice and Bob, on
//! their own address) keeps exchanging messages with both ticks, and the bounds of SECURITY.md
//! are checked on the server's `/status` and its data directory. Small sizes (the measuring
//! version at full size is `examples/hostile.rs`), loopback only, every wait bounded.
//!
//! The attacker is `127.0.0.1`, the pair `127.0.0.2`, other honest users `127.0.0.3`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

#[path = "support/hostile.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Error as WsError;
use wa_server::{Config, RunningServer};
use wa_server_core::budget::Rate;
use wa_wire::phone::PhoneRequest;

/// A rate no test reaches.
const PLENTY: Rate = Rate {
    per_second: 1e6,
    burst: 1_000_000,
};

/// Lifts the per-connection rate and the send budgets (for attacks that are not about them).
fn plenty(c: &mut Config) {
    c.core.limits.requests_per_second = 1_000_000;
    c.core.limits.request_burst = 1_000_000;
    c.core.limits.budgets.send = PLENTY;
    c.core.limits.budgets.send_per_address = PLENTY;
    c.core.limits.budgets.receipt = PLENTY;
}

/// Alice and Bob, registered from [`LEGIT`], and one exchange to show they work.
async fn legit_pair(t: &mut TestServer) -> Legit {
    let alice = t.phone_from(LEGIT, "15550100001", 101).await;
    let bob = t.phone_from(LEGIT, "15550100002", 102).await;
    let mut legit = Legit::new(alice, bob);
    legit.exchange("nothing").await;
    legit
}

/// Asks the server for its status (in-process: it holds no connection) until `done`.
async fn wait_for(server: &RunningServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = server.status().await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never {what}: {s}");
        tokio::task::yield_now().await;
    }
}

/// A registered phone that goes offline: its number.
async fn offline(t: &mut TestServer, number: &str, seed: u8) -> String {
    t.phone_from(OTHER, number, seed).await.close().await;
    wait_for(&t.server, "the phone offline", |s| {
        s["connections"]["phones"] == 2
    })
    .await;
    number.to_owned()
}

/// Logs `number` in again and reads `expected` messages: their ids must be `{prefix}{i}` for
/// each stored index, in order, with their bytes.
async fn receives_exactly(
    t: &TestServer,
    number: &str,
    seed: u8,
    prefix: &str,
    stored: &[usize],
    size: usize,
) -> Phone {
    let mut phone = Phone::login_from(&t.server.phone_url(), OTHER, number, seed).await;
    for &i in stored {
        let message = phone.message().await;
        assert_eq!(message.id, format!("{prefix}{i}"), "in order, none missing");
        let body = message.olm.unwrap().body;
        assert_eq!(body.len(), size);
        assert!(body.iter().all(|b| *b == byte_of(i)));
    }
    phone
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_from_one_address_are_capped_and_counted_back_down() {
    let mut t = TestServer::start(|c| c.max_connections_per_address = 150).await;
    let mut legit = legit_pair(&mut t).await;
    let url = t.server.ws_url();

    // 200 web sockets from one address that never log in: 150 held, 50 refused (503).
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        match ws_from(&url, ATTACKER).await {
            Ok(ws) => held.push(ws),
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 503);
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((held.len(), refused), (150, 50));
    let s = t.server.status().await;
    assert_eq!(s["connections"]["refused"][1], 50, "{s}");
    assert_eq!(s["connections"]["open"], 152, "{s}");
    assert_eq!(s["connections"]["unauthenticated"], 150, "{s}");
    for _ in 0..3 {
        legit.exchange("150 idle sockets").await;
    }
    // Another address may still connect.
    drop(ws_from(&url, OTHER).await.unwrap());

    // They go: the counts come back down.
    drop(held);
    wait_for(&t.server, "the idle sockets counted out", |s| {
        s["connections"]["open"] == 2 && s["connections"]["unauthenticated"] == 0
    })
    .await;
    legit.exchange("after the idle sockets").await;
    t.server.shutdown().await;
}

/// A connection from `from` that starts a request head and never finishes it (the write may
/// fail when the server refused it at once).
async fn unfinished_head(addr: SocketAddr, from: std::net::IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let _ = stream
        .write_all(b"GET /phone HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n")
        .await;
    stream
}

/// Reads until the server closes the connection: what it sent, and when it closed.
async fn until_closed(mut stream: TcpStream) -> (Vec<u8>, Instant) {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("closed in time")
        {
            Ok(0) | Err(_) => return (out, Instant::now()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_heads_count_toward_the_cap_and_are_closed_by_the_header_timeout() {
    let timeout = Duration::from_secs(2);
    let mut t = TestServer::start(|c| {
        c.max_unauthenticated = 80;
        c.max_connections_per_address = 1000;
        c.header_read_timeout = timeout;
    })
    .await;
    let mut legit = legit_pair(&mut t).await;
    let addr = t.server.local_addr();

    // 100 slow-loris heads: 80 held (the cap of connections not logged in), 20 refused.
    let started = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..100 {
        let stream = unfinished_head(addr, ATTACKER).await;
        readers.push(tokio::spawn(until_closed(stream)));
    }
    let s = wait_for(&t.server, "80 heads held and 20 refused", |s| {
        s["connections"]["refused"][2] == 20 && s["connections"]["unauthenticated"] == 80
    })
    .await;
    assert_eq!(s["connections"]["open"], 82, "{s}");
    // The pair, logged in before, does not notice.
    legit.exchange("80 unfinished heads").await;
    assert!(
        started.elapsed() < timeout,
        "the exchange happened while the heads were held"
    );

    // Every held head is closed at the timeout, not before; the refused ones got 503 at once.
    let mut refused = 0;
    for reader in readers {
        let (bytes, closed) = reader.await.unwrap();
        if bytes.starts_with(b"HTTP/1.1 503") {
            refused += 1;
        } else {
            assert!(closed.duration_since(started) >= timeout, "closed early");
        }
    }
    assert_eq!(refused, 20);
    wait_for(&t.server, "the heads counted out", |s| {
        s["connections"]["open"] == 2 && s["connections"]["unauthenticated"] == 0
    })
    .await;
    legit.exchange("after the unfinished heads").await;
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_stops_reading_is_closed_and_gets_every_stored_push_later() {
    let mut t = TestServer::start(|c| {
        plenty(c);
        c.push_queue_bytes = 256 << 10;
        // Long enough that only the byte budget can be why it closes.
        c.write_timeout = Duration::from_secs(120);
    })
    .await;
    let mut legit = legit_pair(&mut t).await;
    let carol = offline(&mut t, "15550100003", 103).await;
    let mut mallory = t.phone_from(ATTACKER, "15550100004", 104).await;
    // Carol comes back on a socket with a small receive buffer, and stops reading.
    let addr = t.server.local_addr();
    let url = t.server.phone_url();
    let mut slow_carol = Phone::login_small_buffer(&url, addr, &carol, 103).await;
    let carol_jid = slow_carol.jid();

    // 2,000 pushes of 4 KiB (11 MB on the wire): more than the kernel's buffers (4 MiB) and
    // her queue's 256 KiB.
    let (count, size) = (2000, 4 << 10);
    let (answers, ()) = tokio::join!(
        flood(&mut mallory, &carol_jid, "SLOW", count, size, 32),
        async {
            for _ in 0..3 {
                legit
                    .exchange("a flood to a phone that stopped reading")
                    .await;
            }
        }
    );
    let (stored, refused) = stored_and_refused(&answers);
    assert_eq!(refused, Vec::<u16>::new(), "no quota here: all stored");
    slow_carol.closed().await;
    let s = t.server.status().await;
    assert!(s["connections"]["lagged"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["connections"]["write_timeouts"], 0, "{s}");

    // Nothing acknowledged is lost: all of it, in order, when she logs in again.
    let carol = receives_exactly(&t, &carol, 103, "SLOW", &stored, size).await;
    assert_eq!(stored.len(), count);
    legit.exchange("after the slow reader").await;
    drop(carol);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_to_an_offline_account_is_refused_at_its_quotas_and_disk_stays_bounded() {
    let quota_bytes: u64 = 1 << 20;
    let mut t = TestServer::start(|c| {
        plenty(c);
        c.core.limits.max_pending_per_device = 40;
        c.core.limits.max_pending_bytes_per_account = quota_bytes;
    })
    .await;
    let mut legit = legit_pair(&mut t).await;
    let dave = offline(&mut t, "15550100005", 105).await;
    let erin = offline(&mut t, "15550100006", 106).await;
    let dave_jid = wa_wire::ids::user_jid(&dave).unwrap();
    let erin_jid = wa_wire::ids::user_jid(&erin).unwrap();
    let mut mallory = t.phone_from(ATTACKER, "15550100007", 107).await;
    let disk_before = stored_bytes(t.dir.path());

    // 200 messages of 32 KiB (6.25 MiB) to Dave: his 1 MiB of pending bytes takes 32.
    // 100 small ones to Erin: her device's 40 pending messages.
    let (big, ()) = tokio::join!(
        flood(&mut mallory, &dave_jid, "BIG", 200, 32 << 10, 32),
        async {
            for _ in 0..3 {
                legit.exchange("a flood to an offline account").await;
            }
        }
    );
    let small = flood(&mut mallory, &erin_jid, "SMALL", 100, 100, 32).await;
    let (big_stored, big_refused) = stored_and_refused(&big);
    let (small_stored, small_refused) = stored_and_refused(&small);
    assert_eq!(
        big_stored,
        (0..32).collect::<Vec<_>>(),
        "1 MiB of 32 KiB messages"
    );
    assert!(big_refused.iter().all(|s| *s == 507), "{big_refused:?}");
    assert_eq!(small_stored, (0..40).collect::<Vec<_>>());
    assert!(small_refused.iter().all(|s| *s == 507), "{small_refused:?}");
    legit.exchange("full quotas").await;

    // The data directory grew by at most 4 times what was accepted, and far less than what was
    // sent (6.26 MiB).
    let accepted = 32 * (32 << 10) + 40 * 100;
    let growth = stored_bytes(t.dir.path()).saturating_sub(disk_before);
    eprintln!("the data directory grew by {growth} bytes for {accepted} accepted");
    let sent = 200 * (32 << 10) + 100 * 100;
    assert!(
        growth <= 4 * accepted && growth < sent,
        "the data directory grew by {growth} bytes for {accepted} accepted of {sent} sent"
    );
    // Exactly the acknowledged ones wait, and each gets exactly those.
    wait_for(&t.server, "72 messages queued", |s| {
        s["messages"]["queued"] == 72
    })
    .await;
    let dave = receives_exactly(&t, &dave, 105, "BIG", &big_stored, 32 << 10).await;
    let erin = receives_exactly(&t, &erin, 106, "SMALL", &small_stored, 100).await;
    drop((dave, erin));
    t.server.shutdown().await;
}

// Registration codes are budgeted per client address (`budgets.register`): account creation
// from one address is slow, and so is enumerating numbers by registering them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_registrations_from_one_address_are_refused_with_429() {
    let mut t = TestServer::start(|_| {}).await;
    let mut legit = legit_pair(&mut t).await;
    let url = t.server.phone_url();

    // The default budget: 5 codes at once per address, then one every 10 minutes.
    let mut answers = Vec::new();
    for i in 0..12u8 {
        let number = format!("155501002{i:02}");
        let mut phone = Phone::connect_from(&url, ATTACKER, &number, 120 + i).await;
        let answer: Result<Value, _> = phone
            .call(|id| PhoneRequest::Register {
                id,
                number: number.clone(),
                name: String::new(),
            })
            .await;
        answers.push(answer.map(|_| ()).map_err(|(status, _)| status));
        if i == 6 {
            legit.exchange("registrations from one address").await;
        }
    }
    assert_eq!(answers[..5], [Ok(()); 5]);
    assert_eq!(answers[5..], [Err(429); 7]);
    // Someone on another address registers meanwhile.
    let _frank = t.phone_from(OTHER, "15550100008", 108).await;
    legit.exchange("after the registrations").await;
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_over_its_budget_gets_429_and_nothing_is_lost_silently() {
    let mut t = TestServer::start(|c| {
        c.core.limits.budgets.send = Rate {
            per_second: 2.0,
            burst: 20,
        };
    })
    .await;
    let mut legit = legit_pair(&mut t).await;
    let grace = offline(&mut t, "15550100009", 109).await;
    let grace_jid = wa_wire::ids::user_jid(&grace).unwrap();
    let mut mallory = t.phone_from(ATTACKER, "15550100010", 110).await;

    // 100 messages as fast as it can: each is either stored or refused with 429.
    let (answers, ()) = tokio::join!(
        flood(&mut mallory, &grace_jid, "FAST", 100, 200, 100),
        async {
            legit.exchange("a sender over its budget").await;
        }
    );
    let (stored, refused) = stored_and_refused(&answers);
    assert_eq!(stored.len() + refused.len(), 100);
    assert!(stored.len() >= 20, "its burst: {}", stored.len());
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|s| *s == 429), "{refused:?}");
    wait_for(&t.server, "the stored ones queued", |s| {
        s["messages"]["queued"] == stored.len()
    })
    .await;
    let grace = receives_exactly(&t, &grace, 109, "FAST", &stored, 200).await;
    legit.exchange("after the sender over its budget").await;
    drop(grace);
    t.server.shutdown().await;
}
