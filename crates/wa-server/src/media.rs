//! The media service: client-encrypted bodies uploaded with `mediaConn` auth, downloaded by
//! capability URL.
//!
//! `POST /mms/{type}/{token}?auth=<auth>`: the auth must come from a recent `mediaConn` (checked
//! with [`wa_server_core::media_uploader`] in a snapshot) or 401; `token` must be the URL-safe
//! base64 of the body's SHA-256 (else 400). The body streams to a temporary file in the data
//! directory (never whole in memory), at most `limits.max_media_len` bytes (413 as soon as it
//! is exceeded), is checked against the token, fsync'd and renamed into place, and then its
//! record is committed. The answer is `{"url": "http://<host>/d/<id>?cap=<cap>", "direct_path":
//! "/d/<id>?cap=<cap>"}`.
//!
//! `GET /d/{id}?cap=<cap>` (or `/d/{id}/{cap}`) streams the body from disk. The id is random
//! and the capability a random 128-bit token whose SHA-256 is stored with the record, so a
//! download URL cannot be guessed or derived from the content. An unknown id or a wrong
//! capability is 404; an expired upload (after [`Config::media_ttl`](crate::Config::media_ttl))
//! 410 until the sweeper deletes it, then 404.
//!
//! Records live in the store's media table under two key spaces: `r,<id>` → the record, and
//! `x,<expires>,<id>` → nothing (the expiry index the sweeper walks).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::io::AsyncWriteExt as _;
use wa_server_core::model::MediaRecord;
use wa_server_core::store::{KeyBuf, KeyReader, StoreError, Table};

use crate::http::{ConnCtx, error};
use crate::metrics::{Metrics, now};
use crate::server::Shared;
use crate::store;

/// The record kept per upload: the core's [`MediaRecord`] and the hash of its capability.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMedia {
    #[serde(flatten)]
    record: MediaRecord,
    /// SHA-256 of the capability, hex.
    cap: String,
}

fn record_key(id: &str) -> Vec<u8> {
    KeyBuf::new().str("r").str(id).build()
}

fn expiry_key(expires: u64, id: &str) -> Vec<u8> {
    KeyBuf::new().str("x").u64(expires).str(id).build()
}

fn cap_hash(cap: &str) -> String {
    hex::encode(Sha256::digest(cap.as_bytes()))
}

/// Whether `id` is a media id: 32 lowercase hex digits.
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The query of an upload.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    auth: Option<String>,
}

