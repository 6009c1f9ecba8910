//! Two accounts (a phone and a web client each) exchange messages with their ticks; a group of
//! three; a consumer that does not poll loses nothing; and nothing anyone sent is in clear in
//! any file of the server or of the stores.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Instant;

use support::{Net, ack, assert_no_plaintext, message, phone_message, text, wait};
use wa_client::{ClientConfig, Event};
use wa_proto::web_message_info::Status;
use wa_session::AckLevel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_exchange_messages_with_ticks_and_keep_nothing_in_clear() {
    let started = Instant::now();
    let mut net = Net::start(|_| {}).await;
    let (phone_a, mut phone_a_events) = net.phone(net.phone_config("15550000001", "Alice")).await;
    let (phone_b, mut phone_b_events) = net.phone(net.phone_config("15550000002", "Bob")).await;
    let (alice, user_b) = (phone_a.user().clone(), phone_b.user().clone());
    let (wa, mut wa_events, _) = net.link(&phone_a, "web-a").await;
    let (wb, mut wb_events, _) = net.link(&phone_b, "web-b").await;

    let texts = [
        "zebra-hello-from-alice-web",
        "zebra-reply-from-bob-web",
        "zebra-from-bob-phone",
    ];
    // One tick: the server stored it.
    let id = wa.send_text(&user_b, texts[0]).await.unwrap();
    let got = message(&mut wb_events, texts[0]).await;
    assert_eq!(got.key.id.as_deref(), Some(id.as_str()));
    assert_eq!(got.key.from_me, Some(false));
    assert_eq!(got.push_name.as_deref(), Some("Alice"));
    // Bob's phone has it too.
    phone_message(&mut phone_b_events, texts[0]).await;
    // Two ticks once Bob's devices have it, three once Bob read it.
    ack(&mut wa_events, &id, AckLevel::Delivered).await;
    wb.mark_read(&alice, &id, None).await.unwrap();
    ack(&mut wa_events, &id, AckLevel::Read).await;

    wb.send_text(&alice, texts[1]).await.unwrap();
    message(&mut wa_events, texts[1]).await;
    let id = phone_b.send_text(&alice, texts[2]).await.unwrap();
    message(&mut wa_events, texts[2]).await;
    // Bob's phone has its tick from the answer to its relay, and Bob's web client from the ack
    // 1 the server pushes to the account's other devices; then both see it delivered.
    assert_eq!(support::phone_ack(&mut phone_b_events, &id).await, 1);
    ack(&mut wb_events, &id, AckLevel::Sent).await;
    assert_eq!(support::phone_ack(&mut phone_b_events, &id).await, 2);
    // Alice's phone saw the whole conversation: its own web client's message (from me) too.
    phone_message(&mut phone_a_events, texts[1]).await;

    // Alice's local store: the conversation in order, her message read.
    let history = wa.history(&user_b, 10).await.unwrap();
    let said: Vec<_> = history.iter().filter_map(text).collect();
    assert_eq!(said, texts);
    assert_eq!(history[0].key.from_me, Some(true));
    assert_eq!(history[0].status, Some(Status::Read as i32));
    assert_eq!(history[1].key.from_me, Some(false));
    let chats = wa.chats().await.unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].jid, user_b);
    assert_eq!(chats[0].unread, 2);
    let contacts = wa.contacts().await.unwrap();
    assert!(
        contacts
            .iter()
            .any(|c| c.jid == user_b && c.notify.as_deref() == Some("Bob"))
    );
    // Bob's phone keeps its history (the message its web client sent included).
    let phone_history = phone_b.history(&alice, 10).await.unwrap();
    assert_eq!(
        phone_history.iter().filter_map(text).collect::<Vec<_>>(),
        texts
    );

    for client in [wa, wb] {
        client.shutdown().await;
    }
    for phone in [phone_a, phone_b] {
        phone.shutdown().await;
    }
    let dir = net.dir.path().to_owned();
    net.server.shutdown().await;
    let (files, bytes) = assert_no_plaintext(&dir, &texts);
    assert!(
        files >= 6,
        "server database, media dir, 4 stores and their keys: {files}"
    );
    eprintln!(
        "two accounts: {:.1?}; scanned {files} files, {bytes} bytes, no plaintext",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_three() {
    let mut net = Net::start(|_| {}).await;
    let (phone_a, _pa) = net.phone(net.phone_config("15550000011", "Ann")).await;
    let (phone_b, _pb) = net.phone(net.phone_config("15550000012", "Ben")).await;
    let (phone_c, mut phone_c_events) = net.phone(net.phone_config("15550000013", "Cat")).await;
    let (user_a, user_b, user_c) = (
        phone_a.user().clone(),
        phone_b.user().clone(),
        phone_c.user().clone(),
    );
    let (wa, mut wa_events, _) = net.link(&phone_a, "web-a").await;
    let (wb, mut wb_events, _) = net.link(&phone_b, "web-b").await;

    let group = wa
        .group_create("trio", &[user_b.clone(), user_c.clone()])
        .await
        .unwrap();
    assert!(group.is_group());
    let id = wa.send_text(&group, "zebra-hello-trio").await.unwrap();
    let got = message(&mut wb_events, "zebra-hello-trio").await;
    assert_eq!(
        got.key.remote_jid.as_deref(),
        Some(group.to_wire_string().as_str())
    );
    assert_eq!(
        got.key.participant.as_deref(),
        Some(user_a.to_wire_string().as_str())
    );
    let (got_id, chat) = phone_message(&mut phone_c_events, "zebra-hello-trio").await;
    assert_eq!((got_id.as_str(), &chat), (id.as_str(), &group));

    phone_c
        .send_text(&group, "zebra-cat-answers")
        .await
        .unwrap();
    let at_a = message(&mut wa_events, "zebra-cat-answers").await;
    assert_eq!(
        at_a.key.participant.as_deref(),
        Some(user_c.to_wire_string().as_str())
    );
    message(&mut wb_events, "zebra-cat-answers").await;

    // Ben's store has the group chat with both messages, the answer from Cat.
    let history = wb.history(&group, 10).await.unwrap();
    assert_eq!(
        history.iter().filter_map(text).collect::<Vec<_>>(),
        ["zebra-hello-trio", "zebra-cat-answers"]
    );
    assert_eq!(
        history[1].key.participant.as_deref(),
        Some(user_c.to_wire_string().as_str())
    );
    assert!(wb.chats().await.unwrap().iter().any(|c| c.jid == group));
    // Cat's phone can mark it read (the sender looked up in its store): Ann sees blue ticks.
    phone_c.read(&group, &id).await.unwrap();
    ack(&mut wa_events, &id, AckLevel::Read).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_does_not_poll_loses_nothing() {
    const COUNT: usize = 200;
    let mut net = Net::start(|_| {}).await;
    let (phone_a, _pa) = net.phone(net.phone_config("15550000021", "Ada")).await;
    let (phone_b, _pb) = net.phone(net.phone_config("15550000022", "Bea")).await;
    let alice = phone_a.user().clone();
    // A small channel, so that the driver has to wait for the consumer many times over.
    let mut config: ClientConfig = net.client_config(&net.store("web-b"));
    config.events_capacity = 8;
    let (wb, mut wb_events, _) = net.link_with(&phone_b, config).await;
    support::imported(&mut wb_events).await;

    let started = Instant::now();
    // Every message stored by the server (ack 1) while nobody reads the client's events.
    for i in 0..COUNT {
        phone_a
            .send_text(phone_b.user(), &format!("zebra-burst-{i}"))
            .await
            .unwrap();
    }
    let sent = started.elapsed();
    let mut seen = std::collections::BTreeSet::new();
    wait(&mut wb_events, "all the burst", |e| {
        if let Event::Session(wa_session::Event::Message { info, .. }) = e
            && let Some(t) = text(info)
        {
            seen.insert(t);
        }
        (seen.len() == COUNT).then_some(())
    })
    .await;
    for i in 0..COUNT {
        assert!(seen.contains(&format!("zebra-burst-{i}")));
    }
    // And every one of them is in the store, once.
    let stored = wb.history(&alice, COUNT * 2).await.unwrap();
    assert_eq!(stored.len(), COUNT);
    eprintln!(
        "{COUNT} messages: sent in {sent:.1?}, all taken after {:.1?} (events capacity 8)",
        started.elapsed()
    );
}
