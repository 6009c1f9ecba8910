//! Media over HTTP: encrypt and upload (PROTOCOL.md §6, the 2020 form), download and decrypt.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use wa_media::{Expected, MediaKey, MediaType};
use wa_session::{MediaConn, MediaKind, UploadedMedia};

use crate::Error;

fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Sticker => MediaType::Sticker,
        MediaKind::Video => MediaType::Video,
        MediaKind::Gif => MediaType::Gif,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Voice => MediaType::Voice,
        MediaKind::Document => MediaType::Document,
    }
}

/// The upload path's type segment.
fn upload_type(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image | MediaKind::Sticker => "image",
        MediaKind::Video | MediaKind::Gif => "video",
        MediaKind::Audio | MediaKind::Voice => "audio",
        MediaKind::Document => "document",
    }
}

/// Encrypts `data` with a fresh media key and uploads the body to the first media host.
pub(crate) async fn upload(
    http: &reqwest::Client,
    conn: &MediaConn,
    kind: MediaKind,
    data: &[u8],
    mimetype: &str,
    caption: Option<&str>,
) -> Result<UploadedMedia, Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Random(e.to_string()))?;
    let media_key = MediaKey::from_bytes(key);
    let (body, info) = wa_media::encrypt(&media_key, media_type(kind), data);
    let token = URL_SAFE.encode(info.file_enc_sha256);
    let host = conn
        .hosts
        .first()
        .ok_or_else(|| Error::Http("mediaConn lists no host".to_owned()))?;
    let url = format!(
        "http://{host}/mms/{}/{}?auth={}&token={}",
        upload_type(kind),
        percent(&token),
        percent(&conn.auth),
        percent(&token)
    );
    let response = http
        .post(&url)
        .body(body)
        .send()
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Http(format!("upload answered {status}")));
    }
    let reply: serde_json::Value = response
        .json()
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let url = reply
        .get("url")
        .and_then(|u| u.as_str())
        .ok_or_else(|| Error::Http("upload reply without url".to_owned()))?;
    Ok(UploadedMedia {
        kind,
        url: url.to_owned(),
        direct_path: reply
            .get("direct_path")
            .and_then(|p| p.as_str())
            .map(str::to_owned),
        mimetype: mimetype.to_owned(),
        media_key: key.to_vec(),
        file_sha256: info.file_sha256.to_vec(),
        file_enc_sha256: info.file_enc_sha256.to_vec(),
        file_length: info.file_length,
        caption: caption.map(str::to_owned),
        file_name: None,
        dimensions: None,
        seconds: None,
        streaming_sidecar: info.sidecar,
        jpeg_thumbnail: None,
    })
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn percent(text: &str) -> String {
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

/// The media fields of a message: URL, key, hashes and type.
struct MediaRef<'m> {
    url: &'m str,
    key: &'m [u8],
    file_sha256: Option<&'m [u8]>,
    file_enc_sha256: Option<&'m [u8]>,
    ty: MediaType,
}

fn media_ref(message: &wa_proto::Message) -> Result<MediaRef<'_>, Error> {
    macro_rules! from {
        ($m:expr, $ty:expr) => {
            MediaRef {
                url: $m.url.as_deref().ok_or(Error::NoMedia("no url"))?,
                key: $m
                    .media_key
                    .as_deref()
                    .ok_or(Error::NoMedia("no media key"))?,
                file_sha256: $m.file_sha256.as_deref(),
                file_enc_sha256: $m.file_enc_sha256.as_deref(),
                ty: $ty,
            }
        };
    }
    if let Some(m) = &message.image_message {
        return Ok(from!(m, MediaType::Image));
    }
    if let Some(m) = &message.video_message {
        return Ok(from!(
            m,
            if m.gif_playback == Some(true) {
                MediaType::Gif
            } else {
                MediaType::Video
            }
        ));
    }
    if let Some(m) = &message.audio_message {
        return Ok(from!(
            m,
            if m.ptt == Some(true) {
                MediaType::Voice
            } else {
                MediaType::Audio
            }
        ));
    }
    if let Some(m) = &message.document_message {
        return Ok(from!(m, MediaType::Document));
    }
    if let Some(m) = &message.sticker_message {
        return Ok(from!(m, MediaType::Sticker));
    }
    Err(Error::NoMedia("not a media message"))
}

/// Downloads a message's media and decrypts it: MAC, then `fileEncSha256`, then decryption,
/// then `fileSha256`.
pub(crate) async fn download(
    http: &reqwest::Client,
    info: &wa_proto::WebMessageInfo,
) -> Result<Vec<u8>, Error> {
    let message = info.message.as_ref().ok_or(Error::NoMedia("no message"))?;
    let media = media_ref(message)?;
    let key: [u8; 32] = media
        .key
        .try_into()
        .map_err(|_| Error::NoMedia("media key is not 32 bytes"))?;
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
    let response = http
        .get(media.url)
        .send()
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let status = response.status().as_u16();
    if status == 404 || status == 410 {
        return Err(Error::StaleMedia(status));
    }
    if !response.status().is_success() {
        return Err(Error::Http(format!("download answered {status}")));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    Ok(wa_media::decrypt(
        &MediaKey::from_bytes(key),
        media.ty,
        &expected,
        &body,
    )?)
}
