//! [`SessionKeys`]: frame sealing and opening (PROTOCOL.md §3.1), the challenge answer (§2.5)
//! and the logout token (§2.6).
//!
//! The AES key schedules and the keyed HMAC state are computed once, when the keys are made, and
//! cloned per frame: a frame costs no key setup.

use core::fmt;

use aes::cipher::array::Array;
use aes::cipher::consts::U16;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use aes::{Aes256Dec, Aes256Enc};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{ChallengeError, OpenError};
use crate::kdf::{HmacSha256, keyed};

/// The length of `enc_key` and of `mac_key`.
pub const KEY_LEN: usize = 32;
/// The length of a frame's IV.
pub const IV_LEN: usize = 16;
/// The length of a frame's MAC (full HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// The shortest possible sealed payload: MAC, IV and one block of ciphertext.
pub const MIN_SEALED_LEN: usize = MAC_LEN + IV_LEN + BLOCK_LEN;

const BLOCK_LEN: usize = 16;

/// Blocks processed per step of the single pass over a frame: 4 KiB stays in L1 between the
/// cipher and the MAC (or the copy and the cipher).
const CHUNK_BLOCKS: usize = 256;

type Block = Array<u8, U16>;

/// The length of `seal(plain)` for a plaintext of `plain_len` bytes.
pub const fn sealed_len(plain_len: usize) -> usize {
    MAC_LEN + IV_LEN + (plain_len / BLOCK_LEN + 1) * BLOCK_LEN
}

/// The two session keys a login produces (`enc_key` for AES-256-CBC, `mac_key` for
/// HMAC-SHA256), ready to seal and open frames.
///
/// The caller persists them ([`enc_key`](Self::enc_key), [`mac_key`](Self::mac_key) and
/// [`new`](Self::new), or serde with the `serde` feature) to restore the session later.
/// They are wiped on drop, compared in constant time, and `Debug` prints `SessionKeys { .. }`.
#[derive(Clone)]
pub struct SessionKeys {
    enc_key: [u8; KEY_LEN],
    mac_key: [u8; KEY_LEN],
    // Derived once from the keys above; `aes` and `hmac` wipe them on drop (`zeroize` features).
    encryptor: Aes256Enc,
    decryptor: Aes256Dec,
    mac: HmacSha256,
}

impl SessionKeys {
    /// Makes session keys from their bytes (as persisted by the caller).
    pub fn new(enc_key: &[u8; KEY_LEN], mac_key: &[u8; KEY_LEN]) -> Self {
        Self {
            enc_key: *enc_key,
            mac_key: *mac_key,
            encryptor: Aes256Enc::new(enc_key.into()),
            decryptor: Aes256Dec::new(enc_key.into()),
            mac: keyed(mac_key),
        }
    }

    /// The AES-256 key.
    pub fn enc_key(&self) -> &[u8; KEY_LEN] {
        &self.enc_key
    }

    /// The HMAC-SHA256 key.
    pub fn mac_key(&self) -> &[u8; KEY_LEN] {
        &self.mac_key
    }

