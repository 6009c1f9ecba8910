//! The hostile-load suite at full size: the `wa-server` binary runs as its own process (a fresh
//! one, with its defaults unless said, for each attack), this program attacks it on loopback
//! while a legitimate pair (Alice and Bob, on their own address) keeps exchanging messages with
//! both ticks, and prints a Markdown table of what the server did, its figures from `/status`
//! and its data directory, and the pair's latency.
//!
//! ```text
//! cargo build --release -p wa-server --bins --examples
//! target/release/examples/hostile            # every attack
//! target/release/examples/hostile media      # one of: idle heads slow slow-control offline fast register media
//! ```
//!
//! The attacks: 10,050 idle WebSockets that never log in (caps per address and before login
//! lifted, so that the global cap of 10,000 binds; RSS per idle socket); 3,000 unfinished request
//! heads from 60 addresses; a phone that stops reading while 10 senders push it 2,000 messages
//! of 60 KB; 600 messages of 500 KB to an offline account (900 KB is over one relay's limit:
//! what happens to one is shown) until its pending quota answers 507; 10 phones sending as fast
//! as they can for 10 s; 20 registration codes from one address; 30 downloads of a 60 MiB
//! media file by clients that never read. The open-file limit is raised to its hard limit (10,050 sockets need it
//! above 10,100; `ulimit -Hn`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a measuring tool: a panic is a failed run"
)]

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/support/hostile.rs"]
mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt as _;
use serde_json::Value;
use support::spawned::{Spawned, spawn};
use support::{Phone, relay};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Error as WsError;
use wa_wire::phone::{PhoneEvent, PhoneRequest};

/// A `wa-server` process in its own data directory.
struct Process {
    server: Spawned,
    dir: tempfile::TempDir,
}

impl Process {
    fn start(bin: &Path, extra: &[&str]) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<&std::ffi::OsStr> =
            ["--listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0"]
                .iter()
                .chain(extra)
                .chain(&["--data-dir"])
                .map(std::ffi::OsStr::new)
                .collect();
        args.push(dir.path().as_os_str());
        Process {
            server: spawn(bin, args, "error", false),
            dir,
        }
    }

    async fn status(&self) -> Value {
        support::status(self.server.status).await
    }

    async fn rss(&self) -> u64 {
        self.status().await["rss_bytes"].as_u64().unwrap()
    }

    /// Polls `/status` (every 20 ms, at most 60 s) until `done`.
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status().await;
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never {what}: {s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A registered phone with keys, connected from `from`.
    async fn register(&self, from: IpAddr, number: &str, seed: u8) -> Phone {
        let pending = Phone::request_code_from(&self.server.phone_url, from, number, seed).await;
        let code = loop {
            let (got, code) = self.server.codes.recv_timeout(support::WAIT).unwrap();
            if got == number {
                break code;
            }
        };
        let mut phone = pending.verify(&code).await;
        phone.upload_keys(5).await;
        phone
    }

    /// Alice and Bob from [`LEGIT`], after one exchange.
    async fn pair(&self) -> Legit {
        let alice = self.register(LEGIT, "15557000001", 201).await;
        let bob = self.register(LEGIT, "15557000002", 202).await;
        let mut legit = Legit::new(alice, bob);
        legit.exchange("nothing").await;
        legit
    }

    fn stop(mut self) {
        self.server.stop();
    }
}

/// The pair's exchanges during an attack.
#[derive(Default)]
struct Latency {
    took: Vec<Duration>,
    failed: Vec<String>,
}

impl Latency {
    fn record(&mut self, result: Result<Duration, String>) {
        match result {
            Ok(took) => self.took.push(took),
            Err(why) => self.failed.push(why),
        }
    }

    fn summary(&self) -> String {
        let mut took = self.took.clone();
        took.sort();
        let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let mut text = format!(
            "{} ok, median {:.1} ms, max {:.1} ms",
            took.len(),
            ms(took.get(took.len() / 2)),
            ms(took.last())
        );
        if !self.failed.is_empty() {
            text.push_str(&format!(
                "; **{} failed** ({})",
                self.failed.len(),
                self.failed[0]
            ));
        }
        text
    }
}

