//! Mirror mode with the real drivers: a legacy web client (no end-to-end layer) linked through
//! its phone gets its chat list, contacts and latest messages from the phone's store, sends
//! and receives through the phone, and keeps working after the phone restarts (the phone keeps
//! its mirror clients in its store). Nothing anyone sent is readable in any file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use support::{Net, WAIT, assert_no_plaintext, message, phone_message, wait};
use wa_client::Event;
use wa_client::phone::{Phone, PhoneEvent};
use wa_phone::PhoneSessionEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_client_mirrors_its_phone_across_a_phone_restart() {
    let mut net = Net::start(|_| {}).await;
    let alice_config = net.phone_config("15550000031", "Alice");
    let (phone_a, mut phone_a_events) = net.phone(alice_config).await;
    let (phone_b, mut phone_b_events) = net.phone(net.phone_config("15550000032", "Bob")).await;
    let (user_a, user_b) = (phone_a.user().clone(), phone_b.user().clone());

    // Alice's phone has history before the mirror client exists.
    phone_b
        .send_text(&user_a, "zebra-before-the-mirror")
        .await
        .unwrap();
    phone_message(&mut phone_a_events, "zebra-before-the-mirror").await;

    // A legacy client: a three-part QR code; the phone makes its keys and serves it.
    let mut config = net.client_config(&net.store("mirror-a"));
    config.session.end_to_end = false;
    config.session.delivery_receipts = false;
    let (client, mut events) = wa_client::Client::start(config).await.unwrap();
    let qr = wait(&mut events, "QR", |e| match e {
        Event::Session(wa_session::Event::Qr { text, .. }) => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(qr.split(',').count(), 3, "a legacy QR code: {qr}");
    tokio::time::timeout(WAIT, phone_a.link(&qr))
        .await
        .unwrap()
        .unwrap();
    wait(
        &mut phone_a_events,
        "mirror clients persisted",
        |e| match e {
            PhoneEvent::Session(PhoneSessionEvent::MirrorsChanged(m)) => {
                (m.len() == 1).then_some(())
            }
            _ => None,
        },
    )
    .await;
    // At login the phone's store sends the lists and the latest messages.
    let chats = wait(&mut events, "chat list", |e| match e {
        Event::Session(wa_session::Event::Chats(chats)) => Some(chats.clone()),
        _ => None,
    })
    .await;
    assert!(chats.iter().any(|c| c.jid == user_b), "{chats:?}");
    message(&mut events, "zebra-before-the-mirror").await;

    // It sends through the phone (end to end from there) and receives what Bob sends.
    client
        .send_text(&user_b, "zebra-from-the-mirror")
        .await
        .unwrap();
    phone_message(&mut phone_b_events, "zebra-from-the-mirror").await;
    phone_b
        .send_text(&user_a, "zebra-live-to-alice")
        .await
        .unwrap();
    message(&mut events, "zebra-live-to-alice").await;

    // The phone restarts from its store: its mirror client still gets Alice's messages.
    phone_a.shutdown().await;
    let (phone_a, _phone_a_events) = Phone::login(net.phone_config("15550000031", "Alice"))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, phone_a.ready())
        .await
        .unwrap()
        .unwrap();
    phone_b
        .send_text(&user_a, "zebra-after-the-restart")
        .await
        .unwrap();
    message(&mut events, "zebra-after-the-restart").await;

    // The phone's store holds the whole conversation, what its mirror client sent included.
    let said: Vec<_> = phone_a
        .history(&user_b, 10)
        .await
        .unwrap()
        .iter()
        .filter_map(support::text)
        .collect();
    assert!(
        said.iter().any(|t| t == "zebra-from-the-mirror"),
        "{said:?}"
    );
    assert!(
        said.iter().any(|t| t == "zebra-after-the-restart"),
        "{said:?}"
    );

    client.shutdown().await;
    phone_a.shutdown().await;
    phone_b.shutdown().await;
    let dir = net.dir.path().to_owned();
    net.server.shutdown().await;
    assert_no_plaintext(
        &dir,
        &[
            "zebra-before-the-mirror",
            "zebra-from-the-mirror",
            "zebra-live-to-alice",
            "zebra-after-the-restart",
        ],
    );
}
