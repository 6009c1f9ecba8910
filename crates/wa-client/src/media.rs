//! Media over HTTP: encrypt and upload (PROTOCOL.md §6, the 2020 form), download and decrypt.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use wa_media::{Expected, MediaKey, MediaType};
use wa_session::{MediaConn, MediaKind, UploadedMedia};

use crate::Error;

/// The `wa-media` type (which key derivation) of a media kind.
fn media_type(kind: MediaKind) -> MediaType {
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

/// The upload path's type segment.
fn upload_type(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image | MediaKind::Sticker => "image",
        MediaKind::Video | MediaKind::Gif => "video",
        MediaKind::Audio | MediaKind::Voice => "audio",
        _ => "document",
    }
}

/// The HTTP client for media: plain HTTP, and HTTPS over rustls with the `ring` provider, the
/// server's certificate checked against the operating system's trust store
/// (`rustls-platform-verifier`). On a system without CA certificates the client is still built:
/// plain HTTP works and HTTPS fails certificate verification (a warning says why).
pub(crate) fn http_client() -> Result<reqwest::Client, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Http(format!("TLS setup: {e}")))?;
    let builder = match rustls_platform_verifier::Verifier::new(provider) {
        Ok(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier)),
        Err(e) => {
            tracing::warn!("no system CA certificates ({e}): https media transfers will fail");
            builder.with_root_certificates(rustls::RootCertStore::empty())
        }
    };
    let mut tls = builder.with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| Error::Http(format!("HTTP client: {e}")))
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

/// The largest media body downloaded into memory (WhatsApp's own cap was 2 GiB for
/// documents; a buffered download of a whole body should stay far below).
const MAX_MEDIA: u64 = 512 * 1024 * 1024;

/// Downloads a message's media and decrypts it: MAC, then `fileEncSha256`, then decryption,
/// then `fileSha256`.
pub(crate) async fn download(
    http: &reqwest::Client,
    info: &wa_proto::WebMessageInfo,
) -> Result<Vec<u8>, Error> {
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
    let response = http
        .get(url)
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
    // The body is the ciphertext (the plaintext padded to a block: at most 16 bytes more) and
    // the 10-byte MAC: a sender's URL may not make us buffer more than that.
    let limit = media
        .file_length
        .map_or(MAX_MEDIA, |n| n.saturating_add(16 + 10).min(MAX_MEDIA));
    let too_large = || {
        Error::Http(format!(
            "media body is larger than the {limit} bytes expected"
        ))
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::Http(e.to_string()))?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(wa_media::decrypt(
        &MediaKey::from_bytes(key),
        media_type(media.kind),
        &expected,
        &body,
    )?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is a failed test")]

    use tokio::io::AsyncReadExt as _;

    /// An `https` media URL is fetched over TLS: the first bytes the server sees are a TLS
    /// handshake record holding a ClientHello (not a plain HTTP request, and no "scheme not
    /// supported" error before anything is sent).
    #[tokio::test]
    async fn https_urls_speak_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 6];
            socket.read_exact(&mut head).await.unwrap();
            head
        });
        let http = super::http_client().unwrap();
        let result = http
            .get(format!("https://127.0.0.1:{port}/d/x"))
            .send()
            .await;
        let head = server.await.unwrap();
        // Record type 22 (handshake), legacy version 3.x, then a length; handshake type 1.
        assert_eq!((head[0], head[1]), (0x16, 0x03), "{head:02x?}");
        assert_eq!(head[5], 0x01, "{head:02x?}");
        // The server hung up in the middle of the handshake.
        assert!(result.is_err());
    }
}