/// Runs `attack` while the pair, on a task (and so a thread) of its own, exchanges a message
/// every 100 ms (at least once).
async fn during<T>(mut legit: Legit, attack: impl Future<Output = T>) -> (T, Latency, Legit) {
    let done = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let mut latency = Latency::default();
            loop {
                latency.record(legit.try_exchange().await);
                if done.load(Ordering::Acquire) {
                    return (latency, legit);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let out = attack.await;
    done.store(true, Ordering::Release);
    let (latency, legit) = watch.await.unwrap();
    (out, latency, legit)
}

/// `n` exchanges of the pair, one every 100 ms.
async fn exchanges(legit: &mut Legit, n: usize) -> Latency {
    let mut latency = Latency::default();
    for _ in 0..n {
        latency.record(legit.try_exchange().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latency
}

fn addr(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

type Row = [String; 4];

async fn idle_sockets(bin: &Path) -> Row {
    let sockets = 10_050;
    let p = Process::start(
        bin,
        &[
            "--max-connections-per-address",
            "100000",
            "--max-unauthenticated",
            "100000",
        ],
    );
    let legit = p.pair().await;
    let before = p.rss().await;
    let url = p.server.ws_url.clone();
    let started = Instant::now();
    let (results, opening, mut legit) = during(
        legit,
        futures_util::stream::iter(0..sockets)
            .map(|_| {
                let url = url.clone();
                async move { support::ws_from(&url, ATTACKER).await }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>(),
    )
    .await;
    let opened = started.elapsed();
    let mut held = Vec::new();
    let (mut refused, mut other) = (0, 0);
    for result in results {
        match result {
            Ok(ws) => held.push(ws),
            Err(WsError::Http(r)) if r.status() == 503 => refused += 1,
            Err(_) => other += 1,
        }
    }
    let s = p.status().await;
    let rss = p.rss().await;
    let holding = exchanges(&mut legit, 20).await;
    let newcomer = match support::ws_from(&p.server.phone_url, OTHER).await {
        Ok(_) => "connects".to_owned(),
        Err(WsError::Http(r)) => format!("gets {}", r.status().as_u16()),
        Err(e) => format!("fails: {e}"),
    };
    let admitted = held.len();
    drop(held);
    let closing = Instant::now();
    p.wait_for("the idle sockets counted out", |s| {
        s["connections"]["open"] == 2
    })
    .await;
    let counted_out = closing.elapsed();
    let after = p.rss().await;
    let per_socket = rss.saturating_sub(before) as f64 / admitted.max(1) as f64;
    p.stop();
    [
        format!(
            "{sockets} idle WebSockets (`/ws`), never logged in, from one address (caps per address and before login lifted)"
        ),
        format!(
            "{admitted} admitted, {refused} refused 503 (global cap {}), {other} other failures; opened in {:.1} s; a new phone meanwhile {newcomer}; counted back to 2 open {:.1} s after they closed",
            s["connections"]["max"]["connections"],
            opened.as_secs_f64(),
            counted_out.as_secs_f64()
        ),
        format!(
            "RSS {:.1} → {:.1} → {:.1} MiB (before / {admitted} open / after): {:.1} KiB per idle socket; open {}, unauthenticated {}",
            mib(before),
            mib(rss),
            mib(after),
            per_socket / 1024.0,
            s["connections"]["open"],
            s["connections"]["unauthenticated"]
        ),
        format!(
            "opening: {}; holding: {}",
            opening.summary(),
            holding.summary()
        ),
    ]
}

/// A connection from `from` that starts a request head and never finishes it.
async fn unfinished_head(to: SocketAddr, from: IpAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(from, 0)).ok()?;
    let mut stream = socket.connect(to).await.ok()?;
    let _ = stream
        .write_all(b"GET /phone HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n")
        .await;
    Some(stream)
}

/// Reads until the server closes: whether it answered 503, and when it closed.
async fn until_closed(mut stream: TcpStream) -> (bool, Instant) {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => {
                return (out.starts_with(b"HTTP/1.1 503"), Instant::now());
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn unfinished_heads(bin: &Path) -> Row {
    let heads = 3000;
    let p = Process::start(bin, &[]);
    let legit = p.pair().await;
    let before = p.rss().await;
    let started = Instant::now();
    let mut readers = Vec::new();
    for i in 0..heads {
        // 50 per address: under the cap per address (64), over the cap before login (1000).
        let from = addr(2, u8::try_from(i / 50 + 1).unwrap());
        if let Some(stream) = unfinished_head(p.server.addr, from).await {
            readers.push(tokio::spawn(until_closed(stream)));
        }
    }
    let connected = readers.len();
    let s = p.status().await;
    let rss = p.rss().await;
    let newcomer = match support::ws_from(&p.server.phone_url, OTHER).await {
        Ok(_) => "connects".to_owned(),
        Err(WsError::Http(r)) => format!("gets {}", r.status().as_u16()),
        Err(e) => format!("fails: {e}"),
    };
    let (closes, latency, _legit) = during(legit, async {
        let mut refused = 0;
        let mut last = started;
        let mut first_timeout: Option<Instant> = None;
        for reader in readers {
            let (was_refused, closed) = reader.await.unwrap();
            if was_refused {
                refused += 1;
            } else {
                last = last.max(closed);
                first_timeout = Some(first_timeout.map_or(closed, |f| f.min(closed)));
            }
        }
        (refused, first_timeout.unwrap_or(started), last)
    })
    .await;
    let (refused, first, last) = closes;
    p.wait_for("the heads counted out", |s| s["connections"]["open"] == 2)
        .await;
    let after = p.rss().await;
    p.stop();
    [
        format!(
            "{heads} unfinished request heads from 60 addresses (50 each; defaults: header timeout 10 s, 1000 before login)"
        ),
        format!(
            "{connected} connected: {} held, {refused} answered 503 (refusals full/address/before login: {}); held ones closed between {:.1} and {:.1} s; a new phone meanwhile {newcomer}",
            connected - refused,
            s["connections"]["refused"],
            first.duration_since(started).as_secs_f64(),
            last.duration_since(started).as_secs_f64()
        ),
        format!(
            "RSS {:.1} → {:.1} → {:.1} MiB; open {}, unauthenticated {} while held",
            mib(before),
            mib(rss),
            mib(after),
            s["connections"]["open"],
            s["connections"]["unauthenticated"]
        ),
        latency.summary(),
    ]
}

/// With `stop_reading` false, the same flood to the account while it is offline (a control:
/// what the flood alone costs the pair).
async fn slow_reader(bin: &Path, stop_reading: bool) -> Row {
    let (senders_n, each, size) = (10usize, 200usize, 60_000usize);
    let p = Process::start(bin, &[]);
    let legit = p.pair().await;
    let carol = "15557000003";
    p.register(OTHER, carol, 203).await.close().await;
    let mut senders = Vec::new();
    for i in 0..senders_n {
        let n = u8::try_from(i + 1).unwrap();
        senders.push(
            p.register(addr(3, n), &format!("155570001{i:02}"), 210 + n)
                .await,
        );
    }
    let mut slow = if stop_reading {
        Some(Phone::login_small_buffer(&p.server.phone_url, p.server.addr, carol, 203).await)
    } else {
        None
    };
    let carol_jid = wa_wire::ids::user_jid(carol).unwrap();
    let before = p.rss().await;
    let started = Instant::now();
    let (answers, latency, _legit) = during(
        legit,
        futures_util::future::join_all(senders.iter_mut().enumerate().map(|(k, s)| {
            let jid = carol_jid.clone();
            async move { flood(s, &jid, &format!("S{k}-"), each, size, 16).await }
        })),
    )
    .await;
    let flooded = started.elapsed();
    if let Some(slow) = &mut slow {
        slow.closed().await;
    }
    let s = p.status().await;
    let rss = p.rss().await;
    let mut expected = BTreeSet::new();
    let mut refused = Vec::new();
    for (k, answers) in answers.iter().enumerate() {
        let (stored, r) = stored_and_refused(answers);
        expected.extend(stored.into_iter().map(|i| format!("S{k}-{i}")));
        refused.extend(r);
    }
    // She comes back: everything acknowledged, with its bytes.
    let drain = Instant::now();
    let mut carol_phone = Phone::login_from(&p.server.phone_url, OTHER, carol, 203).await;
    let mut got = BTreeSet::new();
    let mut bad = 0;
    for _ in 0..expected.len() {
        let message = carol_phone.message().await;
        if message.olm.map(|o| o.body.len()) != Some(size) {
            bad += 1;
        }
        got.insert(message.id);
    }
    let drained = drain.elapsed();
    p.stop();
    [
        format!(
            "{} while {senders_n} senders push it {} messages of {size} B",
            if stop_reading {
                "a phone that stops reading (4 KiB receive buffer)"
            } else {
                "(control) an offline phone"
            },
            senders_n * each
        ),
        format!(
            "{} stored, {} refused; lagged closes {}, write timeouts {}; at its next login it got {} of them ({} missing, {bad} with wrong sizes) in {:.1} s",
            expected.len(),
            refused.len(),
            s["connections"]["lagged"],
            s["connections"]["write_timeouts"],
            got.len(),
            expected.difference(&got).count(),
            drained.as_secs_f64()
        ),
        format!(
            "flood took {:.1} s ({:.0} messages/s); RSS {:.1} → {:.1} MiB",
            flooded.as_secs_f64(),
            (senders_n * each) as f64 / flooded.as_secs_f64(),
            mib(before),
            mib(rss)
        ),
        latency.summary(),
    ]
}

/// What happens to one relay of `size` bytes: its answer, or the socket closed.
async fn one_big_relay(phone: &mut Phone, size: usize) -> String {
    let to = phone.jid();
    let body = vec![7u8; size];
    let relay = relay(&to, "HUGE", std::slice::from_ref(&to), &body);
    let Some(id) = phone.try_send(|id| PhoneRequest::Relay { id, relay }).await else {
        return "the server closed the connection while it was sent (over the 1 MiB frame limit)"
            .to_owned();
    };
    loop {
        match phone.try_event().await {
            None => {
                return "the connection was closed (WebSocket message over the 1 MiB frame limit)"
                    .to_owned();
            }
            Some(PhoneEvent::Error {
                id: Some(got),
                status,
                error,
                ..
            }) if got == id => {
                return format!("refused {status} ({error})");
            }
            Some(PhoneEvent::Error {
                id: None,
                status,
                error,
                ..
            }) => {
                return format!("connection error {status} ({error})");
            }
            Some(PhoneEvent::Result { id: got, .. }) if got == id => return "stored".to_owned(),
            Some(_) => {}
        }
    }
}

async fn offline_flood(bin: &Path) -> Row {
    let (senders_n, each, size) = (3usize, 200usize, 500_000usize);
    let p = Process::start(bin, &[]);
    let legit = p.pair().await;
    let dave = "15557000004";
    p.register(OTHER, dave, 204).await.close().await;
    let dave_jid = wa_wire::ids::user_jid(dave).unwrap();
    let mut probe = p.register(addr(5, 100), "15557000199", 199).await;
    let huge = one_big_relay(&mut probe, 900_000).await;
    let mut senders = Vec::new();
    for i in 0..senders_n {
        let n = u8::try_from(i + 1).unwrap();
        senders.push(
            p.register(addr(5, n), &format!("155570002{i:02}"), 220 + n)
                .await,
        );
    }
    let disk_before = stored_bytes(p.dir.path());
    let started = Instant::now();
    let (answers, latency, _legit) = during(
        legit,
        futures_util::future::join_all(senders.iter_mut().enumerate().map(|(k, s)| {
            let jid = dave_jid.clone();
            async move { flood(s, &jid, &format!("D{k}-"), each, size, 4).await }
        })),
    )
    .await;
    let flooded = started.elapsed();
    let mut expected = BTreeSet::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (k, answers) in answers.iter().enumerate() {
        let (stored, refused) = stored_and_refused(answers);
        expected.extend(stored.into_iter().map(|i| format!("D{k}-{i}")));
        for status in refused {
            *statuses.entry(status).or_default() += 1;
        }
    }
    let accepted = expected.len();
    let queued = p
        .wait_for("the accepted ones queued", |s| {
            s["messages"]["queued"].as_u64() >= Some(accepted as u64)
        })
        .await["messages"]["queued"]
        .clone();
    let growth = stored_bytes(p.dir.path()).saturating_sub(disk_before);
    let rss = p.rss().await;
    let drain = Instant::now();
    let mut dave_phone = Phone::login_from(&p.server.phone_url, OTHER, dave, 204).await;
    let mut got = BTreeSet::new();
    for _ in 0..accepted {
        got.insert(dave_phone.message().await.id);
    }
    let drained = drain.elapsed();
    p.stop();
    [
        format!(
            "{} messages of {size} B from {senders_n} accounts to an offline account (one of 900,000 B: {huge})",
            senders_n * each
        ),
        format!(
            "{accepted} stored ({:.1} MiB) before the pending quota (256 MiB) answered; refusals {statuses:?}; queued {queued}; at login it got {} ({} missing) in {:.1} s",
            mib((accepted * size) as u64),
            got.len(),
            expected.difference(&got).count(),
            drained.as_secs_f64()
        ),
        format!(
            "data directory +{:.1} MiB: {:.0} B per accepted message ({:.2}× its ciphertext); flood {:.1} s; RSS {:.1} MiB",
            mib(growth),
            growth as f64 / accepted.max(1) as f64,
            growth as f64 / (accepted.max(1) * size) as f64,
            flooded.as_secs_f64(),
            mib(rss)
        ),
        latency.summary(),
    ]
}

async fn fast_senders(bin: &Path) -> Row {
    let (senders_n, size, window) = (10usize, 1000usize, 50usize);
    let run_for = Duration::from_secs(10);
    let p = Process::start(bin, &[]);
    let legit = p.pair().await;
    let erin = "15557000005";
    p.register(OTHER, erin, 205).await.close().await;
    let erin_jid = wa_wire::ids::user_jid(erin).unwrap();
    let mut senders = Vec::new();
    for i in 0..senders_n {
        let n = u8::try_from(i + 1).unwrap();
        senders.push(
            p.register(addr(6, n), &format!("155570003{i:02}"), 230 + n)
                .await,
        );
    }
    let started = Instant::now();
    let (results, latency, _legit) = during(
        legit,
        futures_util::future::join_all(senders.iter_mut().enumerate().map(|(k, s)| {
            let jid = erin_jid.clone();
            async move {
                let (mut stored, mut budget, mut rate, mut other) =
                    (0usize, 0usize, 0usize, 0usize);
                let mut round = 0;
                while started.elapsed() < run_for {
                    let answers =
                        flood(s, &jid, &format!("F{k}-{round}-"), window, size, window).await;
                    for answer in answers {
                        match answer {
                            Ok(_) => stored += 1,
                            Err((429, why)) if why.contains("budget") => budget += 1,
                            Err((429, _)) => rate += 1,
                            Err(_) => other += 1,
                        }
                    }
                    round += 1;
                }
                (stored, budget, rate, other)
            }
        })),
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let (stored, budget, rate, other) = results.iter().fold((0, 0, 0, 0), |a, r| {
        (a.0 + r.0, a.1 + r.1, a.2 + r.2, a.3 + r.3)
    });
    let s = p
        .wait_for("the stored ones queued", |s| {
            s["messages"]["queued"].as_u64() >= Some(stored as u64)
        })
        .await;
    let allowed = senders_n as f64 * (200.0 + 20.0 * secs);
    p.stop();
    [
        format!(
            "{senders_n} phones (own addresses) sending {size} B messages to one account as fast as they can for {:.0} s",
            run_for.as_secs_f64()
        ),
        format!(
            "{stored} stored, {budget} refused 429 by the account budget, {rate} 429 by the connection rate, {other} other; queued {} (every stored one waits: none lost)",
            s["messages"]["queued"]
        ),
        format!(
            "{:.0} stored/s over {secs:.1} s; budgets allow 10 × (200 + 20/s × t) = {allowed:.0} ({:.0}/s)",
            stored as f64 / secs,
            allowed / secs
        ),
        latency.summary(),
    ]
}

async fn many_registrations(bin: &Path) -> Row {
    let attempts = 20usize;
    let p = Process::start(bin, &[]);
    let legit = p.pair().await;
    let (statuses, latency, _legit) = during(legit, async {
        let mut statuses = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..attempts {
            let number = format!("155570004{i:02}");
            let mut phone = Phone::connect_from(&p.server.phone_url, ATTACKER, &number, 1).await;
            let answer: Result<Value, _> = phone
                .call(|id| PhoneRequest::Register {
                    id,
                    number: number.clone(),
                    name: String::new(),
                })
                .await;
            let key = match answer {
                Ok(_) => "code sent".to_owned(),
                Err((status, _)) => status.to_string(),
            };
            *statuses.entry(key).or_default() += 1;
        }
        statuses
    })
    .await;
    p.stop();
    [
        format!("{attempts} registration codes asked for from one address"),
        format!("{statuses:?} (budget: 5 at once, then one per 10 min)"),
        String::new(),
        latency.summary(),
    ]
}

/// Downloads of a large media file by clients that never read: streamed from disk, so the
/// server's memory does not hold the file once per download.
async fn stalled_downloads(bin: &Path) -> Row {
    use base64::Engine as _;
    use sha2::Digest as _;
    let downloads = 30usize;
    let size = 60usize << 20;
    let p = Process::start(bin, &[]);
    let legit = p.pair().await;
    let mut uploader = p.register(OTHER, "15557000301", 31).await;
    let auth = uploader.media_conn().await;
    let body = vec![0x42u8; size];
    let token = base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(&body));
    let path = format!(
        "/mms/video/{}?auth={}",
        support::percent(&token),
        support::percent(&auth.auth)
    );
    let uploaded = support::http("POST", p.server.addr, &path, &[], &body).await;
    assert_eq!(uploaded.status, 200);
    drop(body);
    let direct = uploaded.json()["direct_path"].as_str().unwrap().to_owned();
    let before = p.rss().await;
    let ((held, during_rss), latency, _legit) = during(legit, async {
        let mut held = Vec::with_capacity(downloads);
        for _ in 0..downloads {
            // A small receive buffer: the client takes almost nothing.
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.bind(SocketAddr::new(ATTACKER, 0)).unwrap();
            let mut stream = socket.connect(p.server.addr).await.unwrap();
            let request = format!("GET {direct} HTTP/1.1\r\nhost: x\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            held.push(stream);
        }
        let want = u64::try_from(downloads).unwrap();
        p.wait_for("every download started", |s| {
            s["media"]["downloads"].as_u64() >= Some(want)
        })
        .await;
        let rss = p.rss().await;
        (held, rss)
    })
    .await;
    drop(held);
    p.stop();
    [
        format!(
            "{downloads} downloads of a {} MiB media file by clients that never read",
            size >> 20
        ),
        format!("all {downloads} started, streamed from disk"),
        format!(
            "RSS {:.1} → {:.1} MiB with the {downloads} downloads open",
            mib(before),
            mib(during_rss)
        ),
        latency.summary(),
    ]
}

fn main() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let exe = std::env::current_exe().unwrap();
    let bin: PathBuf = exe.parent().unwrap().parent().unwrap().join("wa-server");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release -p wa-server --bins --examples"
    );
    let only: Option<String> = std::env::args().nth(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut rows = Vec::new();
        let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
        if wanted("idle") {
            rows.push(idle_sockets(&bin).await);
        }
        if wanted("heads") {
            rows.push(unfinished_heads(&bin).await);
        }
        if wanted("slow") {
            rows.push(slow_reader(&bin, true).await);
        }
        if wanted("slow-control") {
            rows.push(slow_reader(&bin, false).await);
        }
        if wanted("offline") {
            rows.push(offline_flood(&bin).await);
        }
        if wanted("fast") {
            rows.push(fast_senders(&bin).await);
        }
        if wanted("register") {
            rows.push(many_registrations(&bin).await);
        }
        if wanted("media") {
            rows.push(stalled_downloads(&bin).await);
        }
        println!("| attack | what the server did | server figures | legitimate pair during it |");
        println!("| --- | --- | --- | --- |");
        for row in rows {
            println!("| {} |", row.join(" | "));
        }
    });
}
