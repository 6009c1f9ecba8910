//! The media service: upload with `mediaConn` auth and the body's hash as token, download by
//! capability URL, the size limit (413), unknown (404), expired (410), swept (404).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use sha2::{Digest as _, Sha256};
use support::*;
use tokio::io::AsyncWriteExt as _;

fn token(body: &[u8]) -> String {
    URL_SAFE.encode(Sha256::digest(body))
}

fn upload_path(kind: &str, body_token: &str, auth: &str) -> String {
    format!("/mms/{kind}/{}?auth={}", percent(body_token), percent(auth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_with_capability_and_refusals() {
    let mut t = TestServer::start(|c| {
        c.media_listen = Some("127.0.0.1:0".parse().unwrap());
        c.core.limits.max_media_len = 64 << 10;
    })
    .await;
    let media_addr = t.server.media_addr();
    assert_ne!(media_addr, t.server.local_addr());
    let mut alice = t.phone("15550000051", 51).await;
    let auth = alice.media_conn().await;
    assert_eq!(auth.hosts, vec![media_addr.to_string()]);
    assert_eq!(auth.max_bytes, Some(64 << 10));

    // Made-up ciphertext (the server never sees plaintext media).
    let body: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let ok = http(
        "POST",
        media_addr,
        &upload_path("image", &token(&body), &auth.auth),
        &[],
        &body,
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    let reply = ok.json();
    let direct_path = reply["direct_path"].as_str().unwrap().to_owned();
    assert_eq!(
        reply["url"].as_str().unwrap(),
        format!("http://{media_addr}{direct_path}")
    );
    let got = http("GET", media_addr, &direct_path, &[], b"").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, body);
    // The path form of the capability works too.
    let (path, cap) = direct_path.split_once("?cap=").unwrap();
    let got = http("GET", media_addr, &format!("{path}/{cap}"), &[], b"").await;
    assert_eq!(got.body, body);
    // A wrong capability, or none, is as unknown as an unknown id.
    let mut wrong_cap = cap.to_owned();
    wrong_cap.replace_range(0..1, if cap.starts_with('A') { "B" } else { "A" });
    assert_eq!(
        http(
            "GET",
            media_addr,
            &format!("{path}?cap={wrong_cap}"),
            &[],
            b""
        )
        .await
        .status,
        404
    );
    assert_eq!(http("GET", media_addr, path, &[], b"").await.status, 404);
    assert_eq!(
        http(
            "GET",
            media_addr,
            "/d/00000000000000000000000000000000?cap=x",
            &[],
            b""
        )
        .await
        .status,
        404
    );
    assert_eq!(
        http(
            "GET",
            media_addr,
            "/d/..%2F..%2Fetc%2Fpasswd?cap=x",
            &[],
            b""
        )
        .await
        .status,
        404
    );

    // A token that is not the body's hash, bad auth, no auth, a bad token.
    let wrong = URL_SAFE.encode([0u8; 32]);
    assert_eq!(
        http(
            "POST",
            media_addr,
            &upload_path("image", &wrong, &auth.auth),
            &[],
            &body
        )
        .await
        .status,
        400
    );
    assert_eq!(
        http(
            "POST",
            media_addr,
            &upload_path("image", &token(&body), "nope"),
            &[],
            &body
        )
        .await
        .status,
        401
    );
    assert_eq!(
        http(
            "POST",
            media_addr,
            &format!("/mms/image/{}", percent(&token(&body))),
            &[],
            &body
        )
        .await
        .status,
        401
    );
    assert_eq!(
        http(
            "POST",
            media_addr,
            &upload_path("image", "not-base64!", &auth.auth),
            &[],
            &body
        )
        .await
        .status,
        400
    );

    // Too large: refused from its Content-Length ...
    let big = vec![1u8; (64 << 10) + 1];
    let response = http(
        "POST",
        media_addr,
        &upload_path("video", &token(&big), &auth.auth),
        &[],
        &big,
    )
    .await;
    assert_eq!(response.status, 413);
    // ... and while streaming, without one.
    let mut stream = tokio::net::TcpStream::connect(media_addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n",
        upload_path("video", &token(&big), &auth.auth)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.chunks(8 << 10) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).await.is_err() {
            break; // the server answered and closed already
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    assert_eq!(read_response(&mut stream).await.status, 413);
    // No partial file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(t.dir.path().join("media"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    assert!(!leftovers[0].ends_with(".part"));
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_media_is_gone_then_swept() {
    let mut t = TestServer::start(|c| c.media_ttl = std::time::Duration::ZERO).await;
    let addr = t.server.media_addr();
    let mut alice = t.phone("15550000052", 52).await;
    let auth = alice.media_conn().await;
    let body = b"encrypted bytes".to_vec();
    let ok = http(
        "POST",
        addr,
        &upload_path("document", &token(&body), &auth.auth),
        &[],
        &body,
    )
    .await;
    assert_eq!(ok.status, 200);
    let direct_path = ok.json()["direct_path"].as_str().unwrap().to_owned();
    // Expires at once: 410 while the record exists ...
    assert_eq!(http("GET", addr, &direct_path, &[], b"").await.status, 410);
    let files = || {
        std::fs::read_dir(t.dir.path().join("media"))
            .unwrap()
            .count()
    };
    assert_eq!(files(), 1);
    // ... and after a sweep the record and the file are gone: 404.
    let swept = t.server.sweep_now().await.unwrap();
    assert_eq!(swept.media, 1);
    assert_eq!(files(), 0);
    assert_eq!(http("GET", addr, &direct_path, &[], b"").await.status, 404);
    assert_eq!(t.server.sweep_now().await.unwrap().media, 0);
    let status = status(t.server.local_addr()).await;
    assert_eq!(status["media"]["expired"], 1);
    assert_eq!(status["media"]["uploads"], 1);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_not_taken_in_time_closes_its_connection() {
    let mut t = TestServer::start(|c| {
        c.media_timeout = std::time::Duration::from_millis(500);
        c.core.limits.max_media_len = 16 << 20;
    })
    .await;
    let addr = t.server.media_addr();
    let mut alice = t.phone("15550000053", 53).await;
    let auth = alice.media_conn().await;
    // More than the kernel's socket buffers hold.
    let body = vec![0x42u8; 12 << 20];
    let ok = http(
        "POST",
        addr,
        &upload_path("video", &token(&body), &auth.auth),
        &[],
        &body,
    )
    .await;
    assert_eq!(ok.status, 200);
    let direct_path = ok.json()["direct_path"].as_str().unwrap().to_owned();

    // A client with a small receive buffer asks for it and does not read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!("GET {direct_path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // The server gives up on it ...
    let mut cut = false;
    for _ in 0..5000 {
        if status(t.server.local_addr()).await["media"]["cut_off"] == 1 {
            cut = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(cut, "the download was not cut off");
    // ... and what the client can still read ends short of the body.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut got),
    )
    .await
    .unwrap();
    assert!(got.len() < body.len(), "{} bytes", got.len());
    t.server.shutdown().await;
}
