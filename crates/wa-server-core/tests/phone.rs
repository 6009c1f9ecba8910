//! One phone connection of the core against an in-memory store, driven with raw protocol text
//! as a hostile phone would send it: nothing before login, codes that expire, run out and are
//! rate-limited, logins that need the account's key, and text that is not a request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::sync::{Arc, mpsc};
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use proptest::prelude::*;
use serde_json::Value;
use wa_server_core::store::MemStore;
use wa_server_core::{Action, Config, PhoneConnection, Time, execute};
use wa_wire::keys::{IdentityKeys, Signature};
use wa_wire::phone::{PhoneRequest, auth_message};

const NUMBER: &str = "15551234567";

/// A phone socket on the core, with every job run inline on a shared store.
struct Phone {
    conn: PhoneConnection,
    store: Arc<MemStore>,
    now: Time,
    sent: Vec<Value>,
    codes: Vec<String>,
    closed: bool,
    jobs: usize,
}

impl Phone {
    fn new(store: &Arc<MemStore>, now: Time) -> Phone {
        Phone::with_config(store, now, Config::default())
    }

    fn with_config(store: &Arc<MemStore>, now: Time, config: Config) -> Phone {
        // Each connection its own seed, as the driver gives them (so its own nonces).
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
        let seed = [NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed); 32];
        Phone {
            conn: PhoneConnection::new(Arc::new(config), seed, now),
            store: Arc::clone(store),
            now,
            sent: Vec::new(),
            codes: Vec::new(),
            closed: false,
            jobs: 0,
        }
    }

    fn text(&mut self, text: &str) -> Vec<Value> {
        self.conn.handle_message(self.now, text);
        self.run()
    }

    fn request(&mut self, request: &PhoneRequest) -> Vec<Value> {
        self.text(&request.to_text())
    }

    /// Carries out every action; returns what was sent.
    fn run(&mut self) -> Vec<Value> {
        let mut sent = Vec::new();
        while let Some(action) = self.conn.poll_action() {
            match action {
                Action::Job { id, job } => {
                    self.jobs += 1;
                    let (done, outcome) = mpsc::channel();
                    execute(&*self.store, *job, move |result| {
                        let _ = done.send(result);
                    });
                    self.conn.handle_job(self.now, id, outcome.recv().unwrap());
                }
                Action::Send(wa_frame::OutMessage::Text(text)) => {
                    sent.push(serde_json::from_str(&text).expect("the core sends JSON"));
                }
                Action::Send(other) => panic!("a phone gets text only: {other:?}"),
                Action::DeliverCode { code, .. } => self.codes.push(code.to_string()),
                Action::Close => self.closed = true,
                _ => {}
            }
        }
        self.sent.extend(sent.iter().cloned());
        sent
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        self.conn.handle_timeout(self.now);
        self.run();
    }
}

fn status(reply: &[Value]) -> Option<u64> {
    reply.iter().find_map(|v| match v["event"].as_str() {
        Some("error") => v["status"].as_u64(),
        Some("result") => Some(200),
        _ => None,
    })
}

fn start() -> Time {
    Time::from_millis(1_700_000_000_000)
}

fn identity(key: &SigningKey) -> IdentityKeys {
    IdentityKeys {
        curve25519: [9; 32],
        ed25519: key.verifying_key().to_bytes(),
    }
}

/// Registers `NUMBER` with the identity of `key`; returns the store.
fn registered(key: &SigningKey) -> Arc<MemStore> {
    let store = Arc::new(MemStore::new());
    let mut phone = Phone::new(&store, start());
    let register = PhoneRequest::Register {
        id: 1,
        number: NUMBER.into(),
        name: "Ann".into(),
    };
    assert_eq!(status(&phone.request(&register)), Some(200));
    let code = phone.codes.pop().expect("a code for a text message");
    let verify = PhoneRequest::Verify {
        id: 2,
        number: NUMBER.into(),
        code,
        name: "Ann".into(),
        identity: identity(key),
        phone: None,
    };
    assert_eq!(
        status(&phone.request(&verify)),
        Some(200),
        "{:?}",
        phone.sent
    );
    store
}

