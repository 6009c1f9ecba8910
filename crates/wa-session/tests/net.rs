//! The session against the real server core and real phones, in memory on a virtual clock
//! ([`wa_test_support::Net`]): linking, end-to-end messages, ticks, groups.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

use wa_phone::PhoneSessionEvent;
use wa_session::{AckLevel, Config, Event, Reply};
use wa_test_support::Net;

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

fn phone_texts(events: &[PhoneSessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            PhoneSessionEvent::Message(m) => m
                .envelope
                .message
                .as_ref()
                .and_then(|m| m.conversation.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn two_accounts_exchange_end_to_end_messages_with_ticks() {
    let mut net = Net::new();
    let alice_phone = net.add_phone("15551234567", "Alice");
    let bob_phone = net.add_phone("15559876543", "Bob");
    net.register(alice_phone);
    net.register(bob_phone);
    let alice = net.add_web(Config::default());
    let bob = net.add_web(Config::default());
    net.link(alice, alice_phone);
    net.link(bob, bob_phone);
    net.web_events(alice);
    net.web_events(bob);
    net.phone_events(alice_phone);
    net.phone_events(bob_phone);

    let bob_user = net.user(bob_phone);
    let now = net.now;
    let (request, id) = net
        .web(alice)
        .session
        .send_text(now, &bob_user, "hello bob")
        .unwrap();
    net.drive();
    let events = net.web_events(alice);
    assert!(
        events.iter().any(|e| matches!(e, Event::Reply { id: r, result: Ok(Reply::MessageSent { .. }) } if *r == request)),
        "{events:#?}"
    );
    let acks: Vec<AckLevel> = events
        .iter()
        .filter_map(|e| match e {
            Event::Ack { ids, level, .. } if ids.contains(&id) => Some(*level),
            _ => None,
        })
        .collect();
    assert!(
        acks.contains(&AckLevel::Sent) && acks.contains(&AckLevel::Delivered),
        "{acks:?}"
    );
    assert_eq!(texts(&net.web_events(bob)), ["hello bob"]);
    assert_eq!(phone_texts(&net.phone_events(bob_phone)), ["hello bob"]);
    // Alice's own phone gets her copy.
    let own = net.phone_events(alice_phone);
    assert_eq!(phone_texts(&own), ["hello bob"], "{own:#?}");
}

/// A world of `n` accounts, each a phone and a linked web client, all logged in.
fn world(n: usize) -> (Net, Vec<(usize, usize)>) {
    let mut net = Net::new();
    let mut people = Vec::new();
    for i in 0..n {
        let phone = net.add_phone(&format!("1555000{i:04}"), &format!("P{i}"));
        net.register(phone);
        let web = net.add_web(Config::default());
        net.link(web, phone);
        people.push((phone, web));
    }
    for &(phone, web) in &people {
        net.web_events(web);
        net.phone_events(phone);
    }
    (net, people)
}

fn reply_json(events: &[Event], request: wa_session::RequestId) -> serde_json::Value {
    events
        .iter()
        .find_map(|e| match e {
            Event::Reply { id, result } if *id == request => Some(match result {
                Ok(Reply::Json(v)) => v.clone(),
                other => panic!("{other:?}"),
            }),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply: {events:#?}"))
}

#[test]
fn reads_give_blue_ticks_and_the_server_keeps_no_text() {
    let (mut net, people) = world(2);
    let (a_phone, a_web) = people[0];
    let (b_phone, b_web) = people[1];
    let b_user = net.user(b_phone);
    let a_user = net.user(a_phone);
    let now = net.now;
    let (_, id) = net
        .web(a_web)
        .session
        .send_text(now, &b_user, "a secret 7f3a1c")
        .unwrap();
    net.drive();
    net.web_events(a_web);
    net.web_events(b_web);
    // Bob's web client reads it: Alice sees ack 3 (from = sender, to = chat).
    let now = net.now;
    net.web(b_web)
        .session
        .mark_read(now, &a_user, &id, None)
        .unwrap();
    net.drive();
    let events = net.web_events(a_web);
    let read = events.iter().find_map(|e| match e {
        Event::Ack {
            ids,
            level: AckLevel::Read,
            from,
            to,
            ..
        } if ids.contains(&id) => Some((from.clone(), to.clone())),
        _ => None,
    });
    assert_eq!(
        read,
        Some((Some(a_user.clone()), Some(b_user.clone()))),
        "{events:#?}"
    );
    // Every device has it: nothing of the text, and no ciphertext, is left on the server.
    let dump = net.store().dump();
    assert!(
        !dump.windows(15).any(|w| w == b"a secret 7f3a1c"),
        "the text is on the server"
    );
    let inbox = net
        .store()
        .counts()
        .into_iter()
        .find(|(t, _)| *t == wa_server_core::store::Table::Inbox)
        .unwrap();
    assert_eq!(inbox.1, 0, "every device acknowledged");
    let _ = (a_phone, b_phone);
}

#[test]
fn a_read_from_someone_who_never_got_the_message_counts_for_nothing() {
    let (mut net, people) = world(3);
    let (a_phone, a_web) = people[0];
    let (b_phone, _) = people[1];
    let (_, c_web) = people[2];
    let b_user = net.user(b_phone);
    let a_user = net.user(a_phone);
    let now = net.now;
    let (_, id) = net
        .web(a_web)
        .session
        .send_text(now, &b_user, "for bob only")
        .unwrap();
    net.drive();
    net.web_events(a_web);
    // Carol claims to have read it.
    let now = net.now;
    net.web(c_web)
        .session
        .mark_read(now, &a_user, &id, None)
        .unwrap();
    net.drive();
    let events = net.web_events(a_web);
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Ack {
                level: AckLevel::Read,
                ..
            }
        )),
        "{events:#?}"
    );
}

#[test]
fn a_group_of_four_and_a_removed_member_reads_nothing_after() {
    let (mut net, people) = world(4);
    let (_, a_web) = people[0];
    let members: Vec<_> = people[1..].iter().map(|&(p, _)| net.user(p)).collect();
    let now = net.now;
    let request = net
        .web(a_web)
        .session
        .group_create(now, "Friends", &members)
        .unwrap();
    net.drive();
    let reply = reply_json(&net.web_events(a_web), request);
    let gid: wa_session::Jid = reply["gid"].as_str().unwrap().parse().unwrap();
    for &(phone, web) in &people {
        net.web_events(web);
        net.phone_events(phone);
    }
    let now = net.now;
    net.web(a_web)
        .session
        .send_text(now, &gid, "hello group")
        .unwrap();
    net.drive();
    for &(phone, web) in &people[1..] {
        assert_eq!(texts(&net.web_events(web)), ["hello group"]);
        assert_eq!(phone_texts(&net.phone_events(phone)), ["hello group"]);
    }
    // The last member is removed; the next message is not readable by them.
    let removed = members[2].clone();
    let now = net.now;
    let r = net
        .web(a_web)
        .session
        .group_participants(
            now,
            &gid,
            wa_session::GroupOp::Remove,
            std::slice::from_ref(&removed),
        )
        .unwrap();
    net.drive();
    assert_eq!(reply_json(&net.web_events(a_web), r)["status"], 200);
    for &(phone, web) in &people {
        net.web_events(web);
        net.phone_events(phone);
    }
    let now = net.now;
    net.web(a_web)
        .session
        .send_text(now, &gid, "after the removal")
        .unwrap();
    net.drive();
    for &(phone, web) in &people[1..3] {
        assert_eq!(texts(&net.web_events(web)), ["after the removal"]);
        assert_eq!(phone_texts(&net.phone_events(phone)), ["after the removal"]);
    }
    let (r_phone, r_web) = people[3];
    assert!(texts(&net.web_events(r_web)).is_empty());
    assert!(phone_texts(&net.phone_events(r_phone)).is_empty());
    // Even handed the ciphertext a remaining member got, the removed member cannot read it.
    let copy = net
        .deliveries()
        .into_iter()
        .rev()
        .find(|(device, m)| m.group.is_some() && wa_wire::ids::user_of(device) == members[0])
        .map(|(_, m)| m)
        .unwrap();
    net.inject(r_web, copy);
    let events = net.web_events(r_web);
    assert!(texts(&events).is_empty(), "{events:#?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Error(wa_session::SessionError::Undecryptable { .. })
        )),
        "{events:#?}"
    );
}

#[test]
fn tampered_replayed_and_truncated_ciphertext_are_errors_never_messages() {
    let (mut net, people) = world(2);
    let (_, a_web) = people[0];
    let (b_phone, b_web) = people[1];
    let b_user = net.user(b_phone);
    let now = net.now;
    net.web(a_web)
        .session
        .send_text(now, &b_user, "original")
        .unwrap();
    net.drive();
    assert_eq!(texts(&net.web_events(b_web)), ["original"]);
    let copy = net
        .deliveries()
        .into_iter()
        .find(|(device, _)| {
            wa_wire::ids::user_of(device) == b_user && wa_wire::ids::device_of(device) != 0
        })
        .map(|(_, m)| m)
        .unwrap();
    // Replayed: the same ciphertext again.
    let mut variants = vec![copy.clone()];
    // Tampered: one bit of the ciphertext flipped, at a few places.
    let body = copy.olm.as_ref().unwrap().body.clone();
    for at in [0, body.len() / 2, body.len() - 1] {
        let mut tampered = copy.clone();
        tampered.id = format!("3EB0TAMPER{at:06}");
        tampered.olm.as_mut().unwrap().body[at] ^= 0x04;
        variants.push(tampered);
    }
    // Truncated.
    let mut truncated = copy.clone();
    truncated.id = "3EB0TRUNCATED".into();
    truncated
        .olm
        .as_mut()
        .unwrap()
        .body
        .truncate(body.len() / 3);
    variants.push(truncated);
    // From a device nobody vouched for.
    let mut forged = copy.clone();
    forged.id = "3EB0FORGED".into();
    forged.from = wa_wire::ids::device_jid(&net.user(people[0].0), 77);
    variants.push(forged);
    let n = variants.len();
    for variant in variants {
        net.inject(b_web, variant);
    }
    let events = net.web_events(b_web);
    assert!(texts(&events).is_empty(), "{events:#?}");
    let errors = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Error(wa_session::SessionError::Undecryptable { .. })
            )
        })
        .count();
    assert_eq!(errors, n, "{events:#?}");
}

