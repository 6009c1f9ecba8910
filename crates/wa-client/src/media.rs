//! Media over HTTP (PROTOCOL.md §6, the 2020 form): encrypt and upload, download and decrypt.
//!
//! The cryptography (`wa-media`) and file IO run on tokio's blocking pool, never on the async
//! task: bodies are encrypted from disk into a temporary file and uploaded streaming from it;
//! downloads are decrypted as they arrive, by a blocking task fed through a small channel, into
//! a sink that releases nothing before the MAC and the hashes check out.

use std::io::{BufReader, BufWriter, Write as _};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, watch};
use wa_media::{EncryptInfo, Expected, MediaKey, MediaType, Sink};
use wa_session::{MediaKind, UploadedMedia};

use crate::error::{Error, random32};

/// The largest body downloaded into memory by [`download_media`](crate::Client::download_media)
/// (use [`download_media_to`](crate::Client::download_media_to) for larger files).
pub const MAX_IN_MEMORY: u64 = 256 * 1024 * 1024;

/// Chunks in flight between the socket and the decrypting thread.
const DOWNLOAD_QUEUE: usize = 8;

/// A reqwest client on rustls with the `ring` provider (installed as the process default
/// unless the program installed one first).
pub(crate) fn http_client() -> reqwest::Client {
    // Err means a provider is already installed: that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The `wa-media` type (which key derivation) of a media kind.
pub(crate) fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Sticker => MediaType::Sticker,
        MediaKind::Video => MediaType::Video,
        MediaKind::Gif => MediaType::Gif,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Voice => MediaType::Voice,
        // Documents, and any kind newer than this code.
        _ => MediaType::Document,
    }
}

/// The length of the body (`enc ‖ mac`) of a plaintext of `len` bytes.
pub(crate) fn body_len(len: u64) -> u64 {
    (len / 16 + 1) * 16 + 10
}

/// Where and how to upload: a host of a media connection and its auth.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) auth: String,
    pub(crate) max_bytes: Option<u64>,
}

impl Target {
    pub(crate) fn new(
        hosts: &[String],
        auth: &str,
        max_bytes: Option<u64>,
    ) -> Result<Target, Error> {
        let host = hosts
            .first()
            .ok_or(Error::UnexpectedReply("a media connection with a host"))?;
        Ok(Target {
            host: host.clone(),
            auth: auth.to_owned(),
            max_bytes,
        })
    }

    /// Refuses a plaintext of `len` bytes whose body the host would not take.
    pub(crate) fn check(&self, len: u64) -> Result<(), Error> {
        match self.max_bytes {
            Some(max) if body_len(len) > max => Err(Error::TooLarge {
                len: body_len(len),
                max,
            }),
            _ => Ok(()),
        }
    }

    fn url(&self, ty: MediaType, file_enc_sha256: &[u8; 32]) -> String {
        let token = URL_SAFE.encode(file_enc_sha256);
        format!(
            "http://{}/mms/{}/{}?auth={}",
            self.host,
            ty.name(),
            percent(&token),
            percent(&self.auth)
        )
    }
}

/// Where an uploaded body is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Uploaded {
    /// The download URL (with its capability).
    pub url: String,
    /// The path on the media hosts.
    pub direct_path: Option<String>,
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub(crate) fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn read_upload_reply(response: reqwest::Response) -> Result<Uploaded, Error> {
    let status = response.status();
    if !status.is_success() {
        return Err(Error::HttpStatus {
            what: "the media upload",
            status: status.as_u16(),
        });
    }
    // The answer is a small JSON object: cap what we read of it.
    let bytes = read_limited(response, 64 * 1024).await?;
    let reply: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| Error::UnexpectedReply("a JSON upload answer"))?;
    let reply = wa_wire::json::MediaUploaded::from_value(&reply)
        .map_err(|_| Error::UnexpectedReply("an upload answer with a url"))?;
    Ok(Uploaded {
        url: reply.url,
        direct_path: reply.direct_path,
    })
}