    /// Seals `plain` (one binary node) with `iv`: returns `HMAC ‖ iv ‖ ct`, the frame payload
    /// after `tag,` (and after metric and flags, for client→server frames).
    ///
    /// `iv` must be fresh random bytes for every frame.
    pub fn seal(&self, plain: &[u8], iv: &[u8; IV_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(sealed_len(plain.len()));
        self.seal_into(plain, iv, &mut out);
        out
    }

    /// [`seal`](Self::seal), appending to `out` (which may already hold the tag and header).
    ///
    /// One pass: each 4 KiB of ciphertext is MACed right after it is encrypted, in place.
    pub fn seal_into(&self, plain: &[u8], iv: &[u8; IV_LEN], out: &mut Vec<u8>) {
        let pad = BLOCK_LEN - plain.len() % BLOCK_LEN;
        out.reserve(sealed_len(plain.len()));
        let start = out.len();
        out.extend_from_slice(&[0; MAC_LEN]);
        out.extend_from_slice(iv);
        out.extend_from_slice(plain);
        // `pad` is 1..=16, so the cast is exact.
        out.resize(out.len() + pad, pad as u8);

        let (_, sealed) = out.split_at_mut(start);
        let (tag, body) = sealed.split_at_mut(MAC_LEN);
        let (iv_bytes, ct) = body.split_at_mut(IV_LEN);
        let (blocks, _) = Block::slice_as_chunks_mut(ct);

        let mut mac = self.mac.clone();
        mac.update(iv_bytes);
        let mut cbc = cbc::Encryptor::inner_iv_init(&self.encryptor, iv.into());
        for chunk in blocks.chunks_mut(CHUNK_BLOCKS) {
            cbc.encrypt_blocks(chunk);
            mac.update(Block::slice_as_flattened(chunk));
        }
        tag.copy_from_slice(&mac.finalize().into_bytes());
    }

    /// Opens a sealed payload `HMAC ‖ iv ‖ ct`: checks the MAC in constant time, and only then
    /// decrypts and unpads.
    ///
    /// # Errors
    ///
    /// [`OpenError::TooShort`], [`OpenError::NotBlockAligned`] and [`OpenError::MacMismatch`]
    /// before anything is decrypted; [`OpenError::BadPadding`] for an authentic frame with bad
    /// padding. No plaintext is returned in any of these cases.
    pub fn open(&self, payload: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut out = Vec::new();
        self.open_into(payload, &mut out)?;
        Ok(out)
    }

    /// [`open`](Self::open), appending the plaintext to `out`. On error `out` is left as it was.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_into(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), OpenError> {
        let (tag, body) = split_sealed(payload)?;
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_slice(tag).map_err(|_| OpenError::MacMismatch)?;
        self.decrypt_into(body, out)
    }

    /// [`open`](Self::open) without the MAC check, so that fuzzers reach the decryptor, the
    /// unpadding and the node decoder behind them. Only with the `fuzzing` feature.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), except [`OpenError::MacMismatch`].
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn open_unauthenticated_for_fuzzing(&self, payload: &[u8]) -> Result<Vec<u8>, OpenError> {
        let (_, body) = split_sealed(payload)?;
        let mut out = Vec::new();
        self.decrypt_into(body, &mut out)?;
        Ok(out)
    }

    /// Decrypts `iv ‖ ct` (already authenticated) into `out` and strips the padding.
    fn decrypt_into(&self, body: &[u8], out: &mut Vec<u8>) -> Result<(), OpenError> {
        let Some((iv, ct)) = body.split_first_chunk::<IV_LEN>() else {
            return Err(OpenError::TooShort {
                len: body.len() + MAC_LEN,
            });
        };
        let start = out.len();
        out.reserve(ct.len());
        let mut cbc = cbc::Decryptor::inner_iv_init(&self.decryptor, iv.into());
        // Copy 4 KiB, decrypt it in place while it is in L1, repeat.
        for chunk in ct.chunks(CHUNK_BLOCKS * BLOCK_LEN) {
            let at = out.len();
            out.extend_from_slice(chunk);
            let (_, fresh) = out.split_at_mut(at);
            let (blocks, _) = Block::slice_as_chunks_mut(fresh);
            cbc.decrypt_blocks(blocks);
        }
        let (_, plain) = out.split_at(start);
        match unpadded_len(plain) {
            Some(len) => {
                out.truncate(start + len);
                Ok(())
            }
            None => {
                out.truncate(start);
                Err(OpenError::BadPadding)
            }
        }
    }

    /// The raw answer to a server challenge: `HMAC-SHA256(mac_key, challenge)`.
    pub fn challenge_response(&self, challenge: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(challenge);
        mac.finalize().into_bytes().into()
    }

    /// Answers a `["Cmd",{"type":"challenge","challenge":"<base64>"}]` (PROTOCOL.md §2.5): the
    /// base64 of `HMAC-SHA256(mac_key, base64decode(challenge))`, to send as
    /// `["admin","challenge", answer, serverToken, clientId]`.
    ///
    /// # Errors
    ///
    /// [`ChallengeError::Base64`] when the challenge is not standard base64.
    pub fn answer_challenge(&self, challenge: &str) -> Result<String, ChallengeError> {
        let challenge = STANDARD.decode(challenge)?;
        Ok(STANDARD.encode(self.challenge_response(&challenge)))
    }

