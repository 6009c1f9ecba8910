//! The phone protocol end to end through the driver: registration (the code through the
//! channel code sender), keys, the directory, a relay of made-up ciphertext, delivery, the
//! receipt and the ticks; the web client socket answers keepalives; a connection closes at its
//! login and idle deadlines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use futures_util::{SinkExt as _, StreamExt as _};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wa_wire::keys::Claimed;
use wa_wire::phone::PhoneEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_keys_relay_deliver_receipt_ticks() {
    let mut t = TestServer::start(|_| {}).await;
    let mut alice = t.phone("15550000001", 1).await;
    let mut bob = t.phone("15550000002", 2).await;

    // The directory: Bob's phone is his only device, with Bob's identity.
    let lists = alice.devices(vec![bob.jid()]).await;
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].devices.len(), 1);
    assert_eq!(lists[0].devices[0].device, bob.jid());
    assert_eq!(lists[0].devices[0].identity, bob.identity);
    // A one-time key is handed out once.
    let claimed = alice.prekeys(vec![bob.jid()]).await;
    let Claimed::Bundle(bundle) = &claimed[0] else {
        panic!("{claimed:?}")
    };
    assert_eq!(bundle.device, bob.jid());
    assert!(!bundle.fallback);
    let again = alice.prekeys(vec![bob.jid()]).await;
    let Claimed::Bundle(second) = &again[0] else {
        panic!("{again:?}")
    };
    assert_ne!(second.one_time_key.id, bundle.one_time_key.id);

    // A relay with made-up ciphertext: stored (the answer is the phone's ack 1) ...
    let ciphertext: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let stored = alice
        .relay_to(&bob.jid(), "MSG1", &ciphertext)
        .await
        .unwrap();
    assert!(stored.t > 0);
    // ... pushed to Bob with exactly those bytes ...
    let message = bob.message().await;
    assert_eq!(message.id, "MSG1");
    assert_eq!(message.from, alice.jid());
    assert_eq!(message.chat, alice.jid());
    assert_eq!(message.olm.as_ref().unwrap().body, ciphertext);
    // ... and his receipt gives Alice ack 2 (her first ack event for it: no ack 1 is pushed
    // to the phone that relayed).
    bob.receipt(&alice.jid(), "MSG1").await;
    let ack = alice.ack("MSG1").await;
    assert_eq!(ack.level, 2);
    assert_eq!(ack.chat, bob.jid());

    // A relay that leaves out a device is refused with the missing one (409).
    let wrong = relay(&bob.jid(), "MSG2", &[], b"x");
    let refused: Result<serde_json::Value, _> = alice
        .call(|id| wa_wire::phone::PhoneRequest::Relay { id, relay: wrong })
        .await;
    assert_eq!(refused.unwrap_err().0, 409);

    // The status page counts both phones online and nothing queued.
    let status = status(t.server.local_addr()).await;
    assert_eq!(status["online_devices"], 2);
    assert_eq!(status["connections"]["phones"], 2);
    assert_eq!(status["messages"]["queued"], 0);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_phone_gets_its_messages_at_login_and_a_wrong_code_is_refused() {
    let mut t = TestServer::start(|_| {}).await;
    let mut alice = t.phone("15550000011", 11).await;
    let bob = t.phone("15550000012", 12).await;
    bob.close().await;
    for i in 0..3 {
        alice
            .relay_to(
                &wa_wire::ids::user_jid("15550000012").unwrap(),
                &format!("OFF{i}"),
                &[i; 40],
            )
            .await
            .unwrap();
    }
    let mut bob = Phone::login(&t.server.phone_url(), "15550000012", 12).await;
    for i in 0..3u8 {
        let message = bob.message().await;
        assert_eq!(message.id, format!("OFF{i}"));
        assert_eq!(message.olm.unwrap().body, vec![i; 40]);
    }

    // Another phone asks for a code for Bob's number and guesses wrong.
    let pending = Phone::request_code(&t.server.phone_url(), "15550000012", 13).await;
    let code = t.code_for("15550000012").await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let mut pending_phone = pending;
    let result = tokio::time::timeout(WAIT, async {
        let phone = pending_phone.phone_mut();
        let identity = phone.identity;
        phone
            .call::<serde_json::Value>(|id| wa_wire::phone::PhoneRequest::Verify {
                id,
                number: "15550000012".into(),
                code: wrong.into(),
                name: String::new(),
                identity,
                phone: None,
            })
            .await
    })
    .await
    .unwrap();
    assert!(result.is_err());
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_socket_answers_keepalive_and_binary_on_the_phone_socket_closes_it() {
    let t = TestServer::start(|_| {}).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(t.server.ws_url())
        .await
        .unwrap();
    ws.send(Message::Text("?,,".into())).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(text) = reply else {
        panic!("{reply:?}")
    };
    assert!(text.as_str().starts_with('!'), "{text}");

    let mut phone = Phone::request_code(&t.server.phone_url(), "15550000021", 21).await;
    let socket = phone.phone_mut().socket();
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    phone.phone_mut().closed().await;
    // An unknown request gets an error, not a closed socket.
    let mut other = Phone::request_code(&t.server.phone_url(), "15550000022", 22).await;
    let other = other.phone_mut();
    other
        .socket()
        .send(Message::Text("{\"cmd\":\"nope\",\"id\":1}".into()))
        .await
        .unwrap();
    match other.event().await {
        PhoneEvent::Error { status, .. } => assert_eq!(status, 400),
        event => panic!("{event:?}"),
    }
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_leaves_at_once_still_has_its_message_pushed() {
    let mut t = TestServer::start(|_| {}).await;
    let mut alice = t.phone("15550000023", 23).await;
    let mut bob = t.phone("15550000024", 24).await;
    let devices: Vec<_> = alice
        .devices(vec![bob.jid()])
        .await
        .remove(0)
        .devices
        .into_iter()
        .map(|d| d.device)
        .collect();
    let message = relay(&bob.jid(), "LEFT1", &devices, b"sealed");
    alice
        .send(|id| wa_wire::phone::PhoneRequest::Relay { id, relay: message })
        .await;
    // Alice closes without waiting for the answer: the job finishes after her socket is gone,
    // and its effects still reach Bob live.
    alice.close().await;
    let got = bob.message().await;
    assert_eq!(got.id, "LEFT1");
    assert_eq!(got.olm.unwrap().body, b"sealed");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket_logged_in_or_not_without_waiting_for_the_grace() {
    let mut t = TestServer::start(|c| c.shutdown_grace = std::time::Duration::from_secs(60)).await;
    let mut logged_in = t.phone("15550000025", 25).await;
    let mut waiting = Phone::request_code(&t.server.phone_url(), "15550000026", 26).await;
    let (mut web, _) = tokio_tungstenite::connect_async(t.server.ws_url())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let shutdown = tokio::spawn(t.server.shutdown());
    logged_in.closed().await;
    waiting.phone_mut().closed().await;
    tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = web.next().await {} })
        .await
        .unwrap();
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "did not wait for the grace period"
    );
}

