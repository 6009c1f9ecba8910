//! Store-and-forward under load, against Redis Streams doing the same work in the same run.
//!
//! ```text
//! cargo build --release -p wa-server --bins --examples
//! target/release/examples/load [CLIENTS] [SECONDS] [WINDOW] [BYTES] [NODES]
//! ```
//!
//! With NODES above 1, that many nodes of a cluster run (PostgreSQL at `WA_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`, in a schema of the run's own, dropped at
//! the end; NATS at `WA_TEST_NATS`), and phone `i` connects to node `i % NODES`.
//!
//! **wa-server**: the `wa-server` binary runs as its own process (so its CPU time is its own,
//! read from `/proc`) on a fresh data directory, with the budgets per account lifted
//! (`--no-budgets`: a load generator is not a person). CLIENTS phones register; phone `i`
//! sends end-to-end relays of BYTES bytes of (made-up) ciphertext to phone `i + 1`, keeping
//! WINDOW in flight (each is stored with fsync before its answer), for SECONDS; every phone
//! answers each message it gets with a delivery receipt, which retires it: the messages that
//! arrived together, in one `receipts` request (as Redis's consumers `XACK` a batch). With
//! `LOAD_SINGLE_RECEIPTS` set, one `receipt` request per message instead (a build older than
//! `receipts` needs it). A copy counts once its recipient has it. The run ends when every copy
//! arrived.
//!
//! **Redis Streams**: a `redis-server` of its own (a temporary directory, `appendonly yes`,
//! `appendfsync always`: fsync before every reply) on a free port; CLIENTS producers `XADD`
//! BYTES-byte entries to the stream of the next consumer, WINDOW in flight each, and CLIENTS
//! consumers `XREADGROUP` them, then `XACK` and `XDEL` each batch. Each `XADD` command is made
//! before the clock starts. So are each phone's relay and receipt, serialized once with
//! stand-ins for the ids that change (filled in as each is sent), and a phone reads of each
//! event only what it acts on (a result's id, a message's chat and id): the load generator,
//! which shares the machine with the server, costs about what it costs for Redis.
//!
//! Both print delivered copies per second, the server's CPU time per copy (for wa-server, also
//! the part of it spent in the store's threads), and this process's own CPU time per copy.
//!
//! With `LOAD_BASELINE` set to the path of another build's `wa-server` binary, that build runs
//! too, in the same run, for a before and after; with `LOAD_BASELINE_FIRST` set as well, it
//! runs first (the first slot of a run tends to fare differently: measure both orders).
//!
//! With `LOAD_CALLGRIND` set, each wa-server build runs under
//! `valgrind --tool=callgrind --separate-threads=yes` (about 30 times slower: use few clients,
//! `8 10 4 300` gives some 10,000 copies), its counts zeroed when the clock starts and dumped
//! when it stops (`callgrind_control`), and the run prints, after the table, the instructions
//! the server ran per delivered copy, in all and in its busiest thread: its own work in user
//! space, repeatable whatever else the machine does (the kernel's part is not counted). With
//! `LOAD_KEEP` set as well, the data directories and the dumps are kept, and their path
//! printed, for `callgrind_annotate`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "a measuring tool: a panic is a failed run"
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use support::spawned::{Spawned, spawn};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use wa_wire::msg::{ContentKind, OlmPayload, OlmType, Receipt, ReceiptKind, Relay, RelayTarget};
use wa_wire::phone::{MAX_RECEIPTS, PhoneRequest};

/// CPU time (user + system) of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // The clock tick is 100 Hz on Linux (sysconf(_SC_CLK_TCK)).
    Duration::from_millis(ticks * 10)
}

