//! One delivered copy through the core, as the server's connections and store carry it, without
//! sockets, threads or disk: phone A's `relay` text in, its store job run, its answer (A's ack
//! 1: the ack 1 push goes to A's other devices, and it has none) out; the push to phone B and B's `message` event out; B's `receipt` text in, its job, its
//! answer, and ack 2 pushed to A and sent. What is left of the server's work per copy is the
//! drivers' (sockets, the tokio runtime) and the embedded store's (its overlay, log and file):
//! this isolates the protocol logic, the JSON and the jobs, on the in-memory store.
//!
//! ```text
//! cargo bench -p wa-server-core --bench copy
//! ```
//!
//! With `COPIES=N` set, it runs N copies without criterion and exits, for instruction counts
//! that do not depend on the machine's noise: the difference between two runs' totals under
//! `valgrind --tool=callgrind`, over the difference in N, is the instructions per copy (the
//! setup cancels out).
//!
//! ```text
//! cargo bench -p wa-server-core --bench copy --no-run
//! COPIES=1000 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.1000 target/release/deps/copy-HASH
//! COPIES=3000 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.3000 target/release/deps/copy-HASH
//! ```
//!
//! (The totals are the `Collected` lines valgrind prints; their difference over 2,000 is the
//! instructions per copy.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a benchmark: a panic is a failed run"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use wa_server_core::store::MemStore;
use wa_server_core::{Action, Config, Job, JobId, Outcome, PhoneConnection, Push, Target, Time};
use wa_wire::Jid;
use wa_wire::keys::IdentityKeys;
use wa_wire::msg::{ContentKind, OlmPayload, OlmType, Receipt, ReceiptKind, Relay, RelayTarget};
use wa_wire::phone::PhoneRequest;

/// The two phones, on one store, and what reached them.
struct Pair {
    store: MemStore,
    now: Time,
    phones: [PhoneConnection; 2],
    numbers: [String; 2],
    /// The phones' addresses (made once: pushes are routed inside the measured loop).
    addresses: [Jid; 2],
    /// Texts sent to each phone (counted, and dropped).
    sent: [u64; 2],
    /// Pushes waiting for a phone.
    pushes: Vec<(usize, Push)>,
    /// Codes delivered out of band.
    code: Option<String>,
    next: u64,
    /// The relay's and the receipt's texts, made once with stand-ins for the ids (what a
    /// client spends to make them is not the server's).
    relay: Vec<String>,
    receipt: Vec<String>,
}

/// Stand-ins for what changes from one request to the next.
const REQUEST_ID: u64 = 987_654_321_987_654_321;
const MESSAGE_ID: &str = "3EB0STANDINSTANDIN00";

/// `text` cut at each occurrence of `REQUEST_ID` and `MESSAGE_ID`.
fn template(text: &str) -> Vec<String> {
    text.replace(&REQUEST_ID.to_string(), "\0")
        .replace(MESSAGE_ID, "\0")
        .split('\0')
        .map(str::to_owned)
        .collect()
}

/// A template's text with the request id and the message id in their places.
fn fill(parts: &[String], request: u64, message: &str) -> String {
    let mut out = String::with_capacity(parts.iter().map(String::len).sum::<usize>() + 40);
    let request = request.to_string();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(if i == 1 { &request } else { message });
        }
        out.push_str(part);
    }
    out
}

fn run_job(store: &MemStore, job: Job) -> Result<Outcome, wa_server_core::store::StoreError> {
    // (The callback must be `'static`; a channel would cost more than the slot.)
    let slot = Arc::new(std::sync::Mutex::new(None));
    let filled = Arc::clone(&slot);
    wa_server_core::execute(store, job, move |result| {
        *filled.lock().unwrap() = Some(result);
    });
    let taken = slot.lock().unwrap().take();
    taken.expect("the in-memory store runs a job at once")
}