/// `POST /mms/{type}/{token}`.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    UrlPath((kind, token)): UrlPath<(String, String)>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    if kind.is_empty() || kind.len() > 16 || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
        return error(StatusCode::BAD_REQUEST, "bad media type");
    }
    let expected = URL_SAFE
        .decode(token.as_bytes())
        .or_else(|_| URL_SAFE_NO_PAD.decode(token.as_bytes()))
        .ok()
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok());
    let Some(expected) = expected else {
        return error(
            StatusCode::BAD_REQUEST,
            "the token is not a URL-safe base64 SHA-256",
        );
    };
    let Some(auth) = query.auth else {
        return error(StatusCode::UNAUTHORIZED, "missing auth (ask mediaConn)");
    };
    let uploader = {
        let store = Arc::clone(&shared.store);
        let at = now();
        tokio::task::spawn_blocking(move || {
            store::read(&*store, |txn| {
                wa_server_core::media_uploader(txn, &auth, at)
            })
        })
        .await
    };
    let uploader = match uploader {
        Ok(Ok(Some(uploader))) => uploader,
        Ok(Ok(None)) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unknown or expired auth (ask mediaConn)",
            );
        }
        Ok(Err(e)) => return store_failed(&e),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store failed"),
    };
    let mut id_bytes = [0u8; 16];
    let mut cap_bytes = [0u8; 16];
    if getrandom::fill(&mut id_bytes)
        .and(getrandom::fill(&mut cap_bytes))
        .is_err()
    {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
    }
    let id = hex::encode(id_bytes);
    let cap = URL_SAFE_NO_PAD.encode(cap_bytes);
    let file = shared.media_dir.join(&id);
    let part = file.with_extension("part");
    let max = shared.core.limits.max_media_len;
    let received = receive(body, &part, max).await;
    let (len, digest) = match received {
        Ok(done) => done,
        Err(refusal) => {
            let _ = tokio::fs::remove_file(&part).await;
            return refusal;
        }
    };
    if digest != expected {
        let _ = tokio::fs::remove_file(&part).await;
        return error(
            StatusCode::BAD_REQUEST,
            "the token does not match the body's SHA-256",
        );
    }
    let placed = {
        let (part, file) = (part.clone(), file.clone());
        tokio::task::spawn_blocking(move || place(&part, &file)).await
    };
    if !matches!(placed, Ok(Ok(()))) {
        tracing::error!(?placed, "storing a media file failed");
        let _ = tokio::fs::remove_file(&part).await;
        return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the body");
    }
    let created = now().as_secs();
    let expires = created.saturating_add(shared.config.media_ttl.as_secs());
    let stored = StoredMedia {
        record: MediaRecord {
            id: id.clone(),
            kind,
            len,
            created,
            expires,
            uploader,
        },
        cap: cap_hash(&cap),
    };
    let value = match serde_json::to_vec(&stored) {
        Ok(value) => value,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the record"),
    };
    let (key, index) = (record_key(&id), expiry_key(expires, &id));
    let written = store::write(&*shared.store, move |txn| {
        txn.put(Table::Media, &key, &value)?;
        txn.put(Table::Media, &index, &[])
    })
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&file).await;
        return store_failed(&e);
    }
    Metrics::inc(&shared.metrics.media_uploads);
    Metrics::add(&shared.metrics.media_bytes, len);
    tracing::debug!(%id, len, "media uploaded");
    let direct_path = format!("/d/{id}?cap={cap}");
    let body = wa_wire::json::MediaUploaded {
        url: format!("http://{}{direct_path}", shared.media_host),
        direct_path: Some(direct_path),
    }
    .to_json();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn store_failed(e: &StoreError) -> Response {
    tracing::error!(error = %e, "store failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "store failed")
}

/// Streams `body` into `part` (created 0600), at most `max` bytes: its length and SHA-256.
async fn receive(body: Body, part: &Path, max: u64) -> Result<(u64, [u8; 32]), Response> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut out = options.open(part).await.map_err(|e| {
        tracing::error!(error = %e, "cannot create a media file");
        error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the body")
    })?;
    let mut hasher = Sha256::new();
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if too_large(&e) {
                too_large_response(max)
            } else {
                error(StatusCode::BAD_REQUEST, "the body broke off")
            }
        })?;
        len = len.saturating_add(chunk.len() as u64);
        if len > max {
            return Err(too_large_response(max));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(|e| {
            tracing::error!(error = %e, "writing a media file failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the body")
        })?;
    }
    out.sync_all()
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the body"))?;
    Ok((len, hasher.finalize().into()))
}

fn too_large_response(max: u64) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {max} bytes"),
    )
}

