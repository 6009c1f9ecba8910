//! Media: a file goes out encrypted from disk and streamed, with progress, and comes back
//! byte for byte (to memory and to a file); a file over the host's `max_bytes` is refused
//! before anything is read or uploaded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

mod support;

use support::{Net, wait};
use wa_client::{Error, Event, MediaKind};

/// Deterministic bytes that do not compress (xorshift).
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn uploads(status: &serde_json::Value) -> u64 {
    status["media"]["uploads"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_round_trips_with_progress() {
    let mut net = Net::start(|_| {}).await;
    let (phone_a, _pa) = net.phone(net.phone_config("15550000071", "Max")).await;
    let (phone_b, _pb) = net.phone(net.phone_config("15550000072", "Mia")).await;
    let (wa, _wa_events, _) = net.link(&phone_a, "web-a").await;
    let (wb, mut wb_events, _) = net.link(&phone_b, "web-b").await;

    let original = data(600 * 1024 + 7);
    let path = net.dir.path().join("report.bin");
    std::fs::write(&path, &original).unwrap();
    let mut seen = Vec::new();
    let id = wa
        .send_media_file(
            phone_b.user(),
            MediaKind::Document,
            &path,
            "application/octet-stream",
            None,
            |sent, total| seen.push((sent, total)),
        )
        .await
        .unwrap();
    let body = (original.len() as u64 / 16 + 1) * 16 + 10;
    assert!(
        seen.len() >= 2,
        "progress was reported {} times",
        seen.len()
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress goes forward: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(sent, total)| *total == body && *sent <= body)
    );
    assert_eq!(seen.last(), Some(&(body, body)));

    let info = wait(&mut wb_events, "the document", |e| match e {
        Event::Session(wa_session::Event::Message { info, .. })
            if info.key.id.as_deref() == Some(id.as_str()) =>
        {
            Some((**info).clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(wb.download_media(&info).await.unwrap(), original);
    let out = net.dir.path().join("downloads").join("report.bin");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let len = wb.download_media_to(&info, &out).await.unwrap();
    assert_eq!(len, original.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), original);
    // The sender's store keeps the message it sent.
    let sent = wa.history(phone_b.user(), 10).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].message.as_ref().and_then(|m| m.media()).is_some());

    // A tampered message (another key) downloads nothing and leaves no file.
    let mut forged = info.clone();
    if let Some(doc) = forged
        .message
        .as_mut()
        .and_then(|m| m.document_message.as_mut())
    {
        doc.media_key = Some(vec![1; 32]);
    }
    let bad = net.dir.path().join("downloads").join("forged.bin");
    assert!(matches!(
        wb.download_media_to(&forged, &bad).await,
        Err(Error::Media(_))
    ));
    assert!(!bad.exists());
    assert_eq!(support::files(out.parent().unwrap()).len(), 1);

    // Small media from memory still works.
    let small = data(1000);
    let id = wa
        .send_media(
            phone_b.user(),
            MediaKind::Image,
            &small,
            "image/png",
            Some("a caption"),
        )
        .await
        .unwrap();
    let info = wait(&mut wb_events, "the image", |e| match e {
        Event::Session(wa_session::Event::Message { info, .. })
            if info.key.id.as_deref() == Some(id.as_str()) =>
        {
            Some((**info).clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(support::text(&info).as_deref(), Some("a caption"));
    assert_eq!(wb.download_media(&info).await.unwrap(), small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_max_bytes_is_refused_before_upload() {
    const MAX: u64 = 64 * 1024;
    let mut net = Net::start(|config| config.core.limits.max_media_len = MAX).await;
    let (phone_a, _pa) = net.phone(net.phone_config("15550000081", "Ola")).await;
    let (phone_b, _pb) = net.phone(net.phone_config("15550000082", "Pia")).await;
    let (wa, _events, _) = net.link(&phone_a, "web-a").await;
    let before = uploads(&net.server.status().await);

    // A file whose encrypted body is one block over the limit.
    let path = net.dir.path().join("big.bin");
    std::fs::write(&path, data(MAX as usize - 10)).unwrap();
    let mut called = false;
    let result = wa
        .send_media_file(
            phone_b.user(),
            MediaKind::Document,
            &path,
            "application/octet-stream",
            None,
            |_, _| {
                called = true;
            },
        )
        .await;
    assert!(
        matches!(result, Err(Error::TooLarge { max: MAX, .. })),
        "{result:?}"
    );
    assert!(!called, "nothing was uploaded, so no progress");
    // A file of 4 GiB that is all hole: refused at once, by its size (encrypting it would
    // take minutes).
    let huge = net.dir.path().join("huge.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let started = std::time::Instant::now();
    let result = wa
        .send_media_file(
            phone_b.user(),
            MediaKind::Video,
            &huge,
            "video/mp4",
            None,
            |_, _| {},
        )
        .await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // In memory too.
    let result = wa
        .send_media(
            phone_b.user(),
            MediaKind::Image,
            &data(MAX as usize),
            "image/png",
            None,
        )
        .await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert_eq!(
        uploads(&net.server.status().await),
        before,
        "the server got no upload"
    );
    // Just under the limit goes through.
    std::fs::write(&path, data(MAX as usize - 10 - 16)).unwrap();
    wa.send_media_file(
        phone_b.user(),
        MediaKind::Document,
        &path,
        "application/octet-stream",
        None,
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(uploads(&net.server.status().await), before + 1);
}
