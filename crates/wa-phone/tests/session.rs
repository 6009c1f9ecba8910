//! The phone session on its own, without a server: what it sends to register, how it treats
//! requests nobody answers, its reconnect schedule, and hostile server text (never a panic).
//! The flows against the real server core are in `wa-session`'s `net`, `net_flows` and
//! `mirror` tests and in `wa-client`'s tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::time::Duration;

use proptest::prelude::*;
use wa_phone::{
    CommandError, PhoneConfig, PhoneError, PhoneSession, PhoneSessionEvent, PhoneTransmit, Time,
};

const NUMBER: &str = "15551234567";

fn start() -> Time {
    Time::from_millis(1_700_000_000_000)
}

fn phone() -> PhoneSession {
    PhoneSession::new(PhoneConfig::new(NUMBER, "Ann"), [9; 32]).unwrap()
}

/// The JSON of the next `Send`, skipping nothing else.
fn sent(phone: &mut PhoneSession) -> serde_json::Value {
    match phone.poll_transmit() {
        Some(PhoneTransmit::Send(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a send, got {other:?}"),
    }
}

fn events(phone: &mut PhoneSession) -> Vec<PhoneSessionEvent> {
    std::iter::from_fn(|| phone.poll_event()).collect()
}

#[test]
fn registration_asks_for_a_code_then_binds_the_identity_keys() {
    let now = start();
    let mut phone = phone();
    assert!(matches!(
        phone.verify(now, "123456"),
        Err(CommandError::NotRegistering)
    ));
    phone.register(now).unwrap();
    assert!(matches!(
        phone.register(now),
        Err(CommandError::AlreadyStarted)
    ));
    assert_eq!(phone.poll_transmit(), Some(PhoneTransmit::Connect));
    phone.handle_connected(now);
    let register = sent(&mut phone);
    assert_eq!(register["cmd"], "register");
    assert_eq!(register["number"], NUMBER);
    assert_eq!(register["name"], "Ann");

    phone.verify(now, " 123456\n").unwrap();
    let verify = sent(&mut phone);
    assert_eq!(verify["cmd"], "verify");
    assert_eq!(verify["code"], "123456", "the code is trimmed");
    let identity = phone.identity_keys();
    assert_eq!(verify["identity"], serde_json::to_value(identity).unwrap());
    assert!(!phone.is_ready());
}

#[test]
fn a_number_that_is_not_a_number_is_refused() {
    for number in ["", "12", "phone", "1555123456789012345678"] {
        assert!(
            PhoneSession::new(PhoneConfig::new(number, "x"), [1; 32]).is_err(),
            "{number:?}"
        );
    }
}

#[test]
fn a_request_nobody_answers_fails_at_its_deadline() {
    let now = start();
    let mut phone = phone();
    phone.register(now).unwrap();
    phone.poll_transmit();
    phone.handle_connected(now);
    sent(&mut phone);
    let deadline = phone.poll_timeout().expect("the request has a deadline");
    assert!(deadline > now && deadline <= now + Duration::from_secs(60));
    // Not yet: nothing happens.
    phone.handle_timeout(now + Duration::from_millis(1));
    assert!(events(&mut phone).is_empty());
    phone.handle_timeout(deadline);
    let events = events(&mut phone);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneSessionEvent::Failed(_))),
        "{events:?}"
    );
}

#[test]
fn a_lost_login_reconnects_with_a_capped_jittered_backoff() {
    let mut now = start();
    let mut config = PhoneConfig::new(NUMBER, "Ann");
    config.reconnect_base = Duration::from_secs(1);
    config.reconnect_cap = Duration::from_secs(8);
    let mut phone = PhoneSession::new(config, [3; 32]).unwrap();
    phone.login(now).unwrap();
    let mut delays = Vec::new();
    for _ in 0..8 {
        assert_eq!(phone.poll_transmit(), Some(PhoneTransmit::Connect));
        phone.handle_connected(now);
        assert_eq!(sent(&mut phone)["cmd"], "hello");
        phone.handle_closed(now);
        assert_eq!(phone.poll_transmit(), Some(PhoneTransmit::Close));
        let delay = events(&mut phone)
            .into_iter()
            .find_map(|e| match e {
                PhoneSessionEvent::Disconnected { reconnect_in } => reconnect_in,
                _ => None,
            })
            .expect("it says when it tries again");
        delays.push(delay);
        // Nothing before the delay; the connect at it.
        assert_eq!(phone.poll_timeout(), Some(now + delay));
        now = now + delay;
        phone.handle_timeout(now);
    }
    assert!(delays[0] <= Duration::from_secs(1), "{delays:?}");
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(8)),
        "{delays:?}"
    );
    assert!(
        delays[7] >= Duration::from_secs(4),
        "doubling up to the cap: {delays:?}"
    );
}

#[test]
fn a_closed_registration_fails_instead_of_retrying() {
    let now = start();
    let mut phone = phone();
    phone.register(now).unwrap();
    phone.poll_transmit();
    phone.handle_connected(now);
    sent(&mut phone);
    phone.handle_closed(now);
    let events = events(&mut phone);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PhoneSessionEvent::Failed(PhoneError::Protocol(_)))),
        "{events:?}"
    );
    assert_eq!(phone.poll_timeout(), None, "no reconnect");
}

/// Valid-looking server events with hostile values.
fn hostile_event() -> impl Strategy<Value = String> {
    let id = prop_oneof![Just(0u64), Just(1), Just(2), any::<u64>()];
    let kind = prop_oneof![
        Just("result".to_owned()),
        Just("error".to_owned()),
        Just("message".to_owned()),
        Just("ack".to_owned()),
        Just("presence".to_owned()),
        Just("group".to_owned()),
        Just("notification".to_owned()),
        Just("replaced".to_owned()),
        Just("mirror_challenge".to_owned()),
        Just("mirror_frame".to_owned()),
        Just("mirror_online".to_owned()),
        Just("linked".to_owned()),
        "[a-z_]{0,12}".prop_map(String::from),
    ];
    let data = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        Just(
            serde_json::json!({"nonce": "AAAA", "status": 409, "missing": ["x@c.us"], "extra": [1]})
        ),
        Just(serde_json::json!({"device": "15551234567.0:1@c.us", "frame": {"binary": "////"}})),
        Just(serde_json::json!([1, 2, {"ciphertext": "not base64"}])),
    ];
    (id, kind, data, data_key()).prop_map(|(id, kind, data, key)| {
        serde_json::json!({"event": kind, "id": id, key: data, "status": 500, "error": "e"})
            .to_string()
    })
}

fn data_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("data".to_owned()),
        Just("nonce".to_owned()),
        Just("message".to_owned()),
        Just("frame".to_owned()),
        "[a-z]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the server sends, in any state, the session answers with events, never a panic,
    /// and its queues stay bounded by what it was given.
    #[test]
    fn hostile_server_text_never_panics(
        texts in proptest::collection::vec(prop_oneof![hostile_event(), ".{0,200}"], 1..24),
        register in any::<bool>(),
    ) {
        let now = start();
        let mut phone = phone();
        if register { phone.register(now).unwrap() } else { phone.login(now).unwrap() }
        phone.poll_transmit();
        phone.handle_connected(now);
        for text in &texts {
            phone.handle_message(now, text);
            while phone.poll_transmit().is_some() {}
            let _ = events(&mut phone);
        }
        phone.handle_timeout(now + Duration::from_secs(3600));
        prop_assert!(events(&mut phone).len() <= texts.len() + 8);
    }
}
