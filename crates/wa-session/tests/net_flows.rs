//! The session's connection flows against the real server core and real phones, in memory on a
//! virtual clock ([`wa_test_support::Net`]): linking, rerefs and their limit, restoring with a
//! takeover, token rotation and the challenge, unlinking, reconnecting, the offline queue,
//! keepalive, logout, the linked-device limit, presence, media connections, the legacy queries
//! and sends to numbers without an account. Every wait is `drive` or `advance`.
//!
//! What the real server never does (errors, silence, garbage) is in `flows.rs`, against the
//! scripted fake server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use std::time::Duration;

use wa_phone::{Answer, PhoneSessionEvent};
use wa_session::{
    AckLevel, Config, Credentials, DisconnectReason, Event, LinkError, LoginError, PickleKey,
    PresenceState, Reply, RequestError, RequestId,
};
use wa_test_support::Net;

const ALICE: &str = "15551234567";
const BOB: &str = "15559876543";

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { info, .. } => {
                info.message.as_ref().and_then(|m| m.conversation.clone())
            }
            _ => None,
        })
        .collect()
}

fn qr_refs(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Qr { text, .. } => Some(text.split(',').next().unwrap().to_owned()),
            _ => None,
        })
        .collect()
}

fn reply(events: &[Event], request: RequestId) -> Result<Reply, RequestError> {
    events
        .iter()
        .find_map(|e| match e {
            Event::Reply { id, result } if *id == request => Some(result.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply to {request:?}: {events:#?}"))
}

fn disconnects(events: &[Event]) -> Vec<(DisconnectReason, Option<Duration>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Disconnected {
                reason,
                reconnect_in,
            } => Some((reason.clone(), *reconnect_in)),
            _ => None,
        })
        .collect()
}

fn login_failures(events: &[Event]) -> Vec<(LoginError, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LoginFailed {
                error,
                forget_credentials,
            } => Some((error.clone(), *forget_credentials)),
            _ => None,
        })
        .collect()
}

fn pickle_key() -> PickleKey {
    PickleKey::new([0x5c; 32])
}

/// A net with registered phones for `numbers`, their events taken.
fn phones(numbers: &[&str]) -> (Net, Vec<usize>) {
    let mut net = Net::new();
    let ids: Vec<usize> = numbers
        .iter()
        .enumerate()
        .map(|(i, number)| {
            let id = net.add_phone(number, &format!("Person {i}"));
            net.register(id);
            net.phone_events(id);
            id
        })
        .collect();
    (net, ids)
}

/// A web client of `phone` whose state is sealed and stored, linked, its events taken.
fn linked_web(net: &mut Net, phone: usize) -> usize {
    let web = net.add_web_with_pickle_key(Config::default(), pickle_key());
    net.link(web, phone);
    net.web_events(web);
    net.phone_events(phone);
    web
}

