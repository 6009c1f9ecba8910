//! End to end over loopback sockets: the real client state machine (`wa-session`) and phones
//! against a real server: linking, restoring, unlinking, store and forward with the three
//! ticks, multi-device fan-out and the link limit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Duration;

use support::*;
use wa_server::phone::PhoneEvent;
use wa_session::{AckLevel, DisconnectReason, Event, LoginError, MessageSource};

const A: &str = "15550000001";
const B: &str = "15550000002";

fn jid(number: &str) -> String {
    format!("{number}@c.us")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_restore_rotate_and_unlink() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let phone = phone(&server.phone_url(), A, "Alice").await;
    assert!(phone.created());
    assert_eq!(phone.wid(), jid(A));

    let web = Client::link(&server.ws_url(), &phone, 1).await;
    let account = web.account.clone().unwrap();
    assert_eq!(account.wid, jid(A));
    assert_eq!(account.pushname.as_deref(), Some("Alice"));
    let linked = web.credentials.clone().unwrap();
    assert_eq!(phone.devices().await.unwrap().len(), 1);
    web.close().await;

    // Restoring works, and rotates the tokens.
    let again = Client::restore(&server.ws_url(), linked.clone(), 2).await;
    let rotated = again.credentials.clone().unwrap();
    assert_eq!(rotated.client_id, linked.client_id);
    assert_eq!(rotated.enc_key, linked.enc_key);
    assert_ne!(rotated.client_token, linked.client_token);
    assert_ne!(rotated.server_token, linked.server_token);

    // Tokens one rotation old would be challenged (PROTOCOL.md §2.5); two rotations old they
    // stopped working: 401.
    again.close().await;
    let third = Client::restore(&server.ws_url(), rotated.clone(), 4).await;
    assert_ne!(
        third.credentials.clone().unwrap().client_token,
        rotated.client_token
    );
    let mut stale = Client::start_restore(&server.ws_url(), linked, 3).await;
    let (error, forget) = stale
        .wait_for("login failure", |e| match e {
            Event::LoginFailed {
                error,
                forget_credentials,
            } => Some((error.clone(), *forget_credentials)),
            _ => None,
        })
        .await;
    assert_eq!(error, LoginError::Unpaired);
    assert!(forget);

    // The phone removes the link: the client is disconnected, and 401 after that.
    let mut again = third;
    phone.unlink(&rotated.client_id).await.unwrap();
    let reason = again
        .wait_for("disconnect", |e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, DisconnectReason::LoggedOut);
    assert!(phone.devices().await.unwrap().is_empty());
    let mut unlinked = Client::start_restore(&server.ws_url(), rotated, 4).await;
    let error = unlinked
        .wait_for("login failure", |e| match e {
            Event::LoginFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .await;
    assert_eq!(error, LoginError::Unpaired);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_recipient_gets_it_once_and_the_sender_sees_three_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let alice_phone = phone(&server.phone_url(), A, "Alice").await;
    let mut alice = Client::link(&server.ws_url(), &alice_phone, 10).await;
    let bob_phone = phone(&server.phone_url(), B, "Bob").await;
    let bob_web = Client::link(&server.ws_url(), &bob_phone, 11).await;
    let bob_credentials = bob_web.credentials.clone().unwrap();
    bob_web.close().await;
    bob_phone.close().await;

    // Bob is offline on every device: one tick only.
    let id = alice.send_text(&jid(B), "hello Bob").await;
    alice.wait_ack(&id, AckLevel::Sent).await;
    eventually("the message is queued", || {
        status_of(&server, "messages", "queued") == 1
    })
    .await;
    alice.run_for(Duration::from_millis(300)).await;
    assert!(
        !alice.queue.iter().any(|e| matches!(
            e,
            Event::Ack {
                level: AckLevel::Delivered,
                ..
            }
        )),
        "no second tick while Bob is offline"
    );

    // Bob's web client comes back: it gets the message, exactly once, as sent by Alice.
    let mut bob = Client::restore(&server.ws_url(), bob_credentials, 12).await;
    let info = bob.wait_message(&id).await;
    assert_eq!(
        info.key.remote_jid.as_deref(),
        Some("15550000001@s.whatsapp.net")
    );
    assert_eq!(info.key.from_me, Some(false));
    assert_eq!(info.push_name.as_deref(), Some("Alice"));
    assert_eq!(
        info.message.as_ref().unwrap().conversation.as_deref(),
        Some("hello Bob")
    );
    alice.wait_ack(&id, AckLevel::Delivered).await;
    bob.run_for(Duration::from_millis(300)).await;
    assert_eq!(bob.take_messages(&id), 0, "delivered exactly once");

    // Bob reads it: blue ticks.
    let read = bob.session.mark_read(now(), &jid(A), &id, false).unwrap();
    bob.pump().await;
    bob.reply(read).await.unwrap();
    alice.wait_ack(&id, AckLevel::Read).await;

    // Bob's phone still had it queued; it gets it too, and then the queue is empty.
    assert_eq!(status_of(&server, "messages", "queued"), 1);
    let mut bob_phone = phone(&server.phone_url(), B, "Bob").await;
    let m = phone_message(&mut bob_phone).await;
    assert_eq!(m.id, id);
    assert_eq!(m.sender, jid(A));
    assert_eq!(m.text.as_deref(), Some("hello Bob"));
    eventually("the message is deleted", || {
        status_of(&server, "messages", "queued") == 0
    })
    .await;

    // Reconnecting does not bring it again.
    let credentials = bob.credentials.clone().unwrap();
    bob.close().await;
    let mut bob = Client::restore(&server.ws_url(), credentials, 13).await;
    bob.run_for(Duration::from_millis(300)).await;
    assert_eq!(
        bob.queue
            .iter()
            .filter(|e| matches!(
                e,
                Event::Message {
                    source: MessageSource::Relay,
                    ..
                }
            ))
            .count(),
        0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_receives_and_a_sixth_link_evicts_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let mut alice = phone(&server.phone_url(), A, "Alice").await;
    let mut bob_phone = phone(&server.phone_url(), B, "Bob").await;
    let mut webs = Vec::new();
    for seed in 0..3 {
        webs.push(Client::link(&server.ws_url(), &bob_phone, 20 + seed).await);
    }

    let id = alice.send_text(&jid(B), "to all of Bob").await.unwrap();
    let m = phone_message(&mut bob_phone).await;
    assert_eq!(m.id, id);
    for web in &mut webs {
        let info = web.wait_message(&id).await;
        assert_eq!(info.key.from_me, Some(false));
    }
    // One second tick, however many devices.
    let mut acks = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, alice.next_event()).await {
        if let PhoneEvent::Ack { level, .. } = event {
            acks.push(level);
        }
    }
    assert_eq!(acks.iter().filter(|&&l| l == 2).count(), 1, "{acks:?}");
    eventually("every device has it", || {
        status_of(&server, "messages", "queued") == 0
    })
    .await;

    // A web client's own messages reach the account's other devices as its own.
    let own = webs[1]
        .send_text(&jid(A), "from Bob's second browser")
        .await;
    let copy = webs[0].wait_message(&own).await;
    assert_eq!(copy.key.from_me, Some(true));
    assert_eq!(
        copy.key.remote_jid.as_deref(),
        Some("15550000001@s.whatsapp.net")
    );
    let m = phone_message(&mut bob_phone).await;
    assert!(m.from_me);
    assert_eq!(m.id, own);

    // Two more links make five; the sixth unlinks the oldest.
    let first_credentials = webs[0].credentials.clone().unwrap();
    for seed in 3..5 {
        webs.push(Client::link(&server.ws_url(), &bob_phone, 20 + seed).await);
    }
    assert_eq!(bob_phone.devices().await.unwrap().len(), 5);
    let sixth = Client::link(&server.ws_url(), &bob_phone, 26).await;
    let reason = webs[0]
        .wait_for("eviction", |e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, DisconnectReason::LoggedOut);
    let devices = bob_phone.devices().await.unwrap();
    assert_eq!(devices.len(), 5);
    assert!(
        devices
            .iter()
            .all(|d| d.client_id != first_credentials.client_id)
    );
    assert_eq!(
        devices.last().unwrap().client_id,
        sixth.credentials.clone().unwrap().client_id
    );
    let mut evicted = Client::start_restore(&server.ws_url(), first_credentials, 27).await;
    let error = evicted
        .wait_for("login failure", |e| match e {
            Event::LoginFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .await;
    assert_eq!(error, LoginError::Unpaired);
    server.shutdown().await;
}
