//! The client against the reference server on loopback: link, restore after a restart, ticks,
//! media both ways, reconnect after the server restarts, and `replaced`. Each test starts its
//! own server on a free port with its own data directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use wa_client::{Client, ClientConfig, Event, Events, MediaKind};
use wa_server::phone::Phone;
use wa_session::{AckLevel, DisconnectReason};

const STEP: Duration = Duration::from_secs(15);

async fn wait<T>(events: &mut Events, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            let event = events
                .next()
                .await
                .unwrap_or_else(|| panic!("client stopped waiting for {what}"));
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn start_server(
    dir: &Path,
    listen: Option<std::net::SocketAddr>,
) -> wa_server::RunningServer {
    let mut config = wa_server::Config::new(dir);
    if let Some(listen) = listen {
        config.listen = listen;
    }
    wa_server::Server::start(config).await.unwrap()
}

/// Links a web client (store at `store`) to `phone`'s account; returns it logged in.
async fn link(
    server: &wa_server::RunningServer,
    phone: &Phone,
    store: &Path,
) -> (Client, Events, String) {
    let mut config = ClientConfig::new(server.ws_url());
    config.store = Some(store.to_owned());
    let (client, mut events) = Client::start(config).unwrap();
    let qr = wait(&mut events, "QR", |e| match e {
        Event::Qr { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await;
    phone.link(&qr).await.unwrap();
    let wid = wait(&mut events, "login", |e| match e {
        Event::Connected { account } => Some(account.wid.clone()),
        _ => None,
    })
    .await;
    (client, events, wid)
}

async fn restore(server: &wa_server::RunningServer, store: &Path) -> (Client, Events) {
    let mut config = ClientConfig::new(server.ws_url());
    config.store = Some(store.to_owned());
    let (client, mut events) = Client::start(config).unwrap();
    wait(&mut events, "restored login", |e| match e {
        Event::Connected { .. } => Some(()),
        Event::Qr { .. } => panic!("a restore must not show a QR code"),
        _ => None,
    })
    .await;
    (client, events)
}

async fn ack(events: &mut Events, id: &str, level: AckLevel) {
    wait(events, &format!("{level:?} of {id}"), |e| match e {
        Event::Ack { ids, level: l, .. } if *l >= level && ids.iter().any(|i| i == id) => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_restore_and_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("server"), None).await;
    let alice_phone = Phone::connect(&server.phone_url(), "15550000001", "Alice")
        .await
        .unwrap();
    let bob_phone = Phone::connect(&server.phone_url(), "15550000002", "Bob")
        .await
        .unwrap();
    let alice_store = dir.path().join("alice.redb");
    let (alice, _events, alice_wid) = link(&server, &alice_phone, &alice_store).await;
    assert_eq!(alice_wid, "15550000001@c.us");
    // The store holds the credentials, readable by the owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&alice_store)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    alice.shutdown().await;
    // A restarted client restores without a QR code.
    let (alice, mut alice_events) = restore(&server, &alice_store).await;
    let (bob, mut bob_events, bob_wid) =
        link(&server, &bob_phone, &dir.path().join("bob.redb")).await;
    let id = alice.send_text(&bob_wid, "hello bob").await.unwrap();
    ack(&mut alice_events, &id, AckLevel::Delivered).await;
    let chat = wait(&mut bob_events, "the message", |e| match e {
        Event::Message { info, .. } if info.key.id.as_deref() == Some(id.as_str()) => {
            assert_eq!(
                info.message
                    .as_ref()
                    .and_then(|m| m.conversation.as_deref()),
                Some("hello bob")
            );
            info.key.remote_jid.clone()
        }
        _ => None,
    })
    .await;
    bob.mark_read(&chat, &id).await.unwrap();
    ack(&mut alice_events, &id, AckLevel::Read).await;
    // Bob's store kept the message.
    let stored = bob.store().unwrap().messages(None).unwrap();
    assert!(
        stored
            .iter()
            .any(|m| m.key.id.as_deref() == Some(id.as_str()))
    );
    // The chat list knows the chat.
    let chats = bob.chats().await.unwrap();
    assert!(
        chats.iter().any(|c| c.jid.starts_with("15550000001")),
        "{chats:?}"
    );
    alice.shutdown().await;
    bob.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("server"), None).await;
    let a_phone = Phone::connect(&server.phone_url(), "15550000011", "A")
        .await
        .unwrap();
    let b_phone = Phone::connect(&server.phone_url(), "15550000012", "B")
        .await
        .unwrap();
    let (a, mut a_events, a_wid) = link(&server, &a_phone, &dir.path().join("a.redb")).await;
    let (b, mut b_events, b_wid) = link(&server, &b_phone, &dir.path().join("b.redb")).await;
    let image: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let document = b"%PDF-1.4 not really, but bytes all the same".repeat(100);
    let to_b = a
        .send_media(&b_wid, MediaKind::Image, &image, "image/jpeg", Some("pic"))
        .await
        .unwrap();
    let to_a = b
        .send_media(
            &a_wid,
            MediaKind::Document,
            &document,
            "application/pdf",
            None,
        )
        .await
        .unwrap();
    for (client, events, id, original) in [
        (&b, &mut b_events, &to_b, &image[..]),
        (&a, &mut a_events, &to_a, &document[..]),
    ] {
        let info = wait(events, "media message", |e| match e {
            Event::Message { info, .. } if info.key.id.as_deref() == Some(id.as_str()) => {
                Some(info.clone())
            }
            _ => None,
        })
        .await;
        assert_eq!(client.download_media(&info).await.unwrap(), original);
        // A tampered key fails the MAC: no plaintext.
        let mut bad = (*info).clone();
        if let Some(m) = bad.message.as_mut().and_then(|m| m.image_message.as_mut()) {
            m.media_key.as_mut().unwrap()[0] ^= 1;
        } else if let Some(m) = bad
            .message
            .as_mut()
            .and_then(|m| m.document_message.as_mut())
        {
            m.media_key.as_mut().unwrap()[0] ^= 1;
        }
        assert!(matches!(
            client.download_media(&bad).await,
            Err(wa_client::Error::Media(_))
        ));
    }
    a.shutdown().await;
    b.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = start_server(&data, None).await;
    let addr = server.local_addr();
    let phone = Phone::connect(&server.phone_url(), "15550000021", "R")
        .await
        .unwrap();
    let (client, mut events, _) = link(&server, &phone, &dir.path().join("r.redb")).await;
    drop(phone);
    server.shutdown().await;
    wait(&mut events, "the disconnect", |e| match e {
        Event::Disconnected {
            reconnect_in: Some(_),
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    // Same port, same data directory: the link is remembered.
    let server = start_server(&data, Some(addr)).await;
    wait(&mut events, "the reconnect", |e| match e {
        Event::Connected { .. } => Some(()),
        _ => None,
    })
    .await;
    assert!(client.chats().await.is_ok());
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("server"), None).await;
    let phone = Phone::connect(&server.phone_url(), "15550000031", "T")
        .await
        .unwrap();
    let store = dir.path().join("t.redb");
    let (first, mut first_events, _) = link(&server, &phone, &store).await;
    let credentials = first.store().unwrap().credentials().unwrap().unwrap();
    // The same session logs in elsewhere (a copy of the credentials, no store).
    let mut config = ClientConfig::new(server.ws_url());
    config.credentials = Some(credentials);
    let (second, mut second_events) = Client::start(config).unwrap();
    wait(&mut second_events, "the takeover", |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await;
    wait(&mut first_events, "replaced", |e| match e {
        Event::Disconnected {
            reason: DisconnectReason::Replaced,
            reconnect_in,
        } => {
            assert_eq!(*reconnect_in, None, "no automatic reconnect after replaced");
            Some(())
        }
        _ => None,
    })
    .await;
    second.shutdown().await;
    first.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_one_rotation_old_are_challenged() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("server"), None).await;
    let phone = Phone::connect(&server.phone_url(), "15550000051", "C")
        .await
        .unwrap();
    let store = dir.path().join("c.redb");
    let (client, _events, _) = link(&server, &phone, &store).await;
    // The credentials of the link, before the restore below rotates them.
    let old = client.store().unwrap().credentials().unwrap().unwrap();
    client.shutdown().await;
    let (client, _events) = restore(&server, &store).await;
    let rotated = client.store().unwrap().credentials().unwrap().unwrap();
    assert_ne!(old.client_token, rotated.client_token);
    client.shutdown().await;
    // A client that lost that rotation logs in with the old tokens: challenged, it proves its
    // keys and gets new tokens.
    let mut config = ClientConfig::new(server.ws_url());
    config.credentials = Some(old.clone());
    let (challenged, mut events) = Client::start(config).unwrap();
    let renewed = wait(
        &mut events,
        "credentials after the challenge",
        |e| match e {
            Event::Credentials(c) => Some(c.clone()),
            Event::LoginFailed { error, .. } => panic!("login failed: {error}"),
            _ => None,
        },
    )
    .await;
    assert_ne!(renewed.client_token, old.client_token);
    wait(&mut events, "login", |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await;
    challenged.shutdown().await;
    // Tokens two rotations old are refused.
    let mut config = ClientConfig::new(server.ws_url());
    config.credentials = Some(old);
    let (stale, mut events) = Client::start(config).unwrap();
    wait(&mut events, "401", |e| match e {
        Event::LoginFailed {
            error: wa_session::LoginError::Unpaired,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    stale.shutdown().await;
    server.shutdown().await;
}
