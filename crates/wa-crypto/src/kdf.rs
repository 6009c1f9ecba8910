//! HKDF-SHA256 and HMAC-SHA256 as plain functions over byte slices.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::HkdfError;

/// HMAC-SHA256 keyed with a slice.
pub(crate) type HmacSha256 = hmac::Hmac<Sha256>;

/// Full HKDF-SHA256 (RFC 5869: extract, then expand) of `ikm` into `okm`.
///
/// An empty `salt` is the same as `HashLen` zero bytes (RFC 5869 §2.2), which is what the login
/// schedule (32 zero bytes) and media keys use. Note that this is *extract then expand*: one
/// public implementation's helper named "Expand" skipped the extract step, which gives different
/// keys (see `testdata/crypto.json`).
///
/// # Errors
///
/// [`HkdfError`] when `okm` is longer than `255 * 32` bytes.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) -> Result<(), HkdfError> {
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, okm)
        .map_err(|_| HkdfError { len: okm.len() })
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A fresh HMAC-SHA256 state for `key`.
///
/// HMAC takes keys of any length (RFC 2104 §2): longer than the 64-byte block, the key is hashed
/// first; shorter, it is padded with zeros. Doing that here keeps key setup infallible (the
/// `hmac` crate's `new_from_slice` is fallible only by signature).
pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > block.len() {
        let hashed = Sha256::digest(key);
        for (dst, src) in block.iter_mut().zip(hashed.iter()) {
            *dst = *src;
        }
    } else {
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = *src;
        }
    }
    HmacSha256::new((&*block).into())
}
