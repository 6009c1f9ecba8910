//! Resource limits on real sockets: the connection caps (global, per address, not logged in),
//! the header-read timeout against slow-loris, `Origin` checks, and the status pages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// A connection that starts a request and never finishes its head.
async fn unfinished(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    stream
}

/// Reads until the server closes the connection: what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("closed in time")
        {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Polls the status listener (each poll a round trip, no sleeping) until `open` connections.
async fn wait_open(status_addr: SocketAddr, open: u64) {
    for _ in 0..2000 {
        if status(status_addr).await["connections"]["open"] == open {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never {open} connections open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_refuses_one_more_and_the_status_listener_still_answers() {
    let t = TestServer::start(|c| {
        c.max_connections = 4;
        c.status_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let addr = t.server.local_addr();
    let status_addr = t.server.status_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(unfinished(addr).await);
    }
    // The accept loop takes connections in order: the fifth finds the four admitted.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let refused = parse_response(&until_closed(&mut fifth).await);
    assert_eq!(refused.status, 503);
    let s = status(status_addr).await;
    assert_eq!(s["connections"]["open"], 4);
    assert_eq!(s["connections"]["refused"][0], 1);

    // One of them finishes its request: answered, and its permit comes back.
    let mut first = held.remove(0);
    first.write_all(b"connection: close\r\n\r\n").await.unwrap();
    assert_eq!(parse_response(&until_closed(&mut first).await).status, 200);
    wait_open(status_addr, 3).await;
    let response = http("GET", addr, "/status", &[], b"").await;
    assert_eq!(response.status, 200);
    // (Shutdown would wait for unfinished requests up to its grace period.)
    drop(held);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_counts_one_address_only() {
    let t = TestServer::start(|c| c.max_connections_per_address = 2).await;
    let addr = t.server.local_addr();
    let a = unfinished(addr).await;
    let b = unfinished(addr).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert_eq!(parse_response(&until_closed(&mut third).await).status, 503);
    // Another loopback address is not held back.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(addr).await.unwrap();
    other
        .write_all(b"GET /status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut other).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["connections"]["refused"][1], 1);
    drop((a, b));
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_have_not_logged_in_are_capped_until_they_do() {
    let mut t = TestServer::start(|c| c.max_unauthenticated = 2).await;
    let url = t.server.phone_url();
    let first = Phone::request_code(&url, "15550000031", 31).await;
    let _second = Phone::request_code(&url, "15550000032", 32).await;
    let third = tokio_tungstenite::connect_async(url.as_str()).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("{other:?}"),
    }
    // The first logs in: it no longer counts, and another may connect.
    let code = t.code_for("15550000031").await;
    let _first = first.verify(&code).await;
    let fourth = Phone::request_code(&url, "15550000033", 33).await;
    drop(fourth);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_is_closed_by_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let t = TestServer::start(|c| c.header_read_timeout = timeout).await;
    let addr = t.server.local_addr();
    let started = Instant::now();
    let mut partial = unfinished(addr).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    until_closed(&mut partial).await;
    until_closed(&mut silent).await;
    assert!(started.elapsed() >= timeout, "not before the timeout");
    // A complete request is still answered.
    assert_eq!(http("GET", addr, "/status", &[], b"").await.status, 200);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_are_refused_when_a_list_is_configured() {
    let t = TestServer::start(|c| c.allowed_origins = vec!["https://web.example.org".into()]).await;
    let url = t.server.ws_url();
    let with_origin = |origin: &str| {
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("{other:?}"),
    }
    let (ws, _) = tokio_tungstenite::connect_async(with_origin("https://web.example.org"))
        .await
        .unwrap();
    drop(ws);
    // Without an Origin (not a browser): allowed.
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    drop(ws);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_pages() {
    let mut t = TestServer::start(|_| {}).await;
    let _alice = t.phone("15550000041", 41).await;
    let addr = t.server.local_addr();
    let s = status(addr).await;
    assert_eq!(s["online_devices"], 1);
    assert_eq!(s["connections"]["phones"], 1);
    assert_eq!(s["connections"]["websockets"], 1);
    assert_eq!(
        s["connections"]["unauthenticated"], 1,
        "this request's own connection"
    );
    assert_eq!(s["connections"]["max"]["connections"], 10_000);
    assert!(s["rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(s["uptime_secs"].is_u64());
    let metrics = http("GET", addr, "/metrics", &[], b"").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("# TYPE wa_connections_open gauge\n"),
        "{text}"
    );
    assert!(text.contains("\nwa_online_devices 1\n"), "{text}");
    assert!(text.contains("\nwa_logins_total 1\n"), "{text}");
    let rss_line = text
        .lines()
        .find(|l| l.starts_with("wa_rss_bytes "))
        .unwrap();
    assert!(rss_line["wa_rss_bytes ".len()..].parse::<u64>().unwrap() > 0);
    assert_eq!(http("GET", addr, "/nope", &[], b"").await.status, 404);
    t.server.shutdown().await;
}
