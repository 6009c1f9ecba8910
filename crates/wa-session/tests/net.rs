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
            Event::Message { info, .. } => info.message.as_ref().and_then(|m| m.conversation.clone()),
            _ => None,
        })
        .collect()
}

fn phone_texts(events: &[PhoneSessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            PhoneSessionEvent::Message(m) => m.envelope.message.as_ref().and_then(|m| m.conversation.clone()),
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
    let (request, id) = net.web(alice).session.send_text(now, &bob_user, "hello bob").unwrap();
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
    assert!(acks.contains(&AckLevel::Sent) && acks.contains(&AckLevel::Delivered), "{acks:?}");
    assert_eq!(texts(&net.web_events(bob)), ["hello bob"]);
    assert_eq!(phone_texts(&net.phone_events(bob_phone)), ["hello bob"]);
    // Alice's own phone gets her copy.
    let own = net.phone_events(alice_phone);
    assert_eq!(phone_texts(&own), ["hello bob"], "{own:#?}");
}
