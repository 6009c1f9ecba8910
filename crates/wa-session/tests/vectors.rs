//! Every message of `tests/data/session.json` (real-shaped server traffic, consistent with the
//! keys of `crypto.json`; both link into the repository's `testdata/`) handled as its `meaning`
//! says, by a legacy client (the traffic is the legacy protocol's).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::time::Duration;

use serde_json::Value;
use wa_session::{
    AckLevel, Credentials, DisconnectReason, Event, Jid, LinkError, LoginError, MessageSource,
    Session, SessionError,
};
use wa_test_support::{FakeServer, Harness, T0, legacy_config};

fn jid(text: &str) -> Jid {
    text.parse().unwrap()
}

/// The parsed JSON of `tests/data/<name>`; a missing file fails the test with its full path.
fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()))
}

fn vectors() -> Value {
    load("session.json")
}

fn crypto() -> Value {
    load("crypto.json")
}

fn data(v: &Value, section: &str, i: usize) -> String {
    v[section][i]["data"].as_str().unwrap().to_owned()
}

/// A session with the vectors' fixed client identity, started linking, with `admin init` sent.
fn linking() -> (Harness, Value) {
    let v = vectors();
    let private: [u8; 32] = hex::decode(v["client_private_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let session = Session::new(legacy_config(), [1; 32], T0)
        .with_identity(v["client_id"].as_str().unwrap(), private);
    let mut h = Harness::with_session(session);
    h.session.link(h.now).unwrap();
    h.drive();
    (h, v)
}

fn linked() -> (Harness, Value) {
    let (mut h, v) = linking();
    let init = h.tag_of(r#"["admin","init""#);
    h.server_text(&data(&v, "link", 0).replace("<init>", &init));
    h.server_text(&data(&v, "link", 4));
    assert!(h.session.is_connected());
    h.take_events();
    (h, v)
}

#[test]
fn link_shows_the_expected_qr_then_rerefs_then_derives_the_keys() {
    let (mut h, v) = linking();
    let init = h.tag_of(r#"["admin","init""#);
    assert!(h.sent_texts()[0].starts_with(&format!(
        r#"{init},,["admin","init",[2,2142,12],["wa-rs","wa-rs"],"AAECAwQFBgcICQoLDA0ODw==",true]"#
    )));
    h.server_text(&data(&v, "link", 0).replace("<init>", &init));
    let events = h.take_events();
    let Some(Event::Qr { text, expires_at }) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(text, v["expected_qr_text_for_first_ref"].as_str().unwrap());
    assert_eq!(*expires_at, T0 + Duration::from_millis(20_000));

    // The ttl passes: a reref, answered with a new ref.
    h.advance(Duration::from_millis(20_000));
    let reref = h.tag_of(r#"["admin","Conn","reref"]"#);
    h.server_text(&data(&v, "link", 1).replace("<reref>", &reref));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Qr { text, .. }] if text.starts_with("1@Rf6e5d4c3b2a1,")),
        "{events:?}"
    );

    // Again: 304 keeps the current ref.
    h.advance(Duration::from_millis(20_000));
    let reref = h.tag_of(r#"["admin","Conn","reref"]"#);
    h.server_text(&data(&v, "link", 2).replace("<reref>", &reref));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Qr { text, .. }] if text.starts_with("1@Rf6e5d4c3b2a1,")),
        "{events:?}"
    );

    // The phone scans: the Conn carries the secret; the keys are those of crypto.json.
    h.server_text(&data(&v, "link", 4));
    let events = h.take_events();
    let Some(Event::Credentials(credentials)) =
        events.iter().find(|e| matches!(e, Event::Credentials(_)))
    else {
        panic!("{events:?}")
    };
    let c = crypto();
    assert_eq!(
        hex::encode(credentials.enc_key),
        c["login"]["enc_key_hex"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(credentials.mac_key),
        c["login"]["mac_key_hex"].as_str().unwrap()
    );
    assert_eq!(credentials.wid, jid("15551234567@c.us"));
    assert_eq!(
        credentials.device, 0,
        "a legacy client is no device of its own"
    );
    assert_eq!(
        credentials.client_token,
        "Y2xpZW50LXRva2VuLWZpeHR1cmUtMDAwMQ=="
    );
    let Some(Event::Connected { account }) =
        events.iter().find(|e| matches!(e, Event::Connected { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!(account.pushname.as_deref(), Some("Alex Example"));
    assert_eq!(account.platform.as_deref(), Some("android"));
    assert_eq!(account.battery, Some(87));
    assert_eq!(
        account.phone.as_ref().unwrap().device_model.as_deref(),
        Some("EP1")
    );
    assert!(h.session.is_connected());

    // Stream and Props are surfaced, not acted on.
    h.server_text(&data(&v, "link", 5));
    h.server_text(&data(&v, "link", 6));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Other(a), Event::Other(b)] if a[0] == "Stream" && b[0] == "Props"),
        "{events:?}"
    );
}

#[test]
fn reref_429_ends_linking_with_a_typed_error() {
    let (mut h, v) = linking();
    let init = h.tag_of(r#"["admin","init""#);
    h.server_text(&data(&v, "link", 0).replace("<init>", &init));
    h.advance(Duration::from_millis(20_000));
    let reref = h.tag_of(r#"["admin","Conn","reref"]"#);
    h.take_events();
    h.server_text(&data(&v, "link", 3).replace("<reref>", &reref));
    let events = h.take_events();
    assert!(
        matches!(events[0], Event::LinkFailed(LinkError::RerefRefused)),
        "{events:?}"
    );
    assert!(matches!(
        events[1],
        Event::Disconnected {
            reason: DisconnectReason::LinkFailed,
            reconnect_in: None
        }
    ));
    assert_eq!(h.closes, 1);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.connects, 1, "no reconnect after a failed link");
}

/// A restoring session with `admin login` sent; returns the login tag.
fn logging_in(v: &Value) -> (Harness, String) {
    let server = FakeServer::new();
    let mut credentials: Credentials = server.credentials(v["client_id"].as_str().unwrap());
    credentials.server_token = "1@c2VydmVyLXRva2VuLWZpeHR1cmUtMDAwMQ==".to_owned();
    let mut h = Harness::new(legacy_config());
    h.session.restore(h.now, credentials).unwrap();
    h.drive();
    let init = h.tag_of(r#"["admin","init""#);
    h.server_text(&format!(
        r#"{init},{{"status":200,"ref":"1@x","ttl":20000}}"#
    ));
    let login = h.tag_of(r#"["admin","login""#);
    assert!(
        h.sent_texts()
            .last()
            .unwrap()
            .ends_with(r#""AAECAwQFBgcICQoLDA0ODw==","takeover"]"#)
    );
    (h, login)
}

#[test]
fn every_login_status_has_its_outcome() {
    let v = vectors();
    let cases: [(usize, Option<LoginError>, bool, bool); 7] = [
        (0, None, false, false),
        (1, Some(LoginError::Unpaired), true, false),
        (
            2,
            Some(LoginError::AccessDenied { tos: Some(2) }),
            true,
            false,
        ),
        (3, Some(LoginError::AlreadyLoggedIn), false, false),
        (4, Some(LoginError::LoggedInElsewhere), false, false),
        (5, Some(LoginError::Expired), true, false),
        (6, Some(LoginError::ServerError), false, true),
    ];
    for (i, error, forget, retry) in cases {
        let (mut h, login) = logging_in(&v);
        h.take_events();
        h.server_text(&data(&v, "restore", i).replace("<login>", &login));
        let events = h.take_events();
        match &error {
            None => {
                assert!(events.is_empty(), "200 waits for the Conn: {events:?}");
                assert!(h.session.credentials().is_some());
            }
            Some(expected) => {
                let Some(Event::LoginFailed {
                    error,
                    forget_credentials,
                }) = events.first()
                else {
                    panic!("{i}: {events:?}")
                };
                assert_eq!(error, expected, "{i}");
                assert_eq!(*forget_credentials, forget, "{i}");
                assert_eq!(h.session.credentials().is_none(), forget, "{i}");
                let Some(Event::Disconnected { reconnect_in, .. }) = events.get(1) else {
                    panic!("{i}: {events:?}")
                };
                assert_eq!(reconnect_in.is_some(), retry, "{i}: only 500 is retried");
            }
        }
    }
}

#[test]
fn the_challenge_is_answered_with_the_hmac_of_the_mac_key() {
    let v = vectors();
    let (mut h, _) = logging_in(&v);
    h.server_text(&data(&v, "restore", 7));
    let answer = h.sent_texts().last().unwrap().to_string();
    let (tag, payload) = answer.split_once(",,").unwrap();
    let payload: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(
        payload,
        serde_json::json!([
            "admin",
            "challenge",
            "lXZU+YDUIFQmtNLFBKJWIIuVFTM9hY0s9yEV/2I+Aq0=",
            "1@c2VydmVyLXRva2VuLWZpeHR1cmUtMDAwMQ==",
            "AAECAwQFBgcICQoLDA0ODw=="
        ])
    );
    h.server_text(&data(&v, "restore", 8).replace("<challenge>", tag));
    assert!(
        h.take_events()
            .iter()
            .all(|e| !matches!(e, Event::LoginFailed { .. } | Event::Disconnected { .. }))
    );
}

#[test]
fn server_commands() {
    let v = vectors();
    // replaced: stop, and no automatic reconnect
    let (mut h, _) = linked();
    h.server_text(&data(&v, "server_commands", 0));
    let events = h.take_events();
    assert!(
        matches!(
            events[..],
            [Event::Disconnected {
                reason: DisconnectReason::Replaced,
                reconnect_in: None
            }]
        ),
        "{events:?}"
    );
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.connects, 1);
    // update: version rejected
    let (mut h, _) = linked();
    h.server_text(&data(&v, "server_commands", 1));
    let events = h.take_events();
    assert!(
        matches!(
            events[0],
            Event::LoginFailed {
                error: LoginError::VersionRejected,
                ..
            }
        ),
        "{events:?}"
    );
    assert!(matches!(
        events[1],
        Event::Disconnected {
            reason: DisconnectReason::VersionRejected,
            reconnect_in: None
        }
    ));

    let (mut h, _) = linked();
    let expect = |h: &mut Harness, i: usize| -> Vec<Event> {
        h.server_text(&data(&v, "server_commands", i));
        h.take_events()
    };
    assert!(matches!(
        expect(&mut h, 2)[..],
        [Event::PhoneReachable(false)]
    ));
    assert!(matches!(
        expect(&mut h, 3)[..],
        [Event::PhoneReachable(true)]
    ));
    assert!(
        expect(&mut h, 4).is_empty(),
        "a keepalive answer is no event"
    );
    // Acks name the sender (`from`, this account) and the chat (`to`).
    let (own, bob) = (jid("15551234567@c.us"), jid("15559876543@c.us"));
    let events = expect(&mut h, 5);
    assert!(
        matches!(&events[..], [Event::Ack { ids, level: AckLevel::Sent, from: Some(f), to: Some(t), participant: None }] if ids == &["3EB0AAAABBBB"] && *f == own && *t == bob),
        "{events:?}"
    );
    let events = expect(&mut h, 6);
    assert!(
        matches!(&events[..], [Event::Ack { ids, level: AckLevel::Read, from: Some(f), to: Some(t), participant: None }] if ids == &["3EB0AAAABBBB", "3EB0CCCCDDDD"] && *f == own && *t == bob),
        "{events:?}"
    );
    let events = expect(&mut h, 7);
    assert!(
        matches!(&events[..], [Event::Presence { jid, group: None, kind, t: Some(1589356601) }] if *jid == bob && kind == "composing"),
        "{events:?}"
    );
    let events = expect(&mut h, 8);
    let [Event::Group(notice)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(notice.group, jid("15551234567-1589356000@g.us"));
    assert_eq!(notice.op, wa_session::GroupOp::Add);
    assert_eq!(notice.author, own);
    assert_eq!(notice.participants, [jid("15552222222@c.us")]);
    assert!(matches!(&expect(&mut h, 9)[..], [Event::Other(b)] if b[0] == "Blocklist"));
    assert!(
        matches!(&expect(&mut h, 10)[..], [Event::Other(u)] if u[0] == "SomethingNew"),
        "unknown kinds are kept"
    );
    assert!(
        expect(&mut h, 11).is_empty(),
        "an empty payload is valid and no event"
    );
    assert!(h.session.is_connected());
}

#[test]
fn binary_frames_give_lists_history_and_live_messages() {
    let v = vectors();
    let (mut h, _) = linked();
    let frame = |i: usize| hex::decode(v["binary"][i]["hex"].as_str().unwrap()).unwrap();
    h.server_binary(&frame(0));
    let events = h.take_events();
    let [Event::Chats(chats)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(chats.len(), 292);
    assert!(chats.iter().all(|c| c.jid.user().is_some()));
    h.server_binary(&frame(1));
    let events = h.take_events();
    let [Event::Contacts(contacts)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(contacts.len(), 901);
    h.server_binary(&frame(2));
    let events = h.take_events();
    assert_eq!(events.len(), 292);
    assert!(events.iter().all(|e| matches!(
        e,
        Event::Message {
            source: MessageSource::Last,
            ..
        }
    )));
    h.server_binary(&frame(3));
    let events = h.take_events();
    let [
        Event::Message {
            info,
            source: MessageSource::Relay,
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        info.key.remote_jid.as_deref(),
        Some("15559876543@s.whatsapp.net")
    );
    assert_eq!(info.key.id.as_deref(), Some("3EB0AAAABBBB"));
    assert_eq!(
        info.message
            .as_ref()
            .and_then(|m| m.conversation.as_deref()),
        Some("hello")
    );

    // The tampered frame: an error event, nothing else, and the session goes on.
    let tampered = hex::decode(v["binary_tampered"]["hex"].as_str().unwrap()).unwrap();
    h.server_binary(&tampered);
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [Event::Error(SessionError::Open(
                wa_crypto::OpenError::MacMismatch
            ))]
        ),
        "{events:?}"
    );
    assert!(h.session.is_connected());
    h.server_binary(&frame(3));
    assert_eq!(h.take_events().len(), 1);
}
