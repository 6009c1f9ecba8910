//! The wire contract at the edges, with raw WebSocket frames: init and refs, keepalive, the
//! version check, login refusals, takeover, binary frames before keys, limits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wa_server::Config;
use wa_session::{DisconnectReason, Event};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CLIENT_ID: &str = "AAECAwQFBgcICQoLDA0ODw==";

async fn raw(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// The next text message, or `None` once the server closed the socket.
async fn recv(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no answer")
        {
            Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// The JSON after `tag,` of the next message.
async fn recv_json(ws: &mut Ws, tag: &str) -> Value {
    let text = recv(ws).await.expect("an answer");
    let json = text
        .strip_prefix(&format!("{tag},"))
        .unwrap_or_else(|| panic!("{text} is not under {tag}"));
    serde_json::from_str(json).unwrap()
}

fn init(tag: &str, version: [u64; 3]) -> String {
    format!(
        "{tag},,{}",
        json!(["admin", "init", version, ["Test", "Test"], CLIENT_ID, true])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refs_keepalive_and_refusals_before_login() {
    let dir = tempfile::tempdir().unwrap();
    // Short-lived refs, so that rerefs can be asked for before and after expiry.
    let mut config = wa_server::Config::new(dir.path());
    config.ref_ttl = Duration::from_millis(300);
    let server = start_with(config).await;
    let mut ws = raw(&server.ws_url()).await;

    send(&mut ws, "?,,").await;
    let pong = recv(&mut ws).await.unwrap();
    let ms: u64 = pong.strip_prefix('!').unwrap().parse().unwrap();
    assert!(ms.abs_diff(now().as_millis()) < 60_000);

    // Nothing but init, login and pings before keys.
    send(&mut ws, r#"q1,,["query","mediaConn"]"#).await;
    assert_eq!(recv_json(&mut ws, "q1").await["status"], 401);
    send(&mut ws, r#"q2,,["admin","Conn","reref"]"#).await;
    assert_eq!(recv_json(&mut ws, "q2").await["status"], 400);

    send(&mut ws, &init("i1", [2, 2142, 12])).await;
    let answer = recv_json(&mut ws, "i1").await;
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["ttl"], 300);
    let mut refs = vec![answer["ref"].as_str().unwrap().to_owned()];
    // Before the ref expires: 304, keep showing it.
    send(&mut ws, r#"r0,,["admin","Conn","reref"]"#).await;
    let answer = recv_json(&mut ws, "r0").await;
    assert_eq!(answer["status"], 304);
    assert_eq!(answer["ref"], refs[0].as_str());
    assert!(answer["ttl"].as_u64().unwrap() <= 300);
    // After: 200 and a new ref, up to five rerefs in all.
    for i in 1..5 {
        tokio::time::sleep(Duration::from_millis(320)).await;
        send(&mut ws, &format!(r#"r{i},,["admin","Conn","reref"]"#)).await;
        let answer = recv_json(&mut ws, &format!("r{i}")).await;
        assert_eq!(answer["status"], 200);
        refs.push(answer["ref"].as_str().unwrap().to_owned());
    }
    send(&mut ws, r#"r5,,["admin","Conn","reref"]"#).await;
    assert_eq!(recv_json(&mut ws, "r5").await["status"], 429);
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), 5, "refs are unique");

    // Unknown tokens: 401. Pong false: no phone.
    send(
        &mut ws,
        &format!(r#"l1,,["admin","login","x","y","{CLIENT_ID}","takeover"]"#),
    )
    .await;
    assert_eq!(recv_json(&mut ws, "l1").await["status"], 401);
    send(&mut ws, r#"t1,,["admin","test"]"#).await;
    assert_eq!(recv_json(&mut ws, "t1").await, json!(["Pong", false]));

    // A binary frame before keys closes the connection.
    ws.send(Message::binary(b"b1,\x10\x80not sealed".to_vec()))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await, None);

    // A client that is too old is told to update.
    let mut old = raw(&server.ws_url()).await;
    send(&mut old, &init("i2", [0, 2, 0])).await;
    let text = recv(&mut old).await.unwrap();
    assert!(text.ends_with(r#"["Cmd",{"type":"update"}]"#), "{text}");
    assert_eq!(recv(&mut old).await, None);
    assert!(status_of(&server, "connections", "total") >= 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_frame_size_rate_and_idle() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.limits.requests_per_second = 1;
    config.limits.request_burst = 3;
    config.limits.frame = wa_frame::Limits::default().with_max_frame_len(1024);
    config.idle_timeout = Duration::from_millis(500);
    let server = start_with(config).await;

    let mut ws = raw(&server.ws_url()).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        send(&mut ws, &format!(r#"x{i},,["admin","Conn","reref"]"#)).await;
        statuses.push(
            recv_json(&mut ws, &format!("x{i}")).await["status"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(statuses, [400, 400, 400, 429, 429, 429]);
    assert!(server.status()["rate_limited"].as_u64().unwrap() >= 3);

    // A frame above the limit closes the connection.
    let mut big = raw(&server.ws_url()).await;
    send(&mut big, &format!("b,,[\"{}\"]", "x".repeat(2000))).await;
    assert_eq!(recv(&mut big).await, None);

    // A connection that says nothing is closed.
    let mut quiet = raw(&server.ws_url()).await;
    let started = std::time::Instant::now();
    assert_eq!(recv(&mut quiet).await, None);
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_replaces_the_first_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let phone = phone(&server.phone_url(), "15550000061", "Alice").await;
    let mut first = Client::link(&server.ws_url(), &phone, 90).await;
    let credentials = first.credentials.clone().unwrap();
    let mut second = Client::restore(&server.ws_url(), credentials, 91).await;
    let reason = first
        .wait_for("replaced", |e| match e {
            Event::Disconnected {
                reason,
                reconnect_in,
            } => Some((reason.clone(), *reconnect_in)),
            _ => None,
        })
        .await;
    assert_eq!(reason, (DisconnectReason::Replaced, None));
    // The second one works: it can send to itself.
    second.send_text("15550000061@c.us", "note to self").await;

    // Logging out unlinks: the phone sees no device, the credentials are dead.
    let credentials = second.credentials.clone().unwrap();
    second.session.logout(now());
    second.pump().await;
    eventually("logged out", || !second.socket_open()).await;
    for _ in 0..50 {
        if phone.devices().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(phone.devices().await.unwrap().is_empty());
    let mut dead = Client::start_restore(&server.ws_url(), credentials, 92).await;
    let error = dead
        .wait_for("401", |e| match e {
            Event::LoginFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .await;
    assert_eq!(error, wa_session::LoginError::Unpaired);
    server.shutdown().await;
}