#[test]
fn a_new_phone_for_a_number_is_an_identity_change_everyone_sees() {
    let (mut net, people) = world(2);
    let (a_phone, a_web) = people[0];
    let (b_phone, b_web) = people[1];
    let a_user = net.user(a_phone);
    let b_user = net.user(b_phone);
    // They have talked, so each knows the other's identity.
    let now = net.now;
    net.web(a_web)
        .session
        .send_text(now, &b_user, "before")
        .unwrap();
    net.drive();
    let before = net.web(a_web).session.security_code(&b_user).unwrap();
    assert_eq!(before.digits().len(), 60);
    assert_eq!(
        Some(before.digits().to_owned()),
        net.web(b_web)
            .session
            .security_code(&a_user)
            .map(|c| c.digits().to_owned())
    );
    for &(phone, web) in &people {
        net.web_events(web);
        net.phone_events(phone);
    }
    // Bob gets a new phone (new identity keys) and registers the number again.
    let new_phone = net.add_phone("15550000001", "Bob again");
    net.register(new_phone);
    // His old linked client is unlinked, his old phone replaced.
    let old = net.web_events(b_web);
    assert!(
        old.iter().any(|e| matches!(
            e,
            Event::Disconnected {
                reason: wa_session::DisconnectReason::LoggedOut,
                ..
            }
        )),
        "{old:#?}"
    );
    assert!(
        net.phone_events(b_phone)
            .iter()
            .any(|e| matches!(e, PhoneSessionEvent::Replaced))
    );
    // Alice hears of it at once, and her next message goes to the new identity.
    let events = net.web_events(a_web);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::IdentityChanged { jid } if *jid == b_user)),
        "{events:#?}"
    );
    let now = net.now;
    net.web(a_web)
        .session
        .send_text(now, &b_user, "after")
        .unwrap();
    net.drive();
    assert_eq!(phone_texts(&net.phone_events(new_phone)), ["after"]);
    let after = net.web(a_web).session.security_code(&b_user).unwrap();
    assert_ne!(after.digits(), before.digits());
}