#[test]
fn nothing_but_registration_and_login_before_login_and_no_store_work_for_it() {
    let store = Arc::new(MemStore::new());
    let mut phone = Phone::new(&store, start());
    let requests = [
        r#"{"cmd":"devices","id":3,"users":["15559876543@c.us"]}"#,
        r#"{"cmd":"linked","id":4}"#,
        r#"{"cmd":"unlink","id":5,"client_id":"x"}"#,
        r#"{"cmd":"media_conn","id":6}"#,
        r#"{"cmd":"ping","id":7}"#,
        r#"{"cmd":"link","id":8,"qr":"1@a,b,c"}"#,
    ];
    for text in requests {
        let reply = phone.text(text);
        let code = status(&reply);
        assert!(code == Some(401) || code == Some(400), "{text} → {reply:?}");
    }
    assert_eq!(phone.jobs, 0, "no store work for a stranger");
    // Auth before hello.
    let auth = PhoneRequest::Auth {
        id: 9,
        signature: Signature([0; 64]),
    };
    assert_eq!(status(&phone.request(&auth)), Some(400));
}

#[test]
fn a_login_needs_the_accounts_key() {
    let owner = SigningKey::from_bytes(&[1; 32]);
    let store = registered(&owner);
    let challenge = |phone: &mut Phone| -> Vec<u8> {
        let hello = PhoneRequest::Hello {
            id: 1,
            number: NUMBER.into(),
        };
        let reply = phone.request(&hello);
        let nonce = reply[0]["data"]["nonce"].as_str().expect("a nonce");
        base64_decode(nonce)
    };

    // Someone else's key: 401, and the socket closes.
    let mut thief = Phone::new(&store, start());
    let nonce = challenge(&mut thief);
    let forged = SigningKey::from_bytes(&[2; 32]).sign(&auth_message(NUMBER, &nonce));
    let auth = PhoneRequest::Auth {
        id: 2,
        signature: Signature(forged.to_bytes()),
    };
    assert_eq!(status(&thief.request(&auth)), Some(401));
    assert!(thief.closed);

    // The owner's key over another connection's nonce: 401 too (nonces are per connection).
    let mut replayer = Phone::new(&store, start());
    let _ = challenge(&mut replayer);
    let replayed = owner.sign(&auth_message(NUMBER, &nonce));
    let auth = PhoneRequest::Auth {
        id: 2,
        signature: Signature(replayed.to_bytes()),
    };
    assert_eq!(status(&replayer.request(&auth)), Some(401));

    // The owner, over its own nonce: in.
    let mut phone = Phone::new(&store, start());
    let nonce = challenge(&mut phone);
    let signed = owner.sign(&auth_message(NUMBER, &nonce));
    let auth = PhoneRequest::Auth {
        id: 2,
        signature: Signature(signed.to_bytes()),
    };
    assert_eq!(status(&phone.request(&auth)), Some(200));
    assert_eq!(status(&phone.text(r#"{"cmd":"linked","id":3}"#)), Some(200));
}

#[test]
fn codes_are_limited_per_number_and_run_out_of_attempts() {
    let store = Arc::new(MemStore::new());
    let config = Config::default();
    let attempts = config.code_attempts;
    let mut phone = Phone::with_config(&store, start(), config);
    let register = |id| PhoneRequest::Register {
        id,
        number: NUMBER.into(),
        name: "Ann".into(),
    };
    // Three codes an hour, then 429.
    for id in 1..=3 {
        assert_eq!(status(&phone.request(&register(id))), Some(200));
    }
    assert_eq!(status(&phone.request(&register(4))), Some(429));
    let code = phone.codes.last().cloned().unwrap();
    assert_eq!(phone.codes.len(), 3);
    // Wrong guesses use up the attempts; then even the right code is refused.
    let verify = |id, code: &str| PhoneRequest::Verify {
        id,
        number: NUMBER.into(),
        code: code.to_owned(),
        name: "Ann".into(),
        identity: identity(&SigningKey::from_bytes(&[1; 32])),
        phone: None,
    };
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for id in 0..u64::from(attempts) {
        assert_eq!(status(&phone.request(&verify(10 + id, wrong))), Some(401));
    }
    assert_ne!(status(&phone.request(&verify(99, &code))), Some(200));
}

#[test]
fn a_code_expires() {
    let store = Arc::new(MemStore::new());
    let config = Config::default();
    let ttl = config.code_ttl;
    let mut phone = Phone::with_config(&store, start(), config);
    let register = PhoneRequest::Register {
        id: 1,
        number: NUMBER.into(),
        name: "Ann".into(),
    };
    assert_eq!(status(&phone.request(&register)), Some(200));
    let code = phone.codes.pop().unwrap();
    phone.advance(ttl + Duration::from_secs(1));
    let verify = PhoneRequest::Verify {
        id: 2,
        number: NUMBER.into(),
        code,
        name: "Ann".into(),
        identity: identity(&SigningKey::from_bytes(&[1; 32])),
        phone: None,
    };
    let reply = phone.request(&verify);
    assert_ne!(status(&reply), Some(200), "{reply:?}");
}

/// A connection on which the owner of `key` logged in.
fn logged_in(store: &Arc<MemStore>, key: &SigningKey) -> Phone {
    let mut phone = Phone::new(store, start());
    let hello = PhoneRequest::Hello {
        id: 1,
        number: NUMBER.into(),
    };
    let reply = phone.request(&hello);
    let nonce = base64_decode(reply[0]["data"]["nonce"].as_str().expect("a nonce"));
    let auth = PhoneRequest::Auth {
        id: 2,
        signature: Signature(key.sign(&auth_message(NUMBER, &nonce)).to_bytes()),
    };
    assert_eq!(status(&phone.request(&auth)), Some(200));
    phone
}

#[test]
fn answers_follow_the_requests_order_whatever_order_their_jobs_finish_in() {
    let owner = SigningKey::from_bytes(&[1; 32]);
    let store = registered(&owner);
    let mut phone = logged_in(&store, &owner);
    let now = phone.now;
    // Two requests whose jobs the driver runs apart (a read beside a write, say): the second
    // finishes first.
    phone.conn.handle_message(now, r#"{"cmd":"linked","id":3}"#);
    let devices = format!(r#"{{"cmd":"devices","id":4,"users":["{NUMBER}@c.us"]}}"#);
    phone.conn.handle_message(now, &devices);
    let mut finished = Vec::new();
    while let Some(action) = phone.conn.poll_action() {
        let Action::Job { id, job } = action else {
            panic!("only jobs before their outcomes: {action:?}");
        };
        let (done, outcome) = mpsc::channel();
        execute(&*store, *job, move |result| {
            let _ = done.send(result);
        });
        finished.push((id, outcome.recv().unwrap()));
    }
    assert_eq!(finished.len(), 2, "a job per request");
    assert_eq!(phone.conn.jobs_in_flight(), 2);
    let (second, result) = finished.pop().unwrap();
    phone.conn.handle_job(now, second, result);
    assert!(
        phone.run().is_empty(),
        "the second answer waits for the first"
    );
    assert_eq!(
        phone.conn.jobs_in_flight(),
        2,
        "a held outcome is still in flight"
    );
    let (first, result) = finished.pop().unwrap();
    phone.conn.handle_job(now, first, result);
    assert_eq!(phone.conn.jobs_in_flight(), 0);
    let ids: Vec<u64> = phone
        .run()
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(ids, [3, 4], "both answers, in the order of the requests");
    // An outcome for a job never issued, or one handled already, changes nothing.
    phone
        .conn
        .handle_job(now, second, Err(wa_server_core::store::StoreError::Closed));
    phone.conn.handle_job(
        now,
        wa_server_core::JobId(99),
        Err(wa_server_core::store::StoreError::Closed),
    );
    assert!(phone.run().is_empty() && !phone.closed);
    assert_eq!(status(&phone.text(r#"{"cmd":"linked","id":5}"#)), Some(200));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever a phone sends, the core answers with protocol JSON (never a panic), and a
    /// stranger's text does no store work beyond registration and login.
    #[test]
    fn hostile_phone_text_is_answered_never_a_panic(
        texts in proptest::collection::vec(
            prop_oneof![
                ".{0,120}",
                r#"\{"cmd":"(register|verify|hello|auth|relay|link|keys|group)","id":[0-9]{1,20}(,"[a-z_]{1,10}":("[ -~]{0,30}"|[0-9]{1,5}|null|\[\]|\{\}))*\}"#,
            ],
            1..16,
        ),
    ) {
        let store = Arc::new(MemStore::new());
        let mut phone = Phone::new(&store, start());
        for text in &texts {
            let reply = phone.text(text);
            for value in &reply {
                prop_assert!(value.get("event").is_some(), "{value}");
            }
        }
    }
}