/// CPU time of the store's threads of process `pid` so far (the redb store's writer
/// `wa-server-store` and flusher `wa-server-flush`, PostgreSQL's `wa-server-pg-writer-N`; Linux
/// cuts names to 15 bytes).
fn writer_cpu_time(pid: u32) -> Duration {
    let mut ticks = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // the thread ended
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if !["wa-server-store", "wa-server-flush", "wa-server-pg-wr"]
            .iter()
            .any(|n| name.starts_with(n))
        {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_millis(ticks * 10)
}

struct Figures {
    copies: u64,
    elapsed: Duration,
    cpu: Duration,
    /// Of `cpu`, the store's threads' (wa-server only).
    writer: Option<Duration>,
    /// This process's own CPU time meanwhile (the load generator's).
    generator: Duration,
    /// Under `LOAD_CALLGRIND`: the server's instructions in all, and in its busiest thread.
    instructions: Option<(u64, u64)>,
}

impl Figures {
    fn print(&self, name: &str) {
        let per_second = self.copies as f64 / self.elapsed.as_secs_f64();
        let per_copy = |d: Duration| d.as_secs_f64() * 1e6 / self.copies as f64;
        let writer = self
            .writer
            .map_or("–".to_owned(), |w| format!("{:.1} µs", per_copy(w)));
        println!(
            "| {name} | {} | {:.1} s | {per_second:.0} | {:.1} µs | {writer} | {:.1} µs |",
            self.copies,
            self.elapsed.as_secs_f64(),
            per_copy(self.cpu),
            per_copy(self.generator),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// wa-server

/// Whether the servers run under callgrind (`LOAD_CALLGRIND`).
fn callgrind() -> bool {
    std::env::var_os("LOAD_CALLGRIND").is_some()
}

/// Runs `callgrind_control OPTION PID` (the server's counts zeroed, or dumped).
fn callgrind_control(option: &str, pid: u32) {
    let status = Command::new("callgrind_control")
        .arg(option)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("callgrind_control (from valgrind) runs");
    assert!(
        status.success(),
        "callgrind_control {option} {pid}: {status}"
    );
}

/// The instructions in callgrind's dump of process `pid` in `dir` (a file per thread): in
/// all, and in the busiest thread.
fn dumped_instructions(dir: &Path, pid: u32) -> (u64, u64) {
    let prefix = format!("callgrind.{pid}.");
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The dump's files, `callgrind.PID.1-TT` (not the empty one written at the start).
        if !name.starts_with(&prefix) || !name.contains('-') {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let summary = text
            .lines()
            .find_map(|l| l.strip_prefix("summary: "))
            .unwrap_or_else(|| panic!("no summary in {}", path.display()));
        threads.push(summary.trim().parse::<u64>().unwrap());
    }
    assert!(
        !threads.is_empty(),
        "no callgrind dump of {pid} in {}",
        dir.display()
    );
    (
        threads.iter().sum(),
        threads.iter().copied().max().unwrap_or(0),
    )
}

fn start_server(bin: &Path, dir: &Path, cluster: &[String]) -> Spawned {
    let out_file = format!("--callgrind-out-file={}/callgrind.%p", dir.display());
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    if callgrind() {
        args.extend(
            [
                "--tool=callgrind",
                "--separate-threads=yes",
                out_file.as_str(),
            ]
            .map(std::ffi::OsStr::new),
        );
        args.push(bin.as_os_str());
    }
    args.extend(cluster.iter().map(std::ffi::OsStr::new));
    args.extend(
        [
            "--listen",
            "127.0.0.1:0",
            "--max-connections-per-address",
            "100000",
            "--requests-per-second",
            "1000000",
            "--no-budgets",
            "--data-dir",
        ]
        .map(std::ffi::OsStr::new),
    );
    args.push(dir.as_os_str());
    let log = std::env::var("LOAD_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned());
    if callgrind() {
        return spawn(Path::new("valgrind"), args, &log, true);
    }
    spawn(bin, args, &log, true)
}

async fn wa_server(
    bin: &Path,
    nodes: usize,
    clients: usize,
    seconds: u64,
    window: usize,
    bytes: usize,
) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("LOAD_KEEP").is_some() {
        println!("(kept: {})", dir.path().display());
    }
    // A cluster: every node on one PostgreSQL schema and one NATS cluster name of this run's
    // own (the schema is dropped at the end).
    let schema = (nodes > 1).then(support::services::Schema::new);
    let cluster: Vec<String> = match &schema {
        Some(schema) => vec![
            "--store".into(),
            schema.url.clone(),
            "--schema".into(),
            schema.name.clone(),
            "--bus".into(),
            support::services::nats_url(),
            "--cluster".into(),
            support::services::unique("load"),
            "--media-dir".into(),
            dir.path().join("media").display().to_string(),
        ],
        None => Vec::new(),
    };
    let mut servers: Vec<Spawned> = (0..nodes)
        .map(|n| {
            let data = dir.path().join(format!("node{n}"));
            std::fs::create_dir_all(&data).unwrap();
            start_server(bin, &data, &cluster)
        })
        .collect();
    let mut phones = Vec::with_capacity(clients);
    for i in 0..clients {
        let number = format!("1555{:07}", 4_000_000 + i);
        let server = &mut servers[i % nodes];
        let pending = support::Phone::request_code(
            &server.phone_url,
            &number,
            u8::try_from(i % 250).unwrap() + 1,
        )
        .await;
        let (got, code) = server.codes.recv().unwrap();
        assert_eq!(got, number);
        phones.push(pending.verify(&code).await);
    }
    // Each phone's device, from the directory.
    let users: Vec<_> = phones.iter().map(support::Phone::jid).collect();
    let lists = phones[0].devices(users).await;
    let devices: Vec<_> = lists
        .into_iter()
        .map(|l| l.devices[0].device.clone())
        .collect();

    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let receipt_requests = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu =
        |servers: &[Spawned]| -> Duration { servers.iter().map(|s| cpu_time(s.child.id())).sum() };
    let writer = |servers: &[Spawned]| -> Duration {
        servers.iter().map(|s| writer_cpu_time(s.child.id())).sum()
    };
    if callgrind() {
        for server in &servers {
            callgrind_control("--zero", server.child.id());
        }
    }
    let (cpu_before, writer_before) = (cpu(&servers), writer(&servers));
    let generator_before = cpu_time(std::process::id());
    let started = Instant::now();
    let single_receipts = std::env::var_os("LOAD_SINGLE_RECEIPTS").is_some_and(|v| !v.is_empty());
    let mut tasks = Vec::new();
    for (i, phone) in phones.into_iter().enumerate() {
        let to = users_of(&devices, (i + 1) % clients);
        let (ws, _) = phone.into_socket();
        let (sent, received, stop) = (sent.clone(), received.clone(), stop.clone());
        let receipt_requests = receipt_requests.clone();
        // One ciphertext for all of this phone's relays; only the ids differ.
        let body = vec![0x42_u8; bytes];
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut next_id = 1_000_u64;
            // The relays not answered yet (receipts are answered too: not counted).
            let mut in_flight = std::collections::HashSet::new();
            let mut my_sent = 0_u64;
            // The relay's text, made once: only the request id and the message id change.
            let relay = Template::new(
                &PhoneRequest::Relay {
                    id: REQUEST_ID,
                    relay: Relay {
                        to: to.0.clone(),
                        id: format!("L{i}-{MESSAGE_NUMBER}"),
                        kind: ContentKind::Text,
                        group: None,
                        targets: vec![RelayTarget {
                            device: to.1.clone(),
                            olm: Some(OlmPayload {
                                kind: OlmType::Normal,
                                body: body.clone(),
                            }),
                        }],
                    },
                }
                .to_text(),
                &[&REQUEST_ID.to_string(), MESSAGE_NUMBER],
            );
            // A delivery receipt's text, made once: the request id, the chat and the message id
            // change.
            let stand_in = Receipt {
                kind: ReceiptKind::Delivered,
                chat: to.0.clone(),
                id: MESSAGE_ID.to_owned(),
                participant: None,
            };
            let receipt = Template::new(
                &PhoneRequest::Receipt {
                    id: REQUEST_ID,
                    receipt: stand_in.clone(),
                }
                .to_text(),
                &[&REQUEST_ID.to_string(), &to.0.to_string(), MESSAGE_ID],
            );
            // Receipts for several messages in one request: its head (with the request id), one
            // receipt (chat and message id), and its tail.
            let sample = serde_json::to_string(&stand_in).unwrap();
            let one = Template::new(&sample, &[&to.0.to_string(), MESSAGE_ID]);
            let whole = PhoneRequest::Receipts {
                id: REQUEST_ID,
                receipts: vec![stand_in],
            }
            .to_text();
            let (head, tail) = whole.split_once(&sample).unwrap();
            let head = Template::new(head, &[&REQUEST_ID.to_string()]);
            let tail = tail.to_owned();
            // The messages that arrived together, to acknowledge.
            let mut acks: Vec<(String, String)> = Vec::new();
            loop {
                while in_flight.len() < window && !stop.load(Ordering::Relaxed) {
                    next_id += 1;
                    let text = relay.fill(&[&next_id.to_string(), &my_sent.to_string()]);
                    sink.send(Message::Text(text.into())).await.unwrap();
                    in_flight.insert(next_id);
                    my_sent += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed)
                    && in_flight.is_empty()
                    && received.load(Ordering::Relaxed) >= sent.load(Ordering::Relaxed)
                {
                    return;
                }
                let first =
                    match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
                        Ok(Some(Ok(message))) => message,
                        Err(_) => continue,
                        Ok(other) => panic!("the server closed a phone's socket: {other:?}"),
                    };
                // What arrived with it too (a phone acknowledges what it got together).
                let mut arrived = vec![first];
                while let Some(Some(Ok(message))) = stream.next().now_or_never() {
                    arrived.push(message);
                }
                for message in &arrived {
                    let Message::Text(message) = message else {
                        continue;
                    };
                    // Only what this phone acts on is read (the ciphertext is skipped).
                    let event: Event<'_> = serde_json::from_str(message.as_str()).unwrap();
                    match (&*event.event, event.message) {
                        ("result", _) => {
                            in_flight.remove(&event.id.unwrap());
                        }
                        ("message", Some(message)) => {
                            received.fetch_add(1, Ordering::Relaxed);
                            acks.push((message.chat.into_owned(), message.id.into_owned()));
                        }
                        ("error", _) => panic!("refused: {}", message.as_str()),
                        _ => {}
                    }
                }
                let per_request = if single_receipts { 1 } else { MAX_RECEIPTS };
                for chunk in acks.chunks(per_request) {
                    next_id += 1;
                    let text = match chunk {
                        [(chat, id)] => receipt.fill(&[&next_id.to_string(), chat, id]),
                        _ => {
                            let mut text = head.fill(&[&next_id.to_string()]);
                            for (n, (chat, id)) in chunk.iter().enumerate() {
                                if n > 0 {
                                    text.push(',');
                                }
                                text.push_str(&one.fill(&[chat, id]));
                            }
                            text.push_str(&tail);
                            text
                        }
                    };
                    sink.feed(Message::Text(text.into())).await.unwrap();
                    receipt_requests.fetch_add(1, Ordering::Relaxed);
                }
                if !acks.is_empty() {
                    acks.clear();
                    sink.flush().await.unwrap();
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let generator = cpu_time(std::process::id()) - generator_before;
    let cpu = cpu(&servers) - cpu_before;
    println!(
        "({}: {:.2} receipts per receipt request)",
        bin.display(),
        received.load(Ordering::Relaxed) as f64
            / receipt_requests.load(Ordering::Relaxed).max(1) as f64
    );
    let writer = writer(&servers) - writer_before;
    let instructions = callgrind().then(|| {
        let mut total = (0, 0);
        for (n, server) in servers.iter().enumerate() {
            callgrind_control("--dump", server.child.id());
            let (all, busiest) =
                dumped_instructions(&dir.path().join(format!("node{n}")), server.child.id());
            total = (total.0 + all, total.1.max(busiest));
        }
        total
    });
    for server in &mut servers {
        server.stop();
    }
    drop(schema);
    if std::env::var_os("LOAD_KEEP").is_some() {
        let _ = dir.keep();
    }
    Figures {
        copies: received.load(Ordering::Relaxed),
        elapsed,
        writer: Some(writer),
        cpu,
        generator,
        instructions,
    }
}

/// Stand-ins in a request made once, for what changes from one request to the next.
const REQUEST_ID: u64 = 987_654_321_987_654_321;
const MESSAGE_NUMBER: &str = "@@number@@";
const MESSAGE_ID: &str = "@@message-id@@";

/// A request's text with holes: made once with stand-ins, filled for each request without
/// serializing it again (as the Redis commands are made before the clock starts).
struct Template {
    /// The text between the holes.
    parts: Vec<String>,
}

impl Template {
    /// `text` with a hole at each of `stand_ins`, which occur once each, in this order.
    fn new(text: &str, stand_ins: &[&str]) -> Template {
        let mut parts = Vec::new();
        let mut rest = text;
        for stand_in in stand_ins {
            let (before, after) = rest.split_once(stand_in).unwrap();
            assert!(!after.contains(stand_in), "{stand_in} occurs twice");
            parts.push(before.to_owned());
            rest = after;
        }
        parts.push(rest.to_owned());
        Template { parts }
    }

    /// The text with `values` in its holes (inside JSON strings: they need no escaping).
    fn fill(&self, values: &[&str]) -> String {
        assert_eq!(values.len() + 1, self.parts.len());
        let mut out = String::with_capacity(self.parts.iter().map(String::len).sum::<usize>() + 64);
        for (part, value) in self.parts.iter().zip(values) {
            assert!(!value.contains(['"', '\\']), "{value} needs escaping");
            out.push_str(part);
            out.push_str(value);
        }
        out.push_str(self.parts.last().unwrap());
        out
    }
}

/// What a phone reads of an event: its kind, a result's request id, and a message's chat and
/// id (the rest, the ciphertext included, is skipped).
#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    event: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow)]
    message: Option<EventMessage<'a>>,
}

#[derive(serde::Deserialize)]
struct EventMessage<'a> {
    #[serde(borrow)]
    chat: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

fn users_of(devices: &[wa_wire::Jid], i: usize) -> (wa_wire::Jid, wa_wire::Jid) {
    let device = devices[i].clone();
    let user = wa_wire::ids::user_of(&device);
    (user, device)
}

// ---------------------------------------------------------------------------------------------
// Redis Streams

/// A RESP reply, as far as this benchmark reads them.
#[derive(Debug)]
enum Reply {
    Simple,
    Int,
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Reply {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await.unwrap();
    let text = std::str::from_utf8(&line[1..line.len() - 2]).unwrap();
    match line[0] {
        b'+' => Reply::Simple,
        b':' => Reply::Int,
        b'-' => panic!("redis: {text}"),
        b'$' => {
            let n: i64 = text.parse().unwrap();
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut body = vec![0; usize::try_from(n).unwrap() + 2];
            reader.read_exact(&mut body).await.unwrap();
            body.truncate(body.len() - 2);
            Reply::Bulk(Some(body))
        }
        b'*' => {
            let n: i64 = text.parse().unwrap();
            if n < 0 {
                return Reply::Array(None);
            }
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(Box::pin(read_reply(reader)).await);
            }
            Reply::Array(Some(items))
        }
        other => panic!("redis: unexpected reply type {other}"),
    }
}

async fn connect(
    port: u16,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, w) = stream.into_split();
    (BufReader::new(r), w)
}

/// The entry ids of an `XREADGROUP` reply.
fn entry_ids(reply: Reply) -> Vec<Vec<u8>> {
    let Reply::Array(Some(streams)) = reply else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for stream in streams {
        let Reply::Array(Some(parts)) = stream else {
            continue;
        };
        let Some(Reply::Array(Some(entries))) = parts.into_iter().nth(1) else {
            continue;
        };
        for entry in entries {
            if let Reply::Array(Some(fields)) = entry
                && let Some(Reply::Bulk(Some(id))) = fields.into_iter().next()
            {
                ids.push(id);
            }
        }
    }
    ids
}

/// A child process killed (and its exit collected) when dropped.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn redis(clients: usize, seconds: u64, window: usize, bytes: usize) -> Option<Figures> {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            println!("redis-server not run ({e}): no comparison");
            return None;
        }
    };
    // Killed however the run ends (a panic included).
    let mut child = KillOnDrop(child);
    // Wait for it to answer.
    let (mut r, mut w) = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            drop(stream);
            break connect(port).await;
        }
        tokio::task::yield_now().await;
    };
    for c in 0..clients {
        let stream = format!("s{c}");
        w.write_all(&command(&[
            b"XGROUP",
            b"CREATE",
            stream.as_bytes(),
            b"g",
            b"$",
            b"MKSTREAM",
        ]))
        .await
        .unwrap();
        read_reply(&mut r).await;
    }
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_time(child.0.id());
    let generator_before = cpu_time(std::process::id());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        // The producer: XADD to the next consumer's stream, WINDOW in flight.
        let target = format!("s{}", (c + 1) % clients);
        let xadd = command(&[
            b"XADD",
            target.as_bytes(),
            b"*",
            b"m",
            &vec![0x42_u8; bytes],
        ]);
        let (sent_p, stop_p) = (sent.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = connect(port).await;
            let mut in_flight = 0;
            loop {
                while in_flight < window && !stop_p.load(Ordering::Relaxed) {
                    w.write_all(&xadd).await.unwrap();
                    in_flight += 1;
                    sent_p.fetch_add(1, Ordering::Relaxed);
                }
                if in_flight == 0 {
                    return;
                }
                read_reply(&mut r).await;
                in_flight -= 1;
            }
        }));
        // The consumer: XREADGROUP, then XACK and XDEL what it got.
        let (sent_c, received_c, stop_c) = (sent.clone(), received.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = connect(port).await;
            let stream = format!("s{c}");
            loop {
                if stop_c.load(Ordering::Relaxed)
                    && received_c.load(Ordering::Relaxed) >= sent_c.load(Ordering::Relaxed)
                {
                    return;
                }
                w.write_all(&command(&[
                    b"XREADGROUP",
                    b"GROUP",
                    b"g",
                    b"c",
                    b"COUNT",
                    b"256",
                    b"BLOCK",
                    b"100",
                    b"STREAMS",
                    stream.as_bytes(),
                    b">",
                ]))
                .await
                .unwrap();
                let ids = entry_ids(read_reply(&mut r).await);
                if ids.is_empty() {
                    continue;
                }
                received_c.fetch_add(ids.len() as u64, Ordering::Relaxed);
                let mut ack: Vec<&[u8]> = vec![b"XACK", stream.as_bytes(), b"g"];
                ack.extend(ids.iter().map(Vec::as_slice));
                let mut del: Vec<&[u8]> = vec![b"XDEL", stream.as_bytes()];
                del.extend(ids.iter().map(Vec::as_slice));
                w.write_all(&[command(&ack), command(&del)].concat())
                    .await
                    .unwrap();
                read_reply(&mut r).await;
                read_reply(&mut r).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let generator = cpu_time(std::process::id()) - generator_before;
    let cpu = cpu_time(child.0.id()) - cpu_before;
    child.stop();
    Some(Figures {
        copies: received.load(Ordering::Relaxed),
        elapsed,
        cpu,
        writer: None,
        generator,
        instructions: None,
    })
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap());
    let clients = args.next().unwrap_or(16);
    let seconds = u64::try_from(args.next().unwrap_or(5)).unwrap();
    let window = args.next().unwrap_or(4);
    let bytes = args.next().unwrap_or(300);
    let nodes = args.next().unwrap_or(1).max(1);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("wa-server");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release -p wa-server --bins --examples"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "{clients} clients, window {window}, {bytes}-byte messages, {seconds} s; fsync before every ack"
        );
        println!(
            "| system | copies | time | copies/s | server CPU per copy | of which the store's threads | load generator's CPU per copy |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let name = if nodes == 1 {
            "wa-server, 1 node (redb)".to_owned()
        } else {
            format!("wa-server, {nodes} nodes (PostgreSQL, NATS; CPU of the nodes)")
        };
        // Another build of the server in the same run (before and after a change), after
        // this one or before it.
        // (Set but empty is unset, as in `LOAD_BASELINE= load ...`.)
        let baseline = std::env::var_os("LOAD_BASELINE")
            .filter(|path| !path.is_empty())
            .map(std::path::PathBuf::from);
        if let Some(baseline) = &baseline {
            assert!(
                baseline.is_file(),
                "LOAD_BASELINE: no server binary at {}",
                baseline.display()
            );
        }
        let mut builds = vec![(bin.clone(), name.clone())];
        if let Some(baseline) = baseline {
            let named = format!("{name}, baseline {}", baseline.display());
            builds.push((baseline, named));
            if std::env::var_os("LOAD_BASELINE_FIRST").is_some() {
                builds.reverse();
            }
        }
        let mut counted = Vec::new();
        for (build, name) in builds {
            let figures = wa_server(&build, nodes, clients, seconds, window, bytes).await;
            figures.print(&name);
            if let Some((all, busiest)) = figures.instructions {
                counted.push((name, figures.copies, all, busiest));
            }
        }
        if let Some(figures) = redis(clients, seconds, window, bytes).await {
            figures.print("Redis Streams (appendfsync always)");
        }
        for (name, copies, all, busiest) in counted {
            let per_copy = |n: u64| n as f64 / copies.max(1) as f64;
            println!(
                "{name}: {:.0} instructions per copy (callgrind, user space), {:.0} in its busiest thread",
                per_copy(all),
                per_copy(busiest),
            );
        }
    });
}
