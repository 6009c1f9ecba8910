//! Restarts from the store: a web client decrypts what was sent while it was away, a phone
//! logs in again from its store; and the offline logout (PROTOCOL.md §2.6) unlinks a device.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use support::{Net, message, phone_message, wait};
use wa_client::phone::Phone;
use wa_client::{Client, Error, Event, Store, default_key_file};
use wa_session::{Event as SessionEvent, LoginError};
use wa_vault::KeySource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_decrypts_what_was_sent_while_it_was_away() {
    let mut net = Net::start(|_| {}).await;
    let (phone_a, _pa) = net.phone(net.phone_config("15550000031", "Ari")).await;
    let config_b = net.phone_config("15550000032", "Bo");
    let (phone_b, _pb) = net.phone(config_b).await;
    let (alice, bob) = (phone_a.user().clone(), phone_b.user().clone());
    let (wb, mut wb_events, _) = net.link(&phone_b, "web-b").await;
    phone_a.send_text(&bob, "zebra-before").await.unwrap();
    message(&mut wb_events, "zebra-before").await;
    wb.shutdown().await;
    drop(wb_events);

    // Sent while the client is away: the server keeps the ciphertext for its device.
    phone_a.send_text(&bob, "zebra-while-away-1").await.unwrap();
    phone_a.send_text(&bob, "zebra-while-away-2").await.unwrap();

    let (wb, mut wb_events) = Client::start(net.client_config(&net.store("web-b")))
        .await
        .unwrap();
    wait(&mut wb_events, "restored login", |e| match e {
        Event::Session(SessionEvent::Connected { .. }) => Some(()),
        Event::Session(SessionEvent::Qr { .. }) => panic!("a restore must not show a QR code"),
        _ => None,
    })
    .await;
    message(&mut wb_events, "zebra-while-away-1").await;
    message(&mut wb_events, "zebra-while-away-2").await;
    let history = wb.history(&alice, 10).await.unwrap();
    assert_eq!(
        history.iter().filter_map(support::text).collect::<Vec<_>>(),
        ["zebra-before", "zebra-while-away-1", "zebra-while-away-2"]
    );
    // And it still sends (its sessions with Alice's devices restored or renewed).
    wb.send_text(&alice, "zebra-back").await.unwrap();

    // The phone restarts from its store too: same identity, its history kept.
    phone_b.shutdown().await;
    let (phone_b, _pb) = Phone::login(net.phone_config("15550000032", "Bo"))
        .await
        .unwrap();
    phone_b.ready().await.unwrap();
    let mut pa_events = _pa;
    phone_b.send_text(&alice, "zebra-phone-back").await.unwrap();
    phone_message(&mut pa_events, "zebra-phone-back").await;
    let kept = phone_b.history(&alice, 10).await.unwrap();
    assert!(
        kept.iter()
            .filter_map(support::text)
            .any(|t| t == "zebra-while-away-2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_login_needs_a_registered_store() {
    let net = Net::start(|_| {}).await;
    let result = Phone::login(net.phone_config("15550000039", "Nobody")).await;
    assert!(matches!(result, Err(Error::NotRegistered)), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_offline_unlinks_the_device() {
    let mut net = Net::start(|_| {}).await;
    let (phone, _events) = net.phone(net.phone_config("15550000041", "Lu")).await;
    let (client, _client_events, device) = net.link(&phone, "web").await;
    let linked = phone.linked().await.unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].device, device);
    client.shutdown().await;

    let path = net.store("web");
    let store = Store::open(&path, KeySource::KeyFile(default_key_file(&path))).unwrap();
    let credentials = store.credentials().unwrap().expect("stored credentials");
    Client::logout_offline(&net.server.ws_url(), &credentials)
        .await
        .unwrap();
    assert!(phone.linked().await.unwrap().is_empty());
    // The same logout again: the server knows these tokens no more.
    let again = Client::logout_offline(&net.server.ws_url(), &credentials).await;
    assert!(
        matches!(again, Err(Error::HttpStatus { status: 401, .. })),
        "{again:?}"
    );
    // A wrong proof is refused as well (another device's keys).
    let mut forged = credentials.clone();
    forged.mac_key = [7; 32];
    assert!(matches!(
        Client::logout_offline(&net.server.ws_url(), &forged).await,
        Err(Error::HttpStatus { status: 401, .. })
    ));
    drop(store);

    // A restore now gets 401, and the store forgets the link.
    let (client, mut events) = Client::start(net.client_config(&path)).await.unwrap();
    let error = wait(&mut events, "login failure", |e| match e {
        Event::Session(SessionEvent::LoginFailed {
            error,
            forget_credentials,
        }) => Some((error.clone(), *forget_credentials)),
        Event::Session(SessionEvent::Connected { .. }) => panic!("an unlinked device logged in"),
        _ => None,
    })
    .await;
    assert_eq!(error, (LoginError::Unpaired, true));
    assert!(client.store().unwrap().credentials().unwrap().is_none());
}