/// Uploads a body held in memory (already encrypted).
pub(crate) async fn upload_body(
    http: &reqwest::Client,
    target: &Target,
    ty: MediaType,
    body: Vec<u8>,
) -> Result<Uploaded, Error> {
    if let Some(max) = target.max_bytes.filter(|max| body.len() as u64 > *max) {
        return Err(Error::TooLarge {
            len: body.len() as u64,
            max,
        });
    }
    let hash = tokio::task::spawn_blocking({
        let body = body.clone();
        move || sha256(&body)
    })
    .await?;
    let response = http.post(target.url(ty, &hash)).body(body).send().await?;
    read_upload_reply(response).await
}

/// SHA-256 of a body: its upload token (`fileEncSha256`).
fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// Encrypts `data` with a fresh key (off the async task) and uploads it.
pub(crate) async fn encrypt_and_upload(
    http: &reqwest::Client,
    target: &Target,
    ty: MediaType,
    data: Vec<u8>,
) -> Result<(MediaKey, EncryptInfo, Uploaded), Error> {
    target.check(data.len() as u64)?;
    let key = random32()?;
    let (body, info) = tokio::task::spawn_blocking(move || {
        wa_media::encrypt(&MediaKey::from_bytes(key), ty, &data)
    })
    .await?;
    let uploaded = upload_body(http, target, ty, body).await?;
    Ok((MediaKey::from_bytes(key), info, uploaded))
}

/// Encrypts the file at `path` (streaming, off the async task) into a temporary file and
/// uploads that, streaming, reporting the bytes sent through `progress`.
pub(crate) async fn encrypt_and_upload_file(
    http: &reqwest::Client,
    target: &Target,
    ty: MediaType,
    path: &Path,
    progress: watch::Sender<u64>,
) -> Result<(MediaKey, EncryptInfo, Uploaded), Error> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(Error::io(path))?
        .len();
    // Refused before a byte of the file is read.
    target.check(len)?;
    let key = random32()?;
    let source = path.to_owned();
    let (temp, info) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let input = std::fs::File::open(&source).map_err(Error::io(&source))?;
        let temp = tempfile::NamedTempFile::new().map_err(Error::io(std::env::temp_dir()))?;
        let temp_path = temp.path().to_owned();
        let mut output = BufWriter::new(temp.as_file());
        let info = wa_media::encrypt_stream(
            &MediaKey::from_bytes(key),
            ty,
            BufReader::new(input),
            &mut output,
        )
        .map_err(Error::io(&temp_path))?;
        output.flush().map_err(Error::io(&temp_path))?;
        drop(output);
        Ok((temp, info))
    })
    .await??;
    target.check(info.file_length)?;
    let file = tokio::fs::File::open(temp.path())
        .await
        .map_err(Error::io(temp.path()))?;
    let mut sent = 0u64;
    let stream = tokio_util::io::ReaderStream::new(file).map(move |chunk| {
        if let Ok(chunk) = &chunk {
            sent += chunk.len() as u64;
            progress.send_replace(sent);
        }
        chunk
    });
    let response = http
        .post(target.url(ty, &info.file_enc_sha256))
        .header(reqwest::header::CONTENT_LENGTH, info.body_length)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?;
    let uploaded = read_upload_reply(response).await?;
    drop(temp);
    Ok((MediaKey::from_bytes(key), info, uploaded))
}

/// What a media message needs to describe an upload.
pub(crate) fn uploaded_media(
    kind: MediaKind,
    key: &MediaKey,
    info: &EncryptInfo,
    uploaded: Uploaded,
    mimetype: &str,
    caption: Option<&str>,
) -> UploadedMedia {
    UploadedMedia {
        kind,
        url: uploaded.url,
        direct_path: uploaded.direct_path,
        mimetype: mimetype.to_owned(),
        media_key: key.as_bytes().to_vec(),
        file_sha256: info.file_sha256.to_vec(),
        file_enc_sha256: info.file_enc_sha256.to_vec(),
        file_length: info.file_length,
        caption: caption.map(str::to_owned),
        file_name: None,
        dimensions: None,
        seconds: None,
        streaming_sidecar: info.sidecar.clone(),
        jpeg_thumbnail: None,
    }
}