/// Whether a body error is the body limit's.
fn too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Renames the fsync'd temporary file into place and syncs the directory.
fn place(part: &Path, file: &Path) -> std::io::Result<()> {
    std::fs::rename(part, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The query of a download.
#[derive(Debug, Deserialize)]
pub(crate) struct DownloadQuery {
    cap: Option<String>,
}

/// `GET /d/{id}?cap=...`.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    send(shared, ctx, id, query.cap.unwrap_or_default()).await
}

/// `GET /d/{id}/{cap}`.
pub(crate) async fn download_path(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<Arc<ConnCtx>>,
    UrlPath((id, cap)): UrlPath<(String, String)>,
) -> Response {
    send(shared, ctx, id, cap).await
}

async fn send(shared: Arc<Shared>, ctx: Arc<ConnCtx>, id: String, cap: String) -> Response {
    const NOT_FOUND: &str = "no such media";
    if !valid_id(&id) || cap.is_empty() || cap.len() > 64 {
        return error(StatusCode::NOT_FOUND, NOT_FOUND);
    }
    let record = {
        let store = Arc::clone(&shared.store);
        let key = record_key(&id);
        tokio::task::spawn_blocking(move || store::read(&*store, |txn| txn.get(Table::Media, &key)))
            .await
    };
    let stored: StoredMedia = match record {
        Ok(Ok(Some(bytes))) => match serde_json::from_slice(&bytes) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(%id, error = %e, "corrupt media record");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "corrupt record");
            }
        },
        Ok(Ok(None)) => return error(StatusCode::NOT_FOUND, NOT_FOUND),
        Ok(Err(e)) => return store_failed(&e),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "store failed"),
    };
    let right: bool = cap_hash(&cap)
        .as_bytes()
        .ct_eq(stored.cap.as_bytes())
        .into();
    if !right {
        return error(StatusCode::NOT_FOUND, NOT_FOUND);
    }
    if stored.record.expires <= now().as_secs() {
        return error(StatusCode::GONE, "media expired");
    }
    let Ok(permit) = Arc::clone(&shared.downloads).try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many downloads at once: try again",
        );
    };
    let file = match tokio::fs::File::open(shared.media_dir.join(&id)).await {
        Ok(file) => file,
        Err(_) => return error(StatusCode::NOT_FOUND, NOT_FOUND),
    };
    Metrics::inc(&shared.metrics.media_downloads);
    // The body must be sent within the media timeout, or the connection closes.
    ctx.finish_by(tokio::time::Instant::now() + shared.config.media_timeout);
    let guard = Finished {
        ctx,
        _permit: permit,
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 << 10).map(move |chunk| {
        let _ = &guard;
        chunk
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, stored.record.len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Held by a download's body: when the body is done (or dropped) the connection's deadline is
/// lifted and the download slot freed.
struct Finished {
    ctx: Arc<ConnCtx>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.ctx.finished();
    }
}

/// Media files left by uploads that never finished (a crash mid-upload): removed at start.
/// Only those last written more than `max_upload` ago (no upload runs longer): in a cluster
/// the directory is shared, and another node may be receiving one right now.
pub(crate) fn remove_partial_uploads(dir: &Path, max_upload: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age > max_upload);
        if path.extension().is_some_and(|e| e == "part") && stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Deletes expired media (records, index entries, files); how many.
pub(crate) async fn sweep(shared: &Shared, batch: usize) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let until = now().as_secs();
        let store = Arc::clone(&shared.store);
        let from = KeyBuf::new().str("x").build();
        let to = KeyBuf::new().str("x").u64(until.saturating_add(1)).build();
        let batch = batch.max(1);
        let due = tokio::task::spawn_blocking(move || {
            store::read(&*store, |txn| {
                txn.range(Table::Media, &from, &to, false, batch)
            })
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        let ids: Vec<(Vec<u8>, String)> = due
            .into_iter()
            .filter_map(|(key, _)| {
                let mut reader = KeyReader::new(&key);
                let id = reader
                    .str()
                    .and_then(|_| reader.u64())
                    .and_then(|_| reader.str())?;
                Some((key, id))
            })
            .collect();
        let count = ids.len();
        let keys: Vec<(Vec<u8>, String)> = ids.clone();
        store::write(&*shared.store, move |txn| {
            for (index, id) in &keys {
                txn.delete(Table::Media, index)?;
                txn.delete(Table::Media, &record_key(id))?;
            }
            Ok(())
        })
        .await?;
        for (_, id) in &ids {
            if valid_id(id) {
                let _ = tokio::fs::remove_file(media_path(&shared.media_dir, id)).await;
            }
        }
        total += count as u64;
        if count < batch {
            Metrics::add(&shared.metrics.media_expired, total);
            return Ok(total);
        }
    }
}

fn media_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys() {
        assert!(valid_id("0123456789abcdef0123456789abcdef"));
        assert!(!valid_id("../../../../etc/passwd"));
        assert!(!valid_id("0123456789ABCDEF0123456789ABCDEF"));
        // The expiry index sorts by time.
        assert!(expiry_key(5, "b") < expiry_key(6, "a"));
        assert!(expiry_key(u64::MAX, "z") < KeyBuf::new().str("y").build());
        assert!(record_key("a") > KeyBuf::new().str("r").build());
        assert_ne!(cap_hash("a"), cap_hash("b"));
    }

    #[test]
    fn records_keep_the_core_fields_flat() {
        let stored = StoredMedia {
            record: MediaRecord {
                id: "i".into(),
                kind: "image".into(),
                len: 3,
                created: 1,
                expires: 2,
                uploader: "15550000001".into(),
            },
            cap: "c".into(),
        };
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["uploader"], "15550000001");
        let back: MediaRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.len, 3);
    }
}