impl Pair {
    fn new() -> Pair {
        let mut config = Config::default();
        config.limits.requests_per_second = u32::MAX;
        config.limits.request_burst = u32::MAX;
        config.limits.max_pending_per_device = u32::MAX;
        config.limits.max_pending_bytes_per_account = u64::MAX;
        config.limits.daily_send_bytes = u64::MAX;
        let config = Arc::new(config);
        let now = Time::from_secs(1_700_000_000);
        let numbers = ["15550000001".to_owned(), "15550000002".to_owned()];
        let addresses = numbers
            .clone()
            .map(|n| wa_server_core::phone_address(&n).unwrap());
        let mut pair = Pair {
            store: MemStore::new(),
            now,
            phones: [
                PhoneConnection::new(Arc::clone(&config), [1; 32], now),
                PhoneConnection::new(config, [2; 32], now),
            ],
            sent: [0; 2],
            pushes: Vec::new(),
            code: None,
            next: 0,
            relay: template(
                &PhoneRequest::Relay {
                    id: REQUEST_ID,
                    relay: Relay {
                        to: addresses[1].clone(),
                        id: MESSAGE_ID.to_owned(),
                        kind: ContentKind::Text,
                        group: None,
                        targets: vec![RelayTarget {
                            device: addresses[1].clone(),
                            olm: Some(OlmPayload {
                                kind: OlmType::Normal,
                                body: vec![0x42; 300],
                            }),
                        }],
                    },
                }
                .to_text(),
            ),
            receipt: template(
                &PhoneRequest::Receipt {
                    id: REQUEST_ID,
                    receipt: Receipt {
                        kind: ReceiptKind::Delivered,
                        chat: addresses[0].clone(),
                        id: MESSAGE_ID.to_owned(),
                        participant: None,
                    },
                }
                .to_text(),
            ),
            numbers,
            addresses,
        };
        assert_eq!((pair.relay.len(), pair.receipt.len()), (3, 3));
        for i in 0..2 {
            let number = pair.numbers[i].clone();
            pair.request(
                i,
                &PhoneRequest::Register {
                    id: 1,
                    number: number.clone(),
                    name: String::new(),
                },
            );
            let code = pair.code.take().expect("a registration code");
            pair.request(
                i,
                &PhoneRequest::Verify {
                    id: 2,
                    number,
                    code,
                    name: String::new(),
                    identity: IdentityKeys {
                        curve25519: [9; 32],
                        ed25519: [u8::try_from(i).unwrap() + 3; 32],
                    },
                    phone: None,
                },
            );
        }
        pair
    }

    fn request(&mut self, i: usize, request: &PhoneRequest) {
        self.text(i, &request.to_text());
    }

    fn text(&mut self, i: usize, text: &str) {
        self.phones[i].handle_message(self.now, text);
        self.settle();
    }

    /// Carries out every phone's actions, and delivers their pushes, until nothing is left.
    fn settle(&mut self) {
        loop {
            let mut idle = true;
            for i in 0..2 {
                while let Some(action) = self.phones[i].poll_action() {
                    idle = false;
                    self.act(i, action);
                }
            }
            for (i, push) in std::mem::take(&mut self.pushes) {
                idle = false;
                self.phones[i].handle_push(self.now, push);
            }
            if idle {
                return;
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        match action {
            Action::Job { id, job } => self.job(i, id, *job),
            Action::Send(message) => {
                black_box(message);
                self.sent[i] += 1;
            }
            Action::Push { target, push } => {
                let to = match &target {
                    Target::Device(device) => self.addresses.iter().position(|a| a == device),
                    Target::Account { number, except } => self
                        .numbers
                        .iter()
                        .position(|n| n == number)
                        .filter(|&to| except.as_ref() != self.addresses.get(to)),
                    _ => None,
                };
                if let Some(to) = to {
                    self.pushes.push((to, push));
                }
            }
            Action::DeliverCode { code, .. } => self.code = Some(code.to_string()),
            _ => {}
        }
    }

    fn job(&mut self, i: usize, id: JobId, job: Job) {
        let outcome = run_job(&self.store, job);
        self.phones[i].handle_job(self.now, id, outcome);
    }

    /// One message from A to B, received, and its receipt: one delivered copy.
    fn copy(&mut self) {
        self.next += 1;
        self.now = self.now + Duration::from_millis(1);
        let id = format!("3EB0{:016X}", self.next);
        let relay = fill(&self.relay, self.next, &id);
        let before = self.sent[1];
        self.text(0, &relay);
        assert_eq!(self.sent[1], before + 1, "B got the message");
        let receipt = fill(&self.receipt, self.next, &id);
        let before = self.sent[0];
        self.text(1, &receipt);
        assert_eq!(self.sent[0], before + 1, "A got ack 2");
    }
}

fn bench(c: &mut Criterion) {
    let mut pair = Pair::new();
    c.bench_function("copy/phone to phone, on the in-memory store", |b| {
        b.iter(|| pair.copy());
    });
}

criterion_group!(benches, bench);

fn main() {
    if let Some(copies) = std::env::var("COPIES")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        let mut pair = Pair::new();
        for _ in 0..copies {
            pair.copy();
        }
        println!("{copies} copies; texts sent: {:?}", pair.sent);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