/// What a download needs: where, the key, what to check, and how long the body may be.
pub(crate) struct Source {
    pub(crate) url: String,
    pub(crate) key: [u8; 32],
    pub(crate) ty: MediaType,
    pub(crate) expected: Expected,
    pub(crate) max_body: u64,
}

impl Source {
    /// The media of a message.
    pub(crate) fn of_message(info: &wa_proto::WebMessageInfo, cap: u64) -> Result<Source, Error> {
        let message = info.message.as_ref().ok_or(Error::NoMedia("no message"))?;
        let media = message
            .media()
            .ok_or(Error::NoMedia("not a media message"))?;
        let url = media.url.ok_or(Error::NoMedia("no url"))?;
        let key: [u8; 32] = media
            .media_key
            .and_then(|k| k.try_into().ok())
            .ok_or(Error::NoMedia("no 32-byte media key"))?;
        let mut expected = Expected::new();
        if let Some(hash) = media.file_sha256.and_then(|h| <[u8; 32]>::try_from(h).ok()) {
            expected = expected.file_sha256(hash);
        }
        if let Some(hash) = media
            .file_enc_sha256
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
        {
            expected = expected.file_enc_sha256(hash);
        }
        // A sender's URL may not make us take more than the message says.
        let max_body = media.file_length.map_or(cap, |n| body_len(n).min(cap));
        Ok(Source {
            url: url.to_owned(),
            key,
            ty: media_type(media.kind),
            expected,
            max_body,
        })
    }
}

async fn get(http: &reqwest::Client, source: &Source) -> Result<reqwest::Response, Error> {
    let response = http.get(&source.url).send().await?;
    let status = response.status().as_u16();
    if status == 404 || status == 410 {
        return Err(Error::StaleMedia(status));
    }
    if !response.status().is_success() {
        return Err(Error::HttpStatus {
            what: "the media download",
            status,
        });
    }
    if let Some(len) = response.content_length().filter(|n| *n > source.max_body) {
        return Err(Error::TooLarge {
            len,
            max: source.max_body,
        });
    }
    Ok(response)
}

/// Reads a response body of at most `max` bytes.
async fn read_limited(mut response: reqwest::Response, max: u64) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let len = body.len() as u64 + chunk.len() as u64;
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Downloads a whole body into memory and decrypts it off the async task.
pub(crate) async fn download(http: &reqwest::Client, source: Source) -> Result<Vec<u8>, Error> {
    let response = get(http, &source).await?;
    let body = read_limited(response, source.max_body).await?;
    let plain = tokio::task::spawn_blocking(move || {
        wa_media::decrypt(
            &MediaKey::from_bytes(source.key),
            source.ty,
            &source.expected,
            &body,
        )
    })
    .await??;
    Ok(plain)
}

