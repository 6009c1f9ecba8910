//! Small accessors over the generated [`Message`]: its text, and the attachment it points to.

use crate::{
    AudioMessage, ContextInfo, DocumentMessage, ImageMessage, Message, StickerMessage, VideoMessage,
};

impl Message {
    /// The text a reader sees: the conversation text, the text of an extended text message, or
    /// the caption of an image or video, in that order. `None` when there is none (e.g. a
    /// sticker, or an image without caption).
    pub fn text(&self) -> Option<&str> {
        self.conversation
            .as_deref()
            .or_else(|| self.extended_text_message.as_ref()?.text.as_deref())
            .or_else(|| self.image_message.as_ref()?.caption.as_deref())
            .or_else(|| self.video_message.as_ref()?.caption.as_deref())
    }

    /// The attachment of an image, video (or GIF), audio (or voice note), document or sticker
    /// message, with what a client needs to download and decrypt it. `None` for other messages.
    pub fn media(&self) -> Option<Media<'_>> {
        if let Some(m) = &self.image_message {
            return Some(Media::image(m));
        }
        if let Some(m) = &self.video_message {
            return Some(Media::video(m));
        }
        if let Some(m) = &self.audio_message {
            return Some(Media::audio(m));
        }
        if let Some(m) = &self.document_message {
            return Some(Media::document(m));
        }
        self.sticker_message.as_deref().map(Media::sticker)
    }

    /// The quote, mentions and forwarding information of whichever content is set.
    pub fn context_info(&self) -> Option<&ContextInfo> {
        let info = if let Some(m) = &self.extended_text_message {
            &m.context_info
        } else if let Some(m) = &self.image_message {
            &m.context_info
        } else if let Some(m) = &self.video_message {
            &m.context_info
        } else if let Some(m) = &self.audio_message {
            &m.context_info
        } else if let Some(m) = &self.document_message {
            &m.context_info
        } else if let Some(m) = &self.sticker_message {
            &m.context_info
        } else if let Some(m) = &self.location_message {
            &m.context_info
        } else if let Some(m) = &self.contact_message {
            &m.context_info
        } else if let Some(m) = &self.contacts_array_message {
            &m.context_info
        } else {
            return None;
        };
        info.as_deref()
    }
}

/// Which kind of attachment a [`Media`] is. The names match `wa_media::MediaType`, which picks the
/// key derivation (image and sticker share the image keys, GIF the video keys, voice notes the
/// audio keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// `imageMessage`.
    Image,
    /// `stickerMessage`.
    Sticker,
    /// `videoMessage` without `gifPlayback`.
    Video,
    /// `videoMessage` with `gifPlayback`.
    Gif,
    /// `audioMessage` without `ptt`.
    Audio,
    /// `audioMessage` with `ptt`: a voice note.
    Voice,
    /// `documentMessage`.
    Document,
}

/// The fields of a media message that locate, decrypt and verify its file, borrowed from the
/// message. Each is `None` when the message lacks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Media<'a> {
    /// The kind of attachment.
    pub kind: MediaKind,
    /// The download URL.
    pub url: Option<&'a str>,
    /// The path on the media servers, for building a URL when `url` is stale.
    pub direct_path: Option<&'a str>,
    /// The MIME type of the plaintext.
    pub mimetype: Option<&'a str>,
    /// The 32-byte media key.
    pub media_key: Option<&'a [u8]>,
    /// SHA-256 of the plaintext.
    pub file_sha256: Option<&'a [u8]>,
    /// SHA-256 of the downloaded body (ciphertext and MAC).
    pub file_enc_sha256: Option<&'a [u8]>,
    /// Length of the plaintext in bytes.
    pub file_length: Option<u64>,
    /// The streaming sidecar (video and audio only).
    pub streaming_sidecar: Option<&'a [u8]>,
}

impl<'a> Media<'a> {
    fn image(m: &'a ImageMessage) -> Self {
        Self {
            kind: MediaKind::Image,
            url: m.url.as_deref(),
            direct_path: m.direct_path.as_deref(),
            mimetype: m.mimetype.as_deref(),
            media_key: m.media_key.as_deref(),
            file_sha256: m.file_sha256.as_deref(),
            file_enc_sha256: m.file_enc_sha256.as_deref(),
            file_length: m.file_length,
            streaming_sidecar: None,
        }
    }

    fn video(m: &'a VideoMessage) -> Self {
        Self {
            kind: if m.gif_playback() {
                MediaKind::Gif
            } else {
                MediaKind::Video
            },
            url: m.url.as_deref(),
            direct_path: m.direct_path.as_deref(),
            mimetype: m.mimetype.as_deref(),
            media_key: m.media_key.as_deref(),
            file_sha256: m.file_sha256.as_deref(),
            file_enc_sha256: m.file_enc_sha256.as_deref(),
            file_length: m.file_length,
            streaming_sidecar: m.streaming_sidecar.as_deref(),
        }
    }

    fn audio(m: &'a AudioMessage) -> Self {
        Self {
            kind: if m.ptt() {
                MediaKind::Voice
            } else {
                MediaKind::Audio
            },
            url: m.url.as_deref(),
            direct_path: m.direct_path.as_deref(),
            mimetype: m.mimetype.as_deref(),
            media_key: m.media_key.as_deref(),
            file_sha256: m.file_sha256.as_deref(),
            file_enc_sha256: m.file_enc_sha256.as_deref(),
            file_length: m.file_length,
            streaming_sidecar: m.streaming_sidecar.as_deref(),
        }
    }

    fn document(m: &'a DocumentMessage) -> Self {
        Self {
            kind: MediaKind::Document,
            url: m.url.as_deref(),
            direct_path: m.direct_path.as_deref(),
            mimetype: m.mimetype.as_deref(),
            media_key: m.media_key.as_deref(),
            file_sha256: m.file_sha256.as_deref(),
            file_enc_sha256: m.file_enc_sha256.as_deref(),
            file_length: m.file_length,
            streaming_sidecar: None,
        }
    }

    fn sticker(m: &'a StickerMessage) -> Self {
        Self {
            kind: MediaKind::Sticker,
            url: m.url.as_deref(),
            direct_path: m.direct_path.as_deref(),
            mimetype: m.mimetype.as_deref(),
            media_key: m.media_key.as_deref(),
            file_sha256: m.file_sha256.as_deref(),
            file_enc_sha256: m.file_enc_sha256.as_deref(),
            file_length: m.file_length,
            streaming_sidecar: None,
        }
    }
}