/// The attacks of the end-to-end issue on accounts, each on its own world of two accounts.
fn victim() -> (Net, Vec<(usize, usize)>, String) {
    let (net, people) = world(2);
    let number = net.user(people[0].0).user().unwrap().to_owned();
    (net, people, number)
}

fn refused_with(events: &[PhoneSessionEvent], status: u16) -> bool {
    events.iter().any(|e| {
        matches!(e, PhoneSessionEvent::Failed(wa_phone::PhoneError::Status { status: s, .. }) if *s == status)
    })
}

#[test]
fn a_phone_that_says_hello_for_someone_elses_number_cannot_log_in() {
    let (mut net, people, number) = victim();
    let (a_phone, a_web) = people[0];
    let thief = net.add_phone(&number, "Thief");
    let now = net.now;
    net.phone(thief).session.login(now).unwrap();
    net.drive();
    let events = net.phone_events(thief);
    assert!(
        refused_with(&events, 401),
        "it cannot sign the challenge: {events:#?}"
    );
    assert!(!net.phone(thief).session.is_ready());
    // The owner's phone and web client noticed nothing.
    assert!(net.phone(a_phone).session.is_ready());
    assert!(net.web(a_web).session.is_connected());
}

#[test]
fn a_wrong_code_takes_nothing_and_the_owner_still_logs_in() {
    let (mut net, people, number) = victim();
    let (a_phone, _) = people[0];
    let guesser = net.add_phone(&number, "Guesser");
    let now = net.now;
    net.phone(guesser).session.register(now).unwrap();
    net.drive();
    net.phone(guesser).session.verify(now, "000000").unwrap();
    net.drive();
    let events = net.phone_events(guesser);
    assert!(refused_with(&events, 401), "{events:#?}");
    // No lockout: the owner's phone logs in again with its own key.
    net.drop_phone_socket(a_phone);
    net.advance(std::time::Duration::from_secs(120));
    assert!(
        net.phone(a_phone).session.is_ready(),
        "the owner's phone logs in again"
    );
}

