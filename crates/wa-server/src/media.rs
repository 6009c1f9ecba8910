//! The media service: encrypted bodies uploaded with `mediaConn` auth and downloaded by URL
//! (PROTOCOL.md §6, the 2020 form).
//!
//! `POST /mms/<type>/<token>?auth=<auth>&token=<token>` with the raw body (`enc ‖ mac`):
//! the auth must come from a recent `mediaConn`, the token must be the URL-safe base64 of the
//! body's SHA-256 (else 400), and the answer is `{"url":"http://<host>/d/<id>","direct_path":"/d/<id>"}`.
//! `GET /d/<id>` returns the body until the media expires (410), then 404 once swept.
//!
//! The server never sees plaintext media: bodies are end-to-end encrypted by the clients.
//! Each body is written to a temporary file, fsync'd and renamed into place before its record
//! is committed, so a recorded media file is always whole.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::model::{self, MediaRecord, media_key};
use crate::shared::{Metrics, Shared, now_secs};
use crate::store::{self, Table};

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A response with a body and a content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// A JSON error response `{"status":N,"error":"..."}`.
pub(crate) fn error(status: StatusCode, reason: &str) -> HttpResponse {
    let body = json!({"status": status.as_u16(), "error": reason}).to_string();
    respond(status, "application/json", body)
}

/// Decodes `%XX` escapes (and nothing else); `None` for a bad escape or non-UTF-8 result.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(v))
}

fn path_of(shared: &Shared, id: &str) -> PathBuf {
    shared.media_dir.join(id)
}

/// Whether `id` is a media id: 32 lowercase hex digits.
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `POST /mms/<type>/<token>`.
pub(crate) async fn upload(
    shared: &Shared,
    path: &str,
    query: Option<&str>,
    body: Incoming,
) -> HttpResponse {
    let mut parts = path.trim_start_matches("/mms/").splitn(2, '/');
    let (Some(kind), Some(token)) = (parts.next(), parts.next()) else {
        return error(StatusCode::NOT_FOUND, "expected /mms/<type>/<token>");
    };
    if kind.is_empty() || kind.len() > 16 || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return error(StatusCode::BAD_REQUEST, "bad media type");
    }
    let Some(uploader) = query_param(query, "auth").and_then(|a| shared.hub.media_auth(&a)) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or expired auth (ask mediaConn)",
        );
    };
    let Some(token) = percent_decode(token) else {
        return error(StatusCode::BAD_REQUEST, "bad token");
    };
    let expected = URL_SAFE
        .decode(token.as_bytes())
        .or_else(|_| URL_SAFE_NO_PAD.decode(token.as_bytes()))
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
    let Some(expected) = expected else {
        return error(StatusCode::BAD_REQUEST, "the token is not a base64 SHA-256");
    };
    let max = shared.config.limits.max_media_len;
    let body = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large or broken"),
    };
    let digest: [u8; 32] = Sha256::digest(&body).into();
    if digest != expected {
        return error(
            StatusCode::BAD_REQUEST,
            "the token does not match the body's SHA-256",
        );
    }
    let id = hex::encode(shared.random::<16>());
    let file = path_of(shared, &id);
    let len = body.len() as u64;
    let written = tokio::task::spawn_blocking(move || write_durably(&file, &body)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!(?written, "writing media failed");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the body");
    }
    let now = now_secs();
    let record = MediaRecord {
        id: id.clone(),
        kind: kind.to_owned(),
        sha256: hex::encode(digest),
        len,
        created: now,
        expires: now.saturating_add(shared.config.media_ttl.as_secs()),
        uploader,
    };
    let key = media_key(&id);
    if let Err(e) = store::write(&*shared.store, move |txn| {
        model::put_json(txn, Table::Media, &key, &record)
    })
    .await
    {
        tracing::error!(error = %e, "recording media failed");
        let _ = tokio::fs::remove_file(path_of(shared, &id)).await;
        return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the body");
    }
    Metrics::inc(&shared.metrics.media_uploads);
    Metrics::add(&shared.metrics.media_bytes, len);
    tracing::debug!(%id, len, kind, "media uploaded");
    let body = json!({
        "url": format!("http://{}/d/{id}", shared.media_host),
        "direct_path": format!("/d/{id}"),
    });
    respond(StatusCode::OK, "application/json", body.to_string())
}

fn write_durably(path: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("part");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `GET /d/<id>`.
pub(crate) async fn download(shared: &Shared, path: &str) -> HttpResponse {
    let id = path.trim_start_matches("/d/");
    if !valid_id(id) {
        return error(StatusCode::NOT_FOUND, "no such media");
    }
    let key = media_key(id);
    let record = match store::read(&*shared.store, |txn| {
        model::get_json::<MediaRecord>(txn, Table::Media, &key)
    }) {
        Ok(Some(record)) => record,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such media"),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store failed"),
    };
    if record.expires <= now_secs() {
        return error(StatusCode::GONE, "media expired");
    }
    match tokio::fs::read(path_of(shared, id)).await {
        Ok(body) => {
            Metrics::inc(&shared.metrics.media_downloads);
            respond(StatusCode::OK, "application/octet-stream", body)
        }
        Err(_) => error(StatusCode::NOT_FOUND, "no such media"),
    }
}

/// Deletes expired media (records and files); how many.
pub(crate) async fn sweep(shared: &Shared) -> Result<usize, store::StoreError> {
    let now = now_secs();
    let expired: Vec<String> = store::read(&*shared.store, |txn| {
        let all = txn.range(Table::Media, &[], &[0xFF], false, 100_000)?;
        let mut out = Vec::new();
        for (_, value) in all {
            let record: MediaRecord = model::decode_json(Table::Media, &value)?;
            if record.expires <= now {
                out.push(record.id);
            }
        }
        Ok(out)
    })?;
    if expired.is_empty() {
        return Ok(0);
    }
    let ids = expired.clone();
    store::write(&*shared.store, move |txn| {
        for id in &ids {
            txn.delete(Table::Media, &media_key(id))?;
        }
        Ok(())
    })
    .await?;
    for id in &expired {
        let _ = tokio::fs::remove_file(path_of(shared, id)).await;
    }
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%3Db%2f").as_deref(), Some("a=b/"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(
            query_param(Some("auth=x%3D&token=t"), "auth").as_deref(),
            Some("x=")
        );
        assert_eq!(query_param(Some("token=t"), "auth"), None);
        assert!(valid_id("0123456789abcdef0123456789abcdef"));
        assert!(!valid_id("../etc/passwd"));
    }
}
