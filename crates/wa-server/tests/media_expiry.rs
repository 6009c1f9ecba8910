//! Media over HTTP (upload, message, download, decrypt) and expiry of messages and media.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use support::*;
use wa_media::{Expected, MediaKey, MediaType};
use wa_server::Config;
use wa_session::{MediaKind, Reply, UploadedMedia};

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn media_conn(client: &mut Client) -> wa_session::MediaConn {
    let request = client.session.media_conn(now()).unwrap();
    client.pump().await;
    match client.reply(request).await.unwrap() {
        Reply::MediaConn(conn) => conn,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_send_download_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.media_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = start_with(config).await;
    assert_ne!(server.media_addr(), server.local_addr());
    let alice_phone = phone(&server.phone_url(), "15550000041", "Alice").await;
    let mut alice = Client::link(&server.ws_url(), &alice_phone, 70).await;
    let bob_phone = phone(&server.phone_url(), "15550000042", "Bob").await;
    let mut bob = Client::link(&server.ws_url(), &bob_phone, 71).await;

    let conn = media_conn(&mut alice).await;
    assert_eq!(conn.hosts, vec![server.media_addr().to_string()]);
    // A real sample (`tests/data/media/IMAGE.jpeg`, a link into the repository's `testdata/`).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media/IMAGE.jpeg");
    let image =
        std::fs::read(&path).unwrap_or_else(|err| panic!("test data {}: {err}", path.display()));
    let key = MediaKey::from_bytes([7; 32]);
    let (body, info) = wa_media::encrypt(&key, MediaType::Image, &image);
    let token = URL_SAFE.encode(info.file_enc_sha256);
    let upload = |auth: &str, token: &str| {
        format!(
            "http://{}/mms/image/{}?auth={}&token={}",
            conn.hosts[0],
            percent(token),
            percent(auth),
            percent(token)
        )
    };

    // A token that is not the body's hash, or no valid auth, is refused.
    let wrong = URL_SAFE.encode([0u8; 32]);
    let (status, _) = http("POST", &upload(&conn.auth, &wrong), body.clone()).await;
    assert_eq!(status, 400);
    let (status, _) = http("POST", &upload("nope", &token), body.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = http("POST", &upload(&conn.auth, "not-base64!"), body.clone()).await;
    assert_eq!(status, 400);

    let (status, reply) = http("POST", &upload(&conn.auth, &token), body.clone()).await;
    assert_eq!(status, 200);
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    let url = reply["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&server.media_url()));

    let media = UploadedMedia {
        kind: MediaKind::Image,
        url: url.clone(),
        direct_path: reply["direct_path"].as_str().map(str::to_owned),
        mimetype: "image/jpeg".to_owned(),
        media_key: key.as_bytes().to_vec(),
        file_sha256: info.file_sha256.to_vec(),
        file_enc_sha256: info.file_enc_sha256.to_vec(),
        file_length: info.file_length,
        caption: Some("a picture".to_owned()),
        file_name: None,
        dimensions: None,
        seconds: None,
        streaming_sidecar: None,
        jpeg_thumbnail: None,
    };
    let (request, id) = alice
        .session
        .send_media(now(), "15550000042@c.us", &media)
        .unwrap();
    alice.pump().await;
    alice.reply(request).await.unwrap();

    let got = bob.wait_message(&id).await;
    let image_message = got
        .message
        .as_ref()
        .unwrap()
        .image_message
        .as_ref()
        .unwrap();
    assert_eq!(image_message.caption.as_deref(), Some("a picture"));
    let (status, downloaded) = http("GET", image_message.url.as_deref().unwrap(), Vec::new()).await;
    assert_eq!(status, 200);
    let media_key: [u8; 32] = image_message
        .media_key
        .as_deref()
        .unwrap()
        .try_into()
        .unwrap();
    let expected = Expected::new()
        .file_sha256(
            image_message
                .file_sha256
                .as_deref()
                .unwrap()
                .try_into()
                .unwrap(),
        )
        .file_enc_sha256(
            image_message
                .file_enc_sha256
                .as_deref()
                .unwrap()
                .try_into()
                .unwrap(),
        );
    let plain = wa_media::decrypt(
        &MediaKey::from_bytes(media_key),
        MediaType::Image,
        &expected,
        &downloaded,
    )
    .unwrap();
    assert_eq!(plain, image);

    let (status, _) = http(
        "GET",
        &format!("{}/d/{}", server.media_url(), "0".repeat(32)),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = http(
        "GET",
        &format!("{}/d/../wa-server.redb", server.media_url()),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(status_of(&server, "media", "uploads"), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_messages_and_old_media_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.message_ttl = Duration::from_secs(1);
    config.media_ttl = Duration::from_secs(1);
    config.sweep_interval = Duration::from_millis(100);
    let server = start_with(config).await;
    let alice_phone = phone(&server.phone_url(), "15550000051", "Alice").await;
    let mut alice = Client::link(&server.ws_url(), &alice_phone, 80).await;
    let bob = phone(&server.phone_url(), "15550000052", "Bob").await;
    bob.close().await;

    alice.send_text("15550000052@c.us", "too late").await;
    let conn = media_conn(&mut alice).await;
    let body = b"encrypted bytes".to_vec();
    let token = URL_SAFE.encode(sha2_digest(&body));
    let (status, reply) = http(
        "POST",
        &format!(
            "http://{}/mms/document/{}?auth={}",
            conn.hosts[0],
            percent(&token),
            percent(&conn.auth)
        ),
        body,
    )
    .await;
    assert_eq!(status, 200);
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    let url = reply["url"].as_str().unwrap().to_owned();
    let (status, _) = http("GET", &url, Vec::new()).await;
    assert_eq!(status, 200);

    eventually("the message expired", || {
        status_of(&server, "messages", "expired") == 1
    })
    .await;
    assert_eq!(status_of(&server, "messages", "queued"), 0);
    let mut bob = phone(&server.phone_url(), "15550000052", "Bob").await;
    let events = phone_events_for(&mut bob, Duration::from_millis(400)).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, wa_server::phone::PhoneEvent::Message(_))),
        "an expired message is not delivered: {events:?}"
    );
    // Media expire on the same clock (a second's granularity): 410, then 404 once swept.
    let mut statuses = Vec::new();
    for _ in 0..150 {
        let (status, _) = http("GET", &url, Vec::new()).await;
        statuses.push(status);
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    statuses.dedup();
    assert!(
        statuses == [404]
            || statuses == [410, 404]
            || statuses == [200, 410, 404]
            || statuses == [200, 404],
        "expired media: {statuses:?}"
    );
    server.shutdown().await;
}

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}