/// The linked web clients phone `phone` lists, by client id, oldest first.
fn linked_client_ids(net: &mut Net, phone: usize) -> Vec<String> {
    let now = net.now;
    let command = net.phone(phone).session.linked(now).unwrap();
    net.drive();
    let events = net.phone_events(phone);
    events
        .iter()
        .find_map(|e| match e {
            PhoneSessionEvent::Answer {
                id,
                result: Ok(Answer::LinkedDevices(list)),
            } if *id == command => Some(list.devices.iter().map(|d| d.client_id.clone()).collect()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no list of linked devices: {events:#?}"))
}

fn login_texts(net: &mut Net, web: usize) -> Vec<String> {
    net.web(web)
        .sent
        .iter()
        .filter(|t| t.contains(r#"["admin","login""#))
        .cloned()
        .collect()
}

#[test]
fn linking_end_to_end() {
    let (mut net, p) = phones(&[ALICE]);
    let web = net.add_web(Config::default());
    net.link(web, p[0]);
    let events = net.web_events(web);
    // The QR code, then the link: credentials, connected, then the Stream and Props messages.
    let qr = events
        .iter()
        .position(|e| matches!(e, Event::Qr { .. }))
        .unwrap();
    let credentials = events
        .iter()
        .position(|e| matches!(e, Event::Credentials(_)))
        .unwrap();
    let connected = events
        .iter()
        .position(|e| matches!(e, Event::Connected { .. }))
        .unwrap();
    let others: Vec<(usize, &serde_json::Value)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Other(v) => Some((i, v)),
            _ => None,
        })
        .collect();
    assert!(qr < credentials && credentials < connected, "{events:#?}");
    let [(stream_at, stream), (props_at, props)] = others[..] else {
        panic!("{events:#?}")
    };
    assert!(connected < stream_at && stream_at < props_at);
    assert_eq!(
        (stream[0].as_str(), stream[1].as_str()),
        (Some("Stream"), Some("update"))
    );
    assert_eq!(props[0], "Props");
    assert!(props[1]["maxParticipants"].as_u64().is_some());

    let Event::Credentials(credentials) = &events[credentials] else {
        unreachable!()
    };
    let user = net.user(p[0]);
    assert_eq!(credentials.wid, user);
    assert!(
        credentials.device > 0,
        "an end-to-end client is a device of its own"
    );
    assert_eq!(credentials.client_id, net.web(web).session.client_id());
    assert_eq!(Some(&**credentials), net.web(web).session.credentials());
    let Event::Connected { account } = &events[connected] else {
        unreachable!()
    };
    assert_eq!(account.wid.as_ref(), Some(&user));
    assert_eq!(account.pushname.as_deref(), Some("Person 0"));
    // The phone lists it.
    assert_eq!(
        linked_client_ids(&mut net, p[0]),
        std::slice::from_ref(&credentials.client_id)
    );
    // Credentials are a serde value a caller persists, and their Debug shows no secret.
    let json = serde_json::to_string(&**credentials).unwrap();
    let back: Credentials = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, &**credentials);
    let debug = format!("{credentials:?}");
    assert!(
        !debug.contains(&credentials.client_token) && !debug.contains(&credentials.server_token)
    );
}

#[test]
fn five_rerefs_then_the_sixth_expiry_gives_up() {
    let (mut net, _) = phones(&[ALICE]);
    let web = net.add_web(Config::default());
    let start = net.now;
    let now = net.now;
    net.web(web).session.link(now).unwrap();
    net.drive();
    let mut events = net.web_events(web);
    for _ in 0..5 {
        net.advance(Duration::from_secs(20));
        events.extend(net.web_events(web));
    }
    // Asked for when each ref expires: the server hands out a new one every time.
    let refs = qr_refs(&events);
    assert_eq!(refs.len(), 6, "{events:#?}");
    let distinct: std::collections::BTreeSet<&String> = refs.iter().collect();
    assert_eq!(distinct.len(), 6, "{refs:?}");
    let expiries: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::Qr { expires_at, .. } => Some(expires_at.since(start)),
            _ => None,
        })
        .collect();
    assert_eq!(
        expiries,
        (1..=6)
            .map(|i| Duration::from_secs(20 * i))
            .collect::<Vec<_>>()
    );
    let rerefs = net
        .web(web)
        .sent
        .iter()
        .filter(|t| t.contains(r#"["admin","Conn","reref"]"#))
        .count();
    assert_eq!(rerefs, 5);
    assert!(net.web(web).session.poll_timeout().is_some());
    // The sixth expiry: the session gives up, closes, and does not come back.
    net.advance(Duration::from_secs(20));
    let events = net.web_events(web);
    assert!(
        matches!(
            events[..],
            [
                Event::LinkFailed(LinkError::Expired(6)),
                Event::Disconnected {
                    reason: DisconnectReason::LinkFailed,
                    reconnect_in: None
                }
            ]
        ),
        "{events:#?}"
    );
    assert_eq!(net.hub().online(), 1, "only the phone is connected");
    net.advance(Duration::from_secs(3600));
    assert!(net.web_events(web).is_empty());
    assert_eq!(
        net.web(web)
            .sent
            .iter()
            .filter(|t| t.contains(r#"["admin","init""#))
            .count(),
        1
    );
}

#[test]
fn the_server_answers_an_early_reref_with_304_and_refuses_past_its_limit() {
    let mut config = wa_server_core::Config::default();
    config.max_rerefs = 3;
    let mut net = Net::with_config(config);
    let web = net.add_web(Config::default());
    let now = net.now;
    net.web(web).session.link(now).unwrap();
    net.drive();
    let first = qr_refs(&net.web_events(web));
    // Asked early (a client that does not wait for the expiry): the same ref, for what is
    // left of its time.
    net.advance(Duration::from_secs(5));
    net.send_as(web, r#"early.--1,,["admin","Conn","reref"]"#);
    let answer = net.web(web).received.last().cloned().unwrap();
    let (tag, json) = answer.split_once(',').unwrap();
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(tag, "early.--1");
    assert_eq!(json["status"], 304);
    assert_eq!(json["ref"].as_str(), Some(first[0].as_str()));
    assert_eq!(json["ttl"], 15_000);
    // The session, which asked nothing, reports a reply to a tag it does not know.
    let events = net.web_events(web);
    assert!(
        events.iter().any(|e| matches!(e, Event::Error(wa_session::SessionError::UnknownTag(t)) if t == "early.--1")),
        "{events:#?}"
    );
    // The early reref counted: of the session's own, two get new refs, the third 429.
    net.advance(Duration::from_secs(15 + 20 + 20));
    let events = net.web_events(web);
    assert_eq!(qr_refs(&events).len(), 2, "{events:#?}");
    assert!(
        matches!(
            events[..],
            [
                ..,
                Event::LinkFailed(LinkError::RerefRefused),
                Event::Disconnected {
                    reason: DisconnectReason::LinkFailed,
                    reconnect_in: None
                }
            ]
        ),
        "{events:#?}"
    );
    let received = &net.web(web).received;
    assert!(
        received.iter().any(|r| r.ends_with(r#"{"status":429}"#)),
        "{received:#?}"
    );
}

#[test]
fn restore_with_takeover_then_tokens_rotate() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let linked_credentials = net.web(alice).credentials.clone().unwrap();
    let state = net.web(alice).state.clone();
    assert!(!state.is_empty(), "the end-to-end state was handed out");
    // The user opens the client elsewhere with what was stored: a takeover.
    let restored = net.restore_web(
        Config::default(),
        pickle_key(),
        linked_credentials.clone(),
        &state,
    );
    let events = net.web_events(restored);
    assert!(net.web(restored).session.is_connected(), "{events:#?}");
    assert!(login_texts(&mut net, restored)[0].ends_with(r#","takeover"]"#));
    let Some(Event::Credentials(rotated)) =
        events.iter().find(|e| matches!(e, Event::Credentials(_)))
    else {
        panic!("{events:#?}")
    };
    assert_ne!(
        rotated.client_token, linked_credentials.client_token,
        "the Conn after the login rotates the tokens"
    );
    assert_ne!(rotated.server_token, linked_credentials.server_token);
    assert_eq!(
        (rotated.enc_key, rotated.device, &rotated.wid),
        (
            linked_credentials.enc_key,
            linked_credentials.device,
            &linked_credentials.wid
        )
    );
    assert!(events.iter().any(|e| matches!(e, Event::Connected { .. })));
    // The first connection of the device is replaced and stays down.
    let old = net.web_events(alice);
    assert_eq!(
        disconnects(&old),
        [(DisconnectReason::Replaced, None)],
        "{old:#?}"
    );
    // The restored session is the same end-to-end device: it reads what Bob sends.
    let bob = linked_web(&mut net, p[1]);
    let alice_user = net.user(p[0]);
    let now = net.now;
    net.web(bob)
        .session
        .send_text(now, &alice_user, "to the restored client")
        .unwrap();
    net.drive();
    assert_eq!(texts(&net.web_events(restored)), ["to the restored client"]);
    assert!(texts(&net.web_events(alice)).is_empty());
}

#[test]
fn tokens_one_rotation_old_are_challenged_and_two_rotations_old_are_unpaired() {
    let (mut net, p) = phones(&[ALICE]);
    let first = linked_web(&mut net, p[0]);
    let generation0 = net.web(first).credentials.clone().unwrap();
    let state = net.web(first).state.clone();
    net.power_off(first);
    // A login rotates the tokens (generation 1): generation 0 is one rotation old.
    let second = net.restore_web(Config::default(), pickle_key(), generation0.clone(), &state);
    assert!(net.web(second).session.is_connected());
    let generation1 = net.web(second).credentials.clone().unwrap();
    assert_ne!(generation1.server_token, generation0.server_token);
    net.power_off(second);

    // Restoring from generation 0: a challenge, answered with the frame keys, then connected.
    let third = net.restore_web(Config::default(), pickle_key(), generation0.clone(), &state);
    let events = net.web_events(third);
    assert!(net.web(third).session.is_connected(), "{events:#?}");
    let received = net.web(third).received.clone();
    assert!(
        received
            .iter()
            .any(|r| r.contains(r#"["Cmd",{"challenge""#) || r.contains(r#""type":"challenge""#)),
        "{received:#?}"
    );
    let sent = net.web(third).sent.clone();
    let answer = sent
        .iter()
        .find(|t| t.contains(r#"["admin","challenge""#))
        .expect("the challenge answered");
    assert!(answer.contains(&generation0.server_token), "{answer}");
    assert!(login_failures(&events).is_empty(), "{events:#?}");
    let generation2 = net.web(third).credentials.clone().unwrap();
    assert!(
        generation2.server_token != generation1.server_token
            && generation2.server_token != generation0.server_token
    );
    net.power_off(third);

    // Generation 0 is now two rotations old: unpaired, and worth forgetting.
    let fourth = net.restore_web(Config::default(), pickle_key(), generation0, &state);
    let events = net.web_events(fourth);
    assert_eq!(
        login_failures(&events),
        [(LoginError::Unpaired, true)],
        "{events:#?}"
    );
    assert_eq!(
        disconnects(&events),
        [(DisconnectReason::LoginFailed, None)]
    );
    assert!(net.web(fourth).session.credentials().is_none());
    assert!(
        !net.web(fourth)
            .sent
            .iter()
            .any(|t| t.contains(r#"["admin","challenge""#))
    );
    // The latest generation still logs in.
    net.power_off(fourth);
    let fifth = net.restore_web(Config::default(), pickle_key(), generation2, &state);
    assert!(
        net.web(fifth).session.is_connected(),
        "{:#?}",
        net.web_events(fifth)
    );
}

#[test]
fn unpaired_after_the_phone_unlinks_the_device() {
    let (mut net, p) = phones(&[ALICE]);
    let web = linked_web(&mut net, p[0]);
    let credentials = net.web(web).credentials.clone().unwrap();
    let state = net.web(web).state.clone();
    let now = net.now;
    let command = net
        .phone(p[0])
        .session
        .unlink(now, &credentials.client_id)
        .unwrap();
    net.drive();
    let phone = net.phone_events(p[0]);
    assert!(
        phone.iter().any(|e| matches!(e, PhoneSessionEvent::Answer { id, result: Ok(Answer::Done) } if *id == command)),
        "{phone:#?}"
    );
    let events = net.web_events(web);
    assert_eq!(
        disconnects(&events),
        [(DisconnectReason::LoggedOut, None)],
        "{events:#?}"
    );
    assert!(
        net.web(web).session.credentials().is_none(),
        "an unlinked client forgets its credentials"
    );
    assert!(linked_client_ids(&mut net, p[0]).is_empty());
    net.advance(Duration::from_secs(600));
    assert!(net.web_events(web).is_empty(), "no reconnect");
    // A later restore with what was stored: 401, forget them.
    let again = net.restore_web(Config::default(), pickle_key(), credentials, &state);
    let events = net.web_events(again);
    assert_eq!(
        login_failures(&events),
        [(LoginError::Unpaired, true)],
        "{events:#?}"
    );
    assert_eq!(
        disconnects(&events),
        [(DisconnectReason::LoginFailed, None)]
    );
    assert!(!net.web(again).session.is_connected());
}

#[test]
fn reconnects_after_the_socket_drops_and_gets_what_was_queued() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let bob = linked_web(&mut net, p[1]);
    let alice_user = net.user(p[0]);
    net.drop_web_socket(alice);
    let events = net.web_events(alice);
    let [(DisconnectReason::SocketClosed, Some(delay))] = disconnects(&events)[..] else {
        panic!("{events:#?}")
    };
    assert!(
        delay >= Duration::from_millis(500) && delay <= Duration::from_secs(1),
        "{delay:?}"
    );
    // Meanwhile Bob writes twice: the server keeps the copies for Alice's web client.
    for text in ["while you were away", "second one"] {
        let now = net.now;
        net.web(bob)
            .session
            .send_text(now, &alice_user, text)
            .unwrap();
        net.drive();
    }
    assert!(net.web_events(alice).is_empty());
    assert!(!net.web(alice).session.is_connected());
    // Just before the backoff ends nothing happens; then it reconnects in reconnect mode.
    net.advance(delay - Duration::from_millis(1));
    assert!(!net.web(alice).session.is_connected());
    assert_eq!(login_texts(&mut net, alice).len(), 0);
    net.advance(Duration::from_millis(1));
    assert!(net.web(alice).session.is_connected());
    let logins = login_texts(&mut net, alice);
    assert_eq!(logins.len(), 1);
    assert!(
        logins[0].ends_with(&format!(r#","reconnect","{alice_user}"]"#)),
        "{logins:?}"
    );
    let events = net.web_events(alice);
    assert!(events.iter().any(|e| matches!(e, Event::Connected { .. })));
    assert_eq!(
        texts(&events),
        ["while you were away", "second one"],
        "{events:#?}"
    );
    // Bob sees them delivered to every device.
    let acks = net.web_events(bob);
    assert!(
        acks.iter().any(|e| matches!(
            e,
            Event::Ack {
                level: AckLevel::Delivered,
                ..
            }
        )),
        "{acks:#?}"
    );
}

#[test]
fn messages_queued_for_an_offline_device_arrive_exactly_once() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let bob = linked_web(&mut net, p[1]);
    let alice_user = net.user(p[0]);
    // Alice's web client is closed: what it stored survives.
    let credentials = net.web(alice).credentials.clone().unwrap();
    net.power_off(alice);
    let state = net.web(alice).state.clone();
    let sent: Vec<String> = (0..3).map(|i| format!("queued {i}")).collect();
    for text in &sent {
        let now = net.now;
        net.web(bob)
            .session
            .send_text(now, &alice_user, text)
            .unwrap();
        net.drive();
    }
    let inbox = |net: &Net| {
        net.store()
            .counts()
            .into_iter()
            .find(|(t, _)| *t == wa_server_core::store::Table::Inbox)
            .map_or(0, |(_, n)| n)
    };
    assert_eq!(inbox(&net), 3, "kept for the offline device only");
    net.advance(Duration::from_secs(3600));
    // It comes back from storage: every message, once, in order.
    let restored = net.restore_web(Config::default(), pickle_key(), credentials, &state);
    let events = net.web_events(restored);
    assert_eq!(texts(&events), sent, "{events:#?}");
    assert_eq!(inbox(&net), 0, "the receipts retired them");
    // A reconnect does not bring them again, and neither does a later restore.
    net.drop_web_socket(restored);
    net.advance(Duration::from_secs(2));
    assert!(net.web(restored).session.is_connected());
    assert!(texts(&net.web_events(restored)).is_empty());
    let credentials = net.web(restored).credentials.clone().unwrap();
    let state = net.web(restored).state.clone();
    net.power_off(restored);
    let again = net.restore_web(Config::default(), pickle_key(), credentials, &state);
    let events = net.web_events(again);
    assert!(net.web(again).session.is_connected(), "{events:#?}");
    assert!(texts(&events).is_empty(), "{events:#?}");
}

#[test]
fn keepalive_is_answered_and_the_connection_never_goes_stale() {
    let (mut net, p) = phones(&[ALICE]);
    let web = linked_web(&mut net, p[0]);
    let start = net.now;
    let received_before = net.web(web).received.len();
    net.advance(Duration::from_secs(600));
    let pings = net.web(web).sent.iter().filter(|t| *t == "?,,").count();
    // One ping 10 to 30 s after the last frame received.
    assert!((20..=60).contains(&pings), "{pings} pings in 600 s");
    let answers: Vec<u64> = net.web(web).received[received_before..]
        .iter()
        .filter_map(|r| r.strip_prefix('!'))
        .map(|ms| ms.parse().unwrap())
        .collect();
    assert_eq!(answers.len(), pings, "every ping is answered");
    assert!(answers.windows(2).all(|w| w[0] < w[1]));
    assert!(answers[0] > start.as_millis() && *answers.last().unwrap() <= net.now.as_millis());
    let events = net.web_events(web);
    assert!(disconnects(&events).is_empty(), "{events:#?}");
    assert!(net.web(web).session.is_connected());
    assert_eq!(net.hub().online(), 2, "the server did not close it as idle");
}

#[test]
fn logout_unlinks_the_device() {
    let (mut net, p) = phones(&[ALICE]);
    let web = linked_web(&mut net, p[0]);
    let client_id = net.web(web).session.client_id().to_owned();
    assert_eq!(linked_client_ids(&mut net, p[0]), [client_id]);
    let now = net.now;
    net.web(web).session.logout(now);
    net.drive();
    assert_eq!(
        net.web(web).sent.last().map(String::as_str),
        Some(r#"goodbye,,["admin","Conn","disconnect"]"#)
    );
    let events = net.web_events(web);
    assert_eq!(
        disconnects(&events),
        [(DisconnectReason::LoggedOut, None)],
        "{events:#?}"
    );
    assert!(net.web(web).session.credentials().is_none());
    assert!(
        linked_client_ids(&mut net, p[0]).is_empty(),
        "the server unlinked it"
    );
    net.advance(Duration::from_secs(3600));
    assert!(net.web_events(web).is_empty(), "no reconnect");
    // It can link again afterwards, as a new device.
    net.link(web, p[0]);
    assert_eq!(linked_client_ids(&mut net, p[0]).len(), 1);
}

#[test]
fn the_sixth_linked_device_evicts_the_oldest() {
    let (mut net, p) = phones(&[ALICE]);
    let webs: Vec<usize> = (0..5).map(|_| linked_web(&mut net, p[0])).collect();
    let ids: Vec<String> = webs
        .iter()
        .map(|&w| net.web(w).session.client_id().to_owned())
        .collect();
    assert_eq!(linked_client_ids(&mut net, p[0]), ids);
    let sixth = linked_web(&mut net, p[0]);
    let first = net.web_events(webs[0]);
    assert_eq!(
        disconnects(&first),
        [(DisconnectReason::LoggedOut, None)],
        "{first:#?}"
    );
    for &w in &webs[1..] {
        let events = net.web_events(w);
        assert!(disconnects(&events).is_empty(), "{events:#?}");
        assert!(net.web(w).session.is_connected());
    }
    let mut expected = ids[1..].to_vec();
    expected.push(net.web(sixth).session.client_id().to_owned());
    assert_eq!(linked_client_ids(&mut net, p[0]), expected);
}

#[test]
fn presence_needs_a_chat_first() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let bob = linked_web(&mut net, p[1]);
    let alice_user = net.user(p[0]);
    let bob_user = net.user(p[1]);
    let now = net.now;
    let early = net
        .web(alice)
        .session
        .subscribe_presence(now, &bob_user)
        .unwrap();
    net.drive();
    let events = net.web_events(alice);
    assert!(
        matches!(
            reply(&events, early),
            Err(RequestError::Status {
                status: 403,
                reason: Some(_)
            })
        ),
        "{events:#?}"
    );
    // Bob going online is not shown to a stranger.
    let now = net.now;
    net.web(bob)
        .session
        .set_presence(now, PresenceState::Available, None)
        .unwrap();
    net.drive();
    let events = net.web_events(alice);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Presence { .. })),
        "{events:#?}"
    );
    // They talk; then the subscription is allowed and Bob's presence arrives.
    let now = net.now;
    net.web(alice)
        .session
        .send_text(now, &bob_user, "hi")
        .unwrap();
    net.drive();
    let now = net.now;
    net.web(bob)
        .session
        .send_text(now, &alice_user, "hello")
        .unwrap();
    net.drive();
    net.web_events(alice);
    net.web_events(bob);
    let now = net.now;
    let request = net
        .web(alice)
        .session
        .subscribe_presence(now, &bob_user)
        .unwrap();
    net.drive();
    let events = net.web_events(alice);
    assert!(reply(&events, request).is_ok(), "{events:#?}");
    let now = net.now;
    net.web(bob)
        .session
        .set_presence(now, PresenceState::Unavailable, None)
        .unwrap();
    net.drive();
    let now = net.now;
    net.web(bob)
        .session
        .set_presence(now, PresenceState::Available, None)
        .unwrap();
    net.drive();
    // Typing in the chat reaches the other side.
    let now = net.now;
    net.web(alice)
        .session
        .set_presence(now, PresenceState::Composing, Some(&bob_user))
        .unwrap();
    net.drive();
    let typing = net.web_events(bob);
    assert!(
        typing.iter().any(|e| matches!(e, Event::Presence { jid, group: None, kind, .. } if *jid == alice_user && kind == "composing")),
        "{typing:#?}"
    );
    let events = net.web_events(alice);
    let presences: Vec<(&wa_session::Jid, &str)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Presence {
                jid,
                group: None,
                kind,
                ..
            } => Some((jid, kind.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        presences,
        [(&bob_user, "unavailable"), (&bob_user, "available")],
        "{events:#?}"
    );
}

#[test]
fn media_conn_reply_says_where_and_how_much() {
    let (mut net, p) = phones(&[ALICE]);
    let web = linked_web(&mut net, p[0]);
    let now = net.now;
    let first = net.web(web).session.media_conn(now).unwrap();
    let second = net.web(web).session.media_conn(now).unwrap();
    net.drive();
    let events = net.web_events(web);
    let conn = |request| match reply(&events, request) {
        Ok(Reply::MediaConn(conn)) => conn,
        other => panic!("{other:?}"),
    };
    let (a, b) = (conn(first), conn(second));
    let defaults = wa_server_core::Config::default();
    assert_eq!(a.max_bytes, Some(defaults.limits.max_media_len));
    assert_eq!(a.hosts, [defaults.media_host]);
    assert_eq!(a.ttl, defaults.media_auth_ttl.as_secs());
    assert!(!a.auth.is_empty());
    assert_ne!(a.auth, b.auth, "every request gets its own upload auth");
}

#[test]
fn an_end_to_end_session_still_offers_the_legacy_queries() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let web = linked_web(&mut net, p[0]);
    let bob_user = net.user(p[1]);
    let now = net.now;
    let chats = net.web(web).session.query_chats(now).unwrap();
    let contacts = net.web(web).session.query_contacts(now).unwrap();
    let messages = net
        .web(web)
        .session
        .query_messages(now, &bob_user, 20, None)
        .unwrap();
    net.drive();
    let events = net.web_events(web);
    // This server keeps no lists and no history: empty answers, not errors.
    assert_eq!(reply(&events, chats), Ok(Reply::Chats(Vec::new())));
    assert_eq!(reply(&events, contacts), Ok(Reply::Contacts(Vec::new())));
    assert_eq!(reply(&events, messages), Ok(Reply::Messages(Vec::new())));
}

#[test]
fn sending_to_a_number_without_an_account_is_not_sent() {
    let (mut net, p) = phones(&[ALICE]);
    let web = linked_web(&mut net, p[0]);
    let nobody: wa_session::Jid = "15550001111@c.us".parse().unwrap();
    let now = net.now;
    let (request, _) = net
        .web(web)
        .session
        .send_text(now, &nobody, "anyone there?")
        .unwrap();
    net.drive();
    let events = net.web_events(web);
    assert!(
        matches!(reply(&events, request), Err(RequestError::NotSent(_))),
        "{events:#?}"
    );
    assert!(net.web(web).session.is_connected());
}

#[test]
fn an_outdated_client_version_is_told_to_update() {
    let (mut net, _) = phones(&[ALICE]);
    let mut config = Config::default();
    config.version = [0, 2, 9];
    let web = net.add_web(config);
    let now = net.now;
    net.web(web).session.link(now).unwrap();
    net.drive();
    let events = net.web_events(web);
    assert!(
        matches!(
            events[..],
            [
                Event::LinkFailed(LinkError::VersionRejected),
                Event::Disconnected {
                    reason: DisconnectReason::VersionRejected,
                    reconnect_in: None
                }
            ]
        ),
        "{events:#?}"
    );
    net.advance(Duration::from_secs(3600));
    assert!(net.web_events(web).is_empty());
}

#[test]
fn a_message_sent_just_before_logging_out_is_still_delivered() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let bob = linked_web(&mut net, p[1]);
    let bob_user = net.user(p[1]);
    let now = net.now;
    net.web(alice)
        .session
        .send_text(now, &bob_user, "first")
        .unwrap();
    net.drive();
    assert_eq!(texts(&net.web_events(bob)), ["first"]);
    // The relay and the goodbye leave together; the socket closes before the server has
    // stored the message: it is delivered all the same.
    let now = net.now;
    net.web(alice)
        .session
        .send_text(now, &bob_user, "last words")
        .unwrap();
    net.web(alice).session.logout(now);
    net.drive();
    assert_eq!(texts(&net.web_events(bob)), ["last words"]);
    assert!(linked_client_ids(&mut net, p[0]).is_empty());
}

#[test]
fn a_replaced_qr_code_no_longer_links() {
    let (mut net, p) = phones(&[ALICE]);
    let web = net.add_web(Config::default());
    let now = net.now;
    net.web(web).session.link(now).unwrap();
    net.drive();
    let old = net
        .web_events(web)
        .into_iter()
        .find_map(|e| match e {
            Event::Qr { text, .. } => Some(text),
            _ => None,
        })
        .unwrap();
    net.advance(Duration::from_secs(20));
    let current = net
        .web_events(web)
        .into_iter()
        .find_map(|e| match e {
            Event::Qr { text, .. } => Some(text),
            _ => None,
        })
        .expect("a new QR code");
    assert_ne!(current, old);
    // The phone scans the old one: refused, and the web client keeps waiting.
    let now = net.now;
    let command = net.phone(p[0]).session.link(now, &old).unwrap();
    net.drive();
    let events = net.phone_events(p[0]);
    assert!(
        events.iter().any(|e| matches!(e,
            PhoneSessionEvent::Answer { id, result: Err(wa_phone::PhoneError::Status { status: 404, .. }) } if *id == command)),
        "{events:#?}"
    );
    assert!(net.web_events(web).is_empty());
    assert!(!net.web(web).session.is_connected());
    assert!(linked_client_ids(&mut net, p[0]).is_empty());
    // The current one links.
    let now = net.now;
    net.phone(p[0]).session.link(now, &current).unwrap();
    net.drive();
    assert!(net.web(web).session.is_connected());
    assert_eq!(
        linked_client_ids(&mut net, p[0]),
        [net.web(web).session.client_id().to_owned()]
    );
}

#[test]
fn tokens_unused_too_long_expire_and_the_device_is_unlinked() {
    let mut config = wa_server_core::Config::default();
    config.token_idle_ttl = Duration::from_secs(3600);
    let mut net = Net::with_config(config);
    let phone = net.add_phone(ALICE, "Alice");
    net.register(phone);
    let web = linked_web(&mut net, phone);
    let credentials = net.web(web).credentials.clone().unwrap();
    let state = net.web(web).state.clone();
    net.power_off(web);
    // Within the lifetime a restore works (and counts as use).
    net.advance(Duration::from_secs(3000));
    let back = net.restore_web(Config::default(), pickle_key(), credentials, &state);
    assert!(net.web(back).session.is_connected());
    let credentials = net.web(back).credentials.clone().unwrap();
    let state = net.web(back).state.clone();
    net.power_off(back);
    // Past it: 419, the credentials are void, and the phone no longer lists the device.
    net.advance(Duration::from_secs(3601));
    let late = net.restore_web(Config::default(), pickle_key(), credentials, &state);
    let events = net.web_events(late);
    assert_eq!(
        login_failures(&events),
        [(LoginError::Expired, true)],
        "{events:#?}"
    );
    assert_eq!(
        disconnects(&events),
        [(DisconnectReason::LoginFailed, None)]
    );
    assert!(linked_client_ids(&mut net, phone).is_empty());
}

#[test]
fn a_message_sent_as_the_socket_drops_goes_out_after_the_reconnect_once() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let bob = linked_web(&mut net, p[1]);
    let bob_user = net.user(p[1]);
    let now = net.now;
    net.web(alice)
        .session
        .send_text(now, &bob_user, "warm up")
        .unwrap();
    net.drive();
    net.web_events(alice);
    assert_eq!(texts(&net.web_events(bob)), ["warm up"]);
    // Sent, and the socket fails before the frame leaves.
    let now = net.now;
    let (request, id) = net
        .web(alice)
        .session
        .send_text(now, &bob_user, "racing")
        .unwrap();
    net.drop_web_socket(alice);
    let events = net.web_events(alice);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Reply { id, .. } if *id == request)),
        "the send is not given up: {events:#?}"
    );
    assert!(texts(&net.web_events(bob)).is_empty());
    net.advance(Duration::from_secs(2));
    let events = net.web_events(alice);
    assert!(
        matches!(reply(&events, request), Ok(Reply::MessageSent { id: sent }) if sent == id),
        "{events:#?}"
    );
    assert_eq!(texts(&net.web_events(bob)), ["racing"]);
    // Nothing comes twice, even after another reconnect.
    net.drop_web_socket(bob);
    net.advance(Duration::from_secs(2));
    assert!(net.web(bob).session.is_connected());
    assert!(texts(&net.web_events(bob)).is_empty());
}

#[test]
fn the_phone_going_away_is_reported() {
    let (mut net, p) = phones(&[ALICE]);
    let web = linked_web(&mut net, p[0]);
    net.drop_phone_socket(p[0]);
    let events = net.web_events(web);
    assert!(
        matches!(events[..], [Event::PhoneReachable(false)]),
        "{events:#?}"
    );
    assert!(net.web(web).session.is_connected(), "the web client stays");
    // The phone comes back after its backoff; asked, the server says so.
    net.advance(Duration::from_secs(120));
    assert!(net.phone(p[0]).session.is_ready());
    let now = net.now;
    let request = net
        .web(web)
        .session
        .send_json(now, serde_json::json!(["admin", "test"]))
        .unwrap();
    net.drive();
    let events = net.web_events(web);
    assert_eq!(
        reply(&events, request),
        Ok(Reply::Json(serde_json::json!({"value": ["Pong", true]})))
    );
}

#[test]
fn linking_again_after_a_logout_makes_a_new_device_everyone_can_read() {
    let (mut net, p) = phones(&[ALICE, BOB]);
    let alice = linked_web(&mut net, p[0]);
    let bob = linked_web(&mut net, p[1]);
    let (alice_user, bob_user) = (net.user(p[0]), net.user(p[1]));
    // Alice's web client writes to Bob; only Bob's web client answers (his phone never writes
    // to that device).
    let now = net.now;
    net.web(alice)
        .session
        .send_text(now, &bob_user, "one")
        .unwrap();
    net.drive();
    let now = net.now;
    net.web(bob)
        .session
        .send_text(now, &alice_user, "two")
        .unwrap();
    net.drive();
    let before = net.web(alice).session.identity_keys().unwrap();
    let first_device = net.web(alice).credentials.as_ref().unwrap().device;
    for (phone, web) in [(p[0], alice), (p[1], bob)] {
        net.web_events(web);
        net.phone_events(phone);
    }
    // The same client logs out and links again: a new device, with keys of its own.
    let now = net.now;
    net.web(alice).session.logout(now);
    net.drive();
    net.link(alice, p[0]);
    net.web_events(alice);
    let device = net.web(alice).session.credentials().unwrap().device;
    assert_ne!(device, first_device);
    assert_ne!(
        net.web(alice).session.identity_keys().unwrap(),
        before,
        "new identity keys"
    );
    // Everything of Bob's reads what it sends, and it reads Bob.
    let now = net.now;
    net.web(alice)
        .session
        .send_text(now, &bob_user, "from the new device")
        .unwrap();
    net.drive();
    assert_eq!(texts(&net.web_events(bob)), ["from the new device"]);
    let phone = net.phone_events(p[1]);
    assert!(
        !phone
            .iter()
            .any(|e| matches!(e, PhoneSessionEvent::Undecryptable { .. })),
        "{phone:#?}"
    );
    let phone_texts: Vec<String> = phone
        .iter()
        .filter_map(|e| match e {
            PhoneSessionEvent::Message(m) => m
                .envelope
                .message
                .as_ref()
                .and_then(|m| m.conversation.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(phone_texts, ["from the new device"]);
    let now = net.now;
    net.web(bob)
        .session
        .send_text(now, &alice_user, "to the new device")
        .unwrap();
    net.drive();
    assert_eq!(texts(&net.web_events(alice)), ["to the new device"]);
}