/// The connection's timer follows the core's deadline wherever it moves: a phone socket that
/// never logs in is closed at the login deadline; a phone that logged in, whose every request
/// moved its idle deadline later, is still open past its first idle deadline and is closed an
/// idle timeout after its last request.
///
/// The server's clock is the real one, so the test's clock is made of events: sockets that
/// never log in, each closed at its login deadline (half the idle timeout), between the
/// phone's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_at_its_deadline_wherever_it_moved() {
    let login = std::time::Duration::from_secs(1);
    let idle = 2 * login;
    let mut t = TestServer::start(|c| {
        c.core.phone_login_timeout = login;
        c.core.idle_timeout = idle;
    })
    .await;
    let mut alice = t.phone("15550000001", 1).await;
    // Alice's last request was before this: her first idle deadline is before it too.
    let first_deadline = std::time::Instant::now() + idle;
    let mut last = std::time::Instant::now();
    while last <= first_deadline {
        let opened = std::time::Instant::now();
        let (mut ws, _) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(t.server.phone_url()))
                .await
                .unwrap()
                .unwrap();
        loop {
            match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
        assert!(
            opened.elapsed() >= login,
            "closed after {:?}",
            opened.elapsed()
        );
        // (The server counts the idle timeout from when it reads the request: after this.)
        last = std::time::Instant::now();
        // Answered: the connection is open, past its first deadline in the last round.
        assert_eq!(alice.devices(vec![alice.jid()]).await.len(), 1);
    }
    // The idle phone's socket closes (within `WAIT`, or `try_event` fails the test), an idle
    // timeout after the last request (less a twentieth, for the two clocks' readings).
    while alice.try_event().await.is_some() {}
    assert!(
        last.elapsed() >= idle - idle / 20,
        "closed {:?} after the last request",
        last.elapsed()
    );
}

/// Receipts for several messages in one request: refused when there are none or too many;
/// otherwise one answer, each message retired and ticked for its sender, and each receipt
/// counted against the account's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_in_one_request_retire_and_tick_each_message() {
    use wa_wire::msg::{Receipt, ReceiptKind};
    use wa_wire::phone::{MAX_RECEIPTS, PhoneRequest};

    let mut t = TestServer::start(|c| {
        c.core.limits.budgets.receipt = wa_server_core::budget::Rate {
            per_second: 0.001,
            burst: 3,
        };
    })
    .await;
    let mut alice = t.phone("15550000021", 21).await;
    let mut bob = t.phone("15550000022", 22).await;
    for i in 0..3u8 {
        alice
            .relay_to(&bob.jid(), &format!("R{i}"), &[i; 16])
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(bob.message().await.id);
    }
    let chat = alice.jid();
    let receipt = |id: &str| Receipt {
        kind: ReceiptKind::Delivered,
        chat: chat.clone(),
        id: id.to_owned(),
        participant: None,
    };

    let none: Result<serde_json::Value, _> = bob
        .call(|id| PhoneRequest::Receipts {
            id,
            receipts: Vec::new(),
        })
        .await;
    assert_eq!(none.unwrap_err().0, 400);
    let many = vec![receipt("R0"); MAX_RECEIPTS + 1];
    let too_many: Result<serde_json::Value, _> = bob
        .call(|id| PhoneRequest::Receipts { id, receipts: many })
        .await;
    assert_eq!(too_many.unwrap_err().0, 400);

    let all = ids.iter().map(|id| receipt(id)).collect();
    let _: serde_json::Value = bob
        .call(|id| PhoneRequest::Receipts { id, receipts: all })
        .await
        .unwrap();
    for id in ["R0", "R1", "R2"] {
        assert_eq!(alice.ack(id).await.level, 2);
    }
    let status = status(t.server.local_addr()).await;
    assert_eq!(status["messages"]["queued"], 0);

    // The three spent the budget of three receipts: a fourth is refused.
    let fourth: Result<serde_json::Value, _> = bob
        .call(|id| PhoneRequest::Receipts {
            id,
            receipts: vec![receipt("R0")],
        })
        .await;
    assert_eq!(fourth.unwrap_err().0, 429);
    t.server.shutdown().await;
}