    /// The logout token of PROTOCOL.md §2.6, `base64(HMAC-SHA256(mac_key, enc_key))`, for
    /// logging out without a socket (`…/logout?t=<browserToken>&m=<token>`; the caller
    /// percent-encodes it for the URL).
    pub fn logout_token(&self) -> String {
        STANDARD.encode(self.challenge_response(&self.enc_key))
    }
}

/// Splits a sealed payload into its MAC and `iv ‖ ct`, checking the lengths.
fn split_sealed(payload: &[u8]) -> Result<(&[u8; MAC_LEN], &[u8]), OpenError> {
    if payload.len() < MIN_SEALED_LEN {
        return Err(OpenError::TooShort { len: payload.len() });
    }
    let Some((tag, body)) = payload.split_first_chunk::<MAC_LEN>() else {
        return Err(OpenError::TooShort { len: payload.len() });
    };
    let ct_len = body.len() - IV_LEN;
    if !ct_len.is_multiple_of(BLOCK_LEN) {
        return Err(OpenError::NotBlockAligned { len: ct_len });
    }
    Ok((tag, body))
}

/// The length of `plain` without its PKCS#7 padding, or `None` if the padding is bad.
///
/// Runs after the MAC check, on authenticated data, so it need not be constant time.
fn unpadded_len(plain: &[u8]) -> Option<usize> {
    let &pad = plain.last()?;
    let pad = usize::from(pad);
    if pad == 0 || pad > BLOCK_LEN || pad > plain.len() {
        return None;
    }
    let (rest, tail) = plain.split_at(plain.len() - pad);
    tail.iter()
        .all(|&b| usize::from(b) == pad)
        .then_some(rest.len())
}

impl PartialEq for SessionKeys {
    /// Constant time in the key bytes.
    fn eq(&self, other: &Self) -> bool {
        (self.enc_key.ct_eq(&other.enc_key) & self.mac_key.ct_eq(&other.mac_key)).into()
    }
}

impl Eq for SessionKeys {}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.enc_key.zeroize();
        self.mac_key.zeroize();
    }
}

impl ZeroizeOnDrop for SessionKeys {}

#[cfg(feature = "serde")]
mod serde_impl {
    //! `SessionKeys` as `{"enc_key": "<hex>", "mac_key": "<hex>"}`, the form `wa keys derive`
    //! prints. The serialized strings are not wiped: the caller who persists keys owns them.

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use zeroize::Zeroizing;

    use super::{KEY_LEN, SessionKeys};

    #[derive(Serialize)]
    struct Repr<'a> {
        enc_key: &'a str,
        mac_key: &'a str,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Owned {
        enc_key: String,
        mac_key: String,
    }

    impl Serialize for SessionKeys {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let enc_key = Zeroizing::new(hex::encode(self.enc_key));
            let mac_key = Zeroizing::new(hex::encode(self.mac_key));
            Repr {
                enc_key: &enc_key,
                mac_key: &mac_key,
            }
            .serialize(serializer)
        }
    }

    impl<'de> Deserialize<'de> for SessionKeys {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let Owned { enc_key, mac_key } = Owned::deserialize(deserializer)?;
            let (enc_key, mac_key) = (Zeroizing::new(enc_key), Zeroizing::new(mac_key));
            let enc_key = decode_key::<D::Error>("enc_key", &enc_key)?;
            let mac_key = decode_key::<D::Error>("mac_key", &mac_key)?;
            Ok(SessionKeys::new(&enc_key, &mac_key))
        }
    }

    fn decode_key<E: serde::de::Error>(
        what: &str,
        text: &str,
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, E> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text, &mut *key)
            .map_err(|err| E::custom(format_args!("{what}: expected 64 hex digits ({err})")))?;
        Ok(key)
    }
}
