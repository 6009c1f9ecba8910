//! History: a phone with a conversation history links a new web client, which imports the
//! export (once per format) and shows the old messages; the phone leaves and the client still
//! talks; tampered exports import nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Instant;

use support::{Net, assert_no_plaintext, message, phone_message, text};
use wa_client::{Error, Event, Events};
use wa_history::{Chat, Format, History, HistoryMessage, MessageStatus};
use wa_media::{MediaKey, MediaType};
use wa_proto::wars::HistoryNotice;

async fn history_moves_to_a_new_client(format: Format) {
    let started = Instant::now();
    let mut net = Net::start(|_| {}).await;
    let mut config_a = net.phone_config("15550000051", "Abe");
    config_a.platform = format;
    let (phone_a, mut pa) = net.phone(config_a).await;
    let (phone_b, mut pb) = net.phone(net.phone_config("15550000052", "Bia")).await;
    let (alice, bob) = (phone_a.user().clone(), phone_b.user().clone());

    // The phones talk before any web client exists: the history lives on Alice's phone.
    let old = [
        ("a", "zebra-old-1 from alice"),
        ("b", "zebra-old-2 from bob"),
        ("a", "zebra-old-3 from alice"),
        ("b", "zebra-old-4 from bob"),
    ];
    for (who, said) in old {
        if who == "a" {
            phone_a.send_text(&bob, said).await.unwrap();
            phone_message(&mut pb, said).await;
        } else {
            phone_b.send_text(&alice, said).await.unwrap();
            phone_message(&mut pa, said).await;
        }
    }
    let group = phone_b
        .group_create("old friends", std::slice::from_ref(&alice))
        .await
        .unwrap();
    phone_b.send_text(&group, "zebra-old-group").await.unwrap();
    phone_message(&mut pa, "zebra-old-group").await;

    let (wa, mut wa_events, _) = net
        .link_with(&phone_a, net.client_config(&net.store("web-a")))
        .await;
    let imported = support::imported(&mut wa_events).await;
    assert_eq!(
        (imported.chats, imported.messages, imported.new_messages),
        (2, 5, 5)
    );
    assert_eq!(imported.contacts, 1);

    // The exports keep whole seconds (as the protocol's timestamps are): messages of one second
    // come back in the canonical order (time, then id), not necessarily as they were sent.
    let history = wa.history(&bob, 100).await.unwrap();
    let mut said: Vec<_> = history
        .iter()
        .map(|m| (text(m).unwrap(), m.key.from_me == Some(true)))
        .collect();
    said.sort();
    let mut expected: Vec<_> = old
        .iter()
        .map(|(who, t)| ((*t).to_owned(), *who == "a"))
        .collect();
    expected.sort();
    assert_eq!(said, expected);
    assert!(
        history
            .windows(2)
            .all(|w| w[0].message_timestamp <= w[1].message_timestamp)
    );
    let in_group = wa.history(&group, 100).await.unwrap();
    assert_eq!(in_group.len(), 1);
    assert_eq!(
        in_group[0].key.participant.as_deref(),
        Some(bob.to_wire_string().as_str())
    );
    let chats: Vec<_> = wa
        .chats()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.jid)
        .collect();
    assert!(chats.contains(&bob) && chats.contains(&group), "{chats:?}");
    let contacts = wa.contacts().await.unwrap();
    assert!(
        contacts
            .iter()
            .any(|c| c.jid == bob && c.notify.as_deref() == Some("Bia"))
    );

    // The phone goes away; the new client still sends and receives.
    phone_a.shutdown().await;
    wa.send_text(&bob, "zebra-new-from-web").await.unwrap();
    phone_message(&mut pb, "zebra-new-from-web").await;
    phone_b
        .send_text(&alice, "zebra-new-from-bob")
        .await
        .unwrap();
    message(&mut wa_events, "zebra-new-from-bob").await;
    let history = wa.history(&bob, 100).await.unwrap();
    assert_eq!(
        history.len(),
        6,
        "the imported and the live messages, once each"
    );

    wa.shutdown().await;
    phone_b.shutdown().await;
    let dir = net.dir.path().to_owned();
    net.server.shutdown().await;
    let mut texts: Vec<&str> = old.iter().map(|(_, t)| *t).collect();
    texts.extend([
        "zebra-old-group",
        "zebra-new-from-web",
        "zebra-new-from-bob",
    ]);
    let (files, bytes) = assert_no_plaintext(&dir, &texts);
    eprintln!(
        "history ({format}): {:.1?}; scanned {files} files, {bytes} bytes",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn android_history_moves_to_a_new_client() {
    history_moves_to_a_new_client(Format::Android).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ios_history_moves_to_a_new_client() {
    history_moves_to_a_new_client(Format::Ios).await;
}

/// The next history outcome, owned.
async fn outcome(events: &mut Events) -> Result<wa_client::Imported, Error> {
    tokio::time::timeout(support::WAIT, async {
        loop {
            match events.next().await.expect("the client stopped") {
                Event::HistoryFailed(error) => return Err(error),
                Event::HistoryImported(imported) => return Ok(imported),
                _ => {}
            }
        }
    })
    .await
    .expect("timed out waiting for a history outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_exports_import_nothing() {
    let mut net = Net::start(|_| {}).await;
    let mut config_a = net.phone_config("15550000061", "Ana");
    config_a.export_history = false;
    let (phone_a, mut pa) = net.phone(config_a).await;
    let (phone_b, _pb) = net.phone(net.phone_config("15550000062", "Bel")).await;
    let (alice, bob) = (phone_a.user().clone(), phone_b.user().clone());
    phone_b
        .send_text(&alice, "zebra-secret-history")
        .await
        .unwrap();
    phone_message(&mut pa, "zebra-secret-history").await;
    let (wa, mut events, device) = net
        .link_with(&phone_a, net.client_config(&net.store("web-a")))
        .await;
    let genuine = phone_a.export_history(&device).await.unwrap();
    let nothing_stored = |wa: &wa_client::Client| {
        let store = wa.store().unwrap();
        assert_eq!(store.message_count().unwrap(), 0);
        assert!(store.chats().unwrap().is_empty());
    };

    // A wrong fileSha256: the plaintext does not match (checked before anything is used).
    let mut notice = genuine.clone();
    if let Some(hash) = notice.file_sha256.as_mut() {
        hash[0] ^= 1;
    }
    phone_a.send_history(notice).await.unwrap();
    let error = outcome(&mut events).await.unwrap_err();
    assert!(
        matches!(error, Error::Media(wa_media::Error::PlainSha256Mismatch)),
        "{error:?}"
    );
    nothing_stored(&wa);

    // A wrong format: the Android export read as iOS.
    let mut notice = genuine.clone();
    notice.format = Some("ios".to_owned());
    phone_a.send_history(notice).await.unwrap();
    let error = outcome(&mut events).await.unwrap_err();
    assert!(matches!(error, Error::HistoryImport(_)), "{error:?}");
    nothing_stored(&wa);

    // An unknown format.
    let mut notice = genuine.clone();
    notice.format = Some("symbian".to_owned());
    phone_a.send_history(notice).await.unwrap();
    let error = outcome(&mut events).await.unwrap_err();
    assert!(matches!(error, Error::HistoryFormat(_)), "{error:?}");

    // A truncated body (the hashes and length of the whole one).
    let mut history = History::new(alice.clone());
    history.chats.push(Chat::new(bob.clone(), 1_700_000_000));
    let content = wa_proto::Message {
        conversation: Some("zebra-forged".to_owned()),
        ..Default::default()
    };
    history.messages.push(HistoryMessage::new(
        bob.clone(),
        "3EB0000000000001",
        false,
        1_700_000_000,
        MessageStatus::Read,
        content,
    ));
    let key = [9u8; 32];
    let plain = wa_history::export(&history, Format::Android).unwrap();
    let (body, info) = wa_media::encrypt(&MediaKey::from_bytes(key), MediaType::History, &plain);
    let whole = HistoryNotice {
        media_key: Some(key.to_vec()),
        file_sha256: Some(info.file_sha256.to_vec()),
        file_enc_sha256: Some(info.file_enc_sha256.to_vec()),
        file_length: Some(info.file_length),
        format: Some("android".to_owned()),
        device: Some(device.to_wire_string()),
        ..Default::default()
    };
    let cut = phone_a
        .upload(MediaType::History, body[..body.len() - 16].to_vec())
        .await
        .unwrap();
    let mut notice = whole.clone();
    notice.url = Some(cut.url);
    phone_a.send_history(notice).await.unwrap();
    let error = outcome(&mut events).await.unwrap_err();
    assert!(matches!(error, Error::Media(_)), "{error:?}");
    nothing_stored(&wa);

    // A well-made export of another account's history.
    let mut foreign = history.clone();
    foreign.owner = bob.clone();
    foreign.chats = vec![Chat::new(alice.clone(), 1_700_000_000)];
    foreign.messages[0].chat = alice.clone();
    let plain = wa_history::export(&foreign, Format::Android).unwrap();
    let (body, info) = wa_media::encrypt(&MediaKey::from_bytes(key), MediaType::History, &plain);
    let uploaded = phone_a.upload(MediaType::History, body).await.unwrap();
    let notice = HistoryNotice {
        url: Some(uploaded.url),
        file_sha256: Some(info.file_sha256.to_vec()),
        file_enc_sha256: Some(info.file_enc_sha256.to_vec()),
        file_length: Some(info.file_length),
        ..whole.clone()
    };
    phone_a.send_history(notice).await.unwrap();
    let error = outcome(&mut events).await.unwrap_err();
    assert!(
        matches!(error, Error::ForeignHistory { ref owner } if *owner == bob),
        "{error:?}"
    );
    nothing_stored(&wa);

    // The genuine notice imports (so the refusals above were the checks, not a broken path),
    // and importing it twice stores it once.
    phone_a.send_history(genuine.clone()).await.unwrap();
    let imported = outcome(&mut events).await.unwrap();
    assert_eq!((imported.messages, imported.new_messages), (1, 1));
    phone_a.send_history(genuine).await.unwrap();
    let again = outcome(&mut events).await.unwrap();
    assert_eq!((again.messages, again.new_messages), (1, 0));
    let history = wa.history(&bob, 10).await.unwrap();
    assert_eq!(
        history.iter().filter_map(text).collect::<Vec<_>>(),
        ["zebra-secret-history"]
    );
}
