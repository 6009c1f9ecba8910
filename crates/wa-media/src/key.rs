//! Media types, media keys and their expansion into the IV, cipher, MAC and ref keys.

use std::fmt;
use std::str::FromStr;

use aes::Aes256;
use aes::cipher::KeyInit;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::UnknownMediaType;
use crate::{BLOCK_LEN, KEY_LEN, MAC_LEN};

/// What kind of media a file is: it selects the HKDF info string, so decrypting with the wrong
/// type fails the MAC check just like a wrong key.
///
/// Types that share an info string (image and sticker, video and gif, audio and voice note)
/// encrypt identically; they are kept apart because WhatsApp sends them as different messages
/// and only some of them are streamable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// A picture (`imageMessage`).
    Image,
    /// A sticker: encrypted like an image.
    Sticker,
    /// A video (`videoMessage`). Streamable.
    Video,
    /// A GIF, sent as a video with `gifPlayback`. Streamable.
    Gif,
    /// An audio file (`audioMessage`). Streamable.
    Audio,
    /// A voice note (`audioMessage` with `ptt`): encrypted like audio. Streamable.
    Voice,
    /// A document (`documentMessage`).
    Document,
    /// A history sync blob.
    History,
}

impl MediaType {
    /// Every media type, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Image,
        Self::Sticker,
        Self::Video,
        Self::Gif,
        Self::Audio,
        Self::Voice,
        Self::Document,
        Self::History,
    ];

    /// The HKDF info string the media key is expanded with.
    pub fn hkdf_info(self) -> &'static [u8] {
        match self {
            Self::Image | Self::Sticker => b"WhatsApp Image Keys",
            Self::Video | Self::Gif => b"WhatsApp Video Keys",
            Self::Audio | Self::Voice => b"WhatsApp Audio Keys",
            Self::Document => b"WhatsApp Document Keys",
            Self::History => b"WhatsApp History Keys",
        }
    }

    /// Whether messages of this type carry a streaming sidecar (video and audio, including GIFs
    /// and voice notes), so that [`Encryptor`](crate::Encryptor) computes one by default.
    pub fn is_streamable(self) -> bool {
        matches!(self, Self::Video | Self::Gif | Self::Audio | Self::Voice)
    }

    /// The lower-case name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Sticker => "sticker",
            Self::Video => "video",
            Self::Gif => "gif",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Document => "document",
            Self::History => "history",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MediaType {
    type Err = UnknownMediaType;

    /// Parses `image`, `sticker`, `video`, `gif`, `audio`, `ptt` or `voice`, `document`,
    /// `history`, ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let found = Self::ALL
            .into_iter()
            .find(|ty| ty.name().eq_ignore_ascii_case(name));
        match found {
            Some(ty) => Ok(ty),
            None if name.eq_ignore_ascii_case("ptt") => Ok(Self::Voice),
            None => Err(UnknownMediaType::new(name)),
        }
    }
}

/// The 32-byte secret of one media file (`mediaKey` in the message).
///
/// Zeroized on drop; `Debug` does not print it. There is deliberately no `PartialEq`: comparing
/// secrets is best done in constant time, on [`as_bytes`](Self::as_bytes), if at all.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey([u8; KEY_LEN]);

impl MediaKey {
    /// Wraps key bytes. A new key must be 32 bytes from a cryptographically secure RNG.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes (to put into a message).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Expands the key for `ty`: `HKDF-SHA256(key, salt = 32 zero bytes, info, 112 bytes)`.
    #[expect(
        clippy::expect_used,
        reason = "HKDF-SHA256 can expand to 8160 bytes; this is 112"
    )]
    pub fn expand(&self, ty: MediaType) -> MediaKeys {
        let mut okm = [0; EXPANDED_LEN];
        Hkdf::<Sha256>::new(Some(&[0; 32]), &self.0)
            .expand(ty.hkdf_info(), &mut okm)
            .expect("112 bytes is a valid HKDF-SHA256 output length");
        let keys = MediaKeys::split(&okm);
        okm.zeroize();
        keys
    }
}

impl From<[u8; KEY_LEN]> for MediaKey {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }
}

impl TryFrom<&[u8]> for MediaKey {
    type Error = std::array::TryFromSliceError;

    /// Takes exactly 32 bytes.
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; KEY_LEN]>::try_from(bytes).map(Self)
    }
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaKey { .. }")
    }
}

/// Length of the HKDF output a media key expands to.
const EXPANDED_LEN: usize = 112;

/// The keys a [`MediaKey`] expands to for one [`MediaType`]: bytes 0..16 of the HKDF output are
/// the IV, 16..48 the AES-256 key, 48..80 the HMAC-SHA256 key and 80..112 the ref key (unused by
/// the media scheme itself).
///
/// Zeroized on drop; `Debug` does not print them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKeys {
    iv: [u8; BLOCK_LEN],
    cipher_key: [u8; KEY_LEN],
    mac_key: [u8; KEY_LEN],
    ref_key: [u8; KEY_LEN],
}

impl MediaKeys {
    fn split(okm: &[u8; EXPANDED_LEN]) -> Self {
        let mut bytes = okm.iter().copied();
        Self {
            iv: take_array(&mut bytes),
            cipher_key: take_array(&mut bytes),
            mac_key: take_array(&mut bytes),
            ref_key: take_array(&mut bytes),
        }
    }

    /// The CBC initialisation vector of the first block (and the start of the MAC input).
    pub fn iv(&self) -> &[u8; BLOCK_LEN] {
        &self.iv
    }

    /// The AES-256 key.
    pub fn cipher_key(&self) -> &[u8; KEY_LEN] {
        &self.cipher_key
    }

    /// The HMAC-SHA256 key of the MAC and of the sidecar.
    pub fn mac_key(&self) -> &[u8; KEY_LEN] {
        &self.mac_key
    }

    /// The ref key: part of the expansion, not used to encrypt or authenticate media.
    pub fn ref_key(&self) -> &[u8; KEY_LEN] {
        &self.ref_key
    }

    /// The 10-byte MAC that follows `enc` in a body: `HMAC-SHA256(mac_key, iv ‖ enc)[..10]`.
    pub fn mac(&self, enc: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.hmac();
        mac.update(&self.iv);
        mac.update(enc);
        truncate_tag(&mac.finalize().into_bytes())
    }

    /// An HMAC-SHA256 instance keyed with the MAC key, ready to be cloned for each message.
    pub(crate) fn hmac(&self) -> Hmac<Sha256> {
        // HMAC pads keys shorter than the block to the block size with zeros, so keying with the
        // 64-byte zero-padded key is the same function, and this constructor cannot fail.
        let mut block = [0; 64];
        block.iter_mut().zip(self.mac_key).for_each(|(b, k)| *b = k);
        let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        block.zeroize();
        mac
    }

    /// AES-256 keyed with the cipher key.
    pub(crate) fn aes(&self) -> Aes256 {
        Aes256::new(&self.cipher_key.into())
    }
}

impl fmt::Debug for MediaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaKeys { .. }")
    }
}

/// The next `N` bytes of `bytes` (zeros past its end, which the callers never reach).
fn take_array<const N: usize>(bytes: &mut impl Iterator<Item = u8>) -> [u8; N] {
    let mut array = [0; N];
    array.iter_mut().zip(bytes).for_each(|(a, b)| *a = b);
    array
}

/// The first 10 bytes of an HMAC-SHA256 output.
pub(crate) fn truncate_tag(full: &[u8]) -> [u8; MAC_LEN] {
    let mut tag = [0; MAC_LEN];
    tag.iter_mut().zip(full).for_each(|(t, b)| *t = *b);
    tag
}