/// Downloads into `sink`, decrypting on a blocking task as the body arrives; the sink is
/// committed only if every check passes.
pub(crate) async fn download_into<S>(
    http: &reqwest::Client,
    source: Source,
    sink: S,
) -> Result<wa_media::Decrypted<S::Output>, Error>
where
    S: Sink + Send + 'static,
    S::Output: Send + 'static,
{
    let mut response = get(http, &source).await?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(DOWNLOAD_QUEUE);
    let (key, ty, expected) = (source.key, source.ty, source.expected);
    let decrypting = tokio::task::spawn_blocking(move || {
        let mut decryptor =
            wa_media::Decryptor::new(&MediaKey::from_bytes(key), ty, &expected, sink);
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = decryptor.update(&chunk) {
                decryptor.abort();
                return Err(e);
            }
        }
        decryptor.finish()
    });
    let mut len = 0u64;
    let fed: Result<(), Error> = async {
        while let Some(chunk) = response.chunk().await? {
            len += chunk.len() as u64;
            if len > source.max_body {
                return Err(Error::TooLarge {
                    len,
                    max: source.max_body,
                });
            }
            if tx.send(chunk).await.is_err() {
                // The decryptor stopped (an error it reports below).
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    match fed {
        Ok(()) => Ok(decrypting.await??),
        Err(e) => {
            // Whatever the decryptor got is aborted when its task sees the channel close
            // before the body's end (the MAC check fails and the sink is dropped).
            let _ = decrypting.await;
            Err(e)
        }
    }
}

/// The default place for [`download_into`]'s file sink: the target path.
pub(crate) fn file_sink(path: &Path) -> Result<wa_media::FileSink, Error> {
    wa_media::FileSink::create(path).map_err(Error::io(path))
}

/// Runs `progress` with every new count `sent` reports until `work` finishes.
pub(crate) async fn with_progress<T>(
    work: impl std::future::Future<Output = T>,
    mut sent: watch::Receiver<u64>,
    total: impl Fn() -> u64,
    progress: &mut (impl FnMut(u64, u64) + Send),
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            changed = sent.changed() => {
                if changed.is_err() {
                    return work.await;
                }
                let n = *sent.borrow_and_update();
                progress(n, total());
            }
        }
    }
}

/// The message that describes an uploaded file (what the session's `send_media` builds, so
/// that the copy the client stores is the message it sent).
pub(crate) fn media_message(media: &UploadedMedia) -> wa_proto::Message {
    use wa_proto::{AudioMessage, DocumentMessage, ImageMessage, StickerMessage, VideoMessage};
    let mut message = wa_proto::Message::default();
    let (url, mimetype) = (Some(media.url.clone()), Some(media.mimetype.clone()));
    let (key, sha, enc_sha) = (
        Some(media.media_key.clone()),
        Some(media.file_sha256.clone()),
        Some(media.file_enc_sha256.clone()),
    );
    let (length, path) = (Some(media.file_length), media.direct_path.clone());
    match media.kind {
        MediaKind::Image => {
            message.image_message = Some(Box::new(ImageMessage {
                url,
                mimetype,
                caption: media.caption.clone(),
                file_sha256: sha,
                file_length: length,
                media_key: key,
                file_enc_sha256: enc_sha,
                direct_path: path,
                jpeg_thumbnail: media.jpeg_thumbnail.clone(),
                ..Default::default()
            }));
        }
        MediaKind::Sticker => {
            message.sticker_message = Some(Box::new(StickerMessage {
                url,
                mimetype,
                file_sha256: sha,
                file_length: length,
                media_key: key,
                file_enc_sha256: enc_sha,
                direct_path: path,
                ..Default::default()
            }));
        }
        MediaKind::Video | MediaKind::Gif => {
            message.video_message = Some(Box::new(VideoMessage {
                url,
                mimetype,
                caption: media.caption.clone(),
                file_sha256: sha,
                file_length: length,
                media_key: key,
                file_enc_sha256: enc_sha,
                direct_path: path,
                streaming_sidecar: media.streaming_sidecar.clone(),
                gif_playback: Some(media.kind == MediaKind::Gif),
                ..Default::default()
            }));
        }
        MediaKind::Audio | MediaKind::Voice => {
            message.audio_message = Some(Box::new(AudioMessage {
                url,
                mimetype,
                file_sha256: sha,
                file_length: length,
                ptt: Some(media.kind == MediaKind::Voice),
                media_key: key,
                file_enc_sha256: enc_sha,
                direct_path: path,
                streaming_sidecar: media.streaming_sidecar.clone(),
                ..Default::default()
            }));
        }
        _ => {
            message.document_message = Some(Box::new(DocumentMessage {
                url,
                mimetype,
                title: media.file_name.clone(),
                file_sha256: sha,
                file_length: length,
                media_key: key,
                file_name: media.file_name.clone(),
                file_enc_sha256: enc_sha,
                direct_path: path,
                jpeg_thumbnail: media.jpeg_thumbnail.clone(),
                ..Default::default()
            }));
        }
    }
    message
}