/// A web client of another account showing the victim's client id in its QR code.
fn impostor_qr(net: &mut Net, victim_web: usize) -> (usize, String) {
    let victim_id = net.web(victim_web).session.client_id().to_owned();
    let impostor = net.add_session(
        wa_session::Session::new(Config::default(), [5; 32], net.now)
            .with_identity(&victim_id, [6; 32]),
    );
    let now = net.now;
    net.web(impostor).session.link(now).unwrap();
    net.drive();
    let qr = net
        .web_events(impostor)
        .into_iter()
        .find_map(|e| match e {
            Event::Qr { text, .. } => Some(text),
            _ => None,
        })
        .unwrap();
    (impostor, qr)
}

#[test]
fn a_client_id_belongs_to_one_device_and_cannot_be_taken_over() {
    let (mut net, people, _) = victim();
    let ((_, a_web), (b_phone, _)) = (people[0], people[1]);
    let (impostor, qr) = impostor_qr(&mut net, a_web);
    net.phone_events(b_phone);
    let now = net.now;
    let command = net.phone(b_phone).session.link(now, &qr).unwrap();
    net.drive();
    let events = net.phone_events(b_phone);
    assert!(
        events.iter().any(|e| matches!(e,
            PhoneSessionEvent::Answer { id, result: Err(wa_phone::PhoneError::Status { status: 409, .. }) } if *id == command)),
        "{events:#?}"
    );
    assert!(
        net.web(a_web).session.is_connected(),
        "the victim stays connected"
    );
    let victim_events = net.web_events(a_web);
    assert!(
        !victim_events
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. })),
        "the victim was not told `replaced`: {victim_events:#?}"
    );
    assert!(!net.web(impostor).session.is_connected());
}

#[test]
fn only_the_accounts_logged_in_phone_approves_qr_codes() {
    let (mut net, people, number) = victim();
    let (_, a_web) = people[0];
    let (_, qr) = impostor_qr(&mut net, a_web);
    // A phone that is not logged in (it could not sign) approves nothing.
    let thief = net.add_phone(&number, "Thief");
    let now = net.now;
    net.phone(thief).session.login(now).unwrap();
    net.drive();
    assert!(net.phone(thief).session.link(now, &qr).is_err());
}
