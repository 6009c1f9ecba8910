//! Sealing and opening of values with XChaCha20-Poly1305, and the key-check value.
//!
//! A sealed value is `version (1 byte, 0x01) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//! The associated data binds it to its place: `table name ‖ 0x00 ‖ key`. The key-check value is
//! the constant [`KEY_CHECK_PLAINTEXT`] sealed with associated data [`KEY_CHECK_AAD`], which
//! starts with `0x00` and so can never be the associated data of a value (table names are never
//! empty).

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::VaultError;

/// The version byte that starts every sealed value.
pub(crate) const VALUE_VERSION: u8 = 1;
/// Length of the XChaCha20 nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub(crate) const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// Length of a store key.
pub(crate) const KEY_LEN: usize = 32;

/// The plaintext of the key-check value.
pub(crate) const KEY_CHECK_PLAINTEXT: &[u8] = b"wa-vault key check v1";
/// The associated data of the key-check value.
pub(crate) const KEY_CHECK_AAD: &[u8] = b"\0wa-vault key check";

/// A store key, ready to seal and open. The key lives only inside the cipher, which wipes it
/// on drop (`chacha20poly1305`'s `zeroize` feature).
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

impl Sealer {
    /// A sealer for `key`.
    pub(crate) fn new(key: &Zeroizing<[u8; KEY_LEN]>) -> Sealer {
        let key: &[u8; KEY_LEN] = key;
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seals `plain` bound to `aad`, with a fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)?;
        self.seal_with_nonce(aad, plain, &nonce)
    }

    fn seal_with_nonce(
        &self,
        aad: &[u8],
        plain: &[u8],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Vec<u8>, VaultError> {
        let too_large = || VaultError::ValueTooLarge { len: plain.len() };
        // Allocated once at its final size: the plaintext is encrypted in place and never
        // left behind in a buffer that grew.
        let mut out = Vec::with_capacity(plain.len().checked_add(OVERHEAD).ok_or_else(too_large)?);
        out.push(VALUE_VERSION);
        out.extend_from_slice(nonce);
        out.extend_from_slice(plain);
        let (_, body) = out.split_at_mut(1 + NONCE_LEN);
        let tag = self
            .cipher
            .encrypt_inout_detached(<&XNonce>::from(nonce), aad, body.into())
            .map_err(|_| too_large())?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a sealed value bound to `aad`; `None` when it does not authenticate or is not a
    /// sealed value at all (too short, unknown version).
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VALUE_VERSION {
            return None;
        }
        let (nonce, rest) = rest.split_first_chunk::<NONCE_LEN>()?;
        let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>()?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_inout_detached(
                <&XNonce>::from(nonce),
                aad,
                buf.as_mut_slice().into(),
                tag.into(),
            )
            .ok()?;
        Some(buf)
    }

    /// A fresh key-check value.
    pub(crate) fn key_check(&self) -> Result<Vec<u8>, VaultError> {
        self.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)
    }

    /// Whether `sealed` is a key-check value sealed with this key (compared in constant time).
    pub(crate) fn verify_key_check(&self, sealed: &[u8]) -> bool {
        self.open(KEY_CHECK_AAD, sealed)
            .is_some_and(|plain| bool::from(plain.as_slice().ct_eq(KEY_CHECK_PLAINTEXT)))
    }
}

/// The associated data of the value at `key` in `table`: `table ‖ 0x00 ‖ key`.
pub(crate) fn value_aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(table.len() + 1 + key.len());
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&Zeroizing::new([byte; KEY_LEN]))
    }

    #[test]
    fn seal_layout_and_round_trip() {
        let s = sealer(1);
        let aad = value_aad("t", b"k");
        let sealed = s.seal_with_nonce(&aad, b"hello", &[9; NONCE_LEN]).unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(sealed[0], VALUE_VERSION);
        assert_eq!(&sealed[1..25], &[9; NONCE_LEN]);
        assert_ne!(&sealed[25..30], b"hello");
        assert_eq!(s.open(&aad, &sealed).unwrap().as_slice(), b"hello");
    }

    /// XChaCha20-Poly1305 known answer: draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn xchacha20poly1305_known_answer() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; 24] = core::array::from_fn(|i| 0x40 + i as u8);
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let s = Sealer::new(&Zeroizing::new(key));
        let sealed = s.seal_with_nonce(&aad, plain, &nonce).unwrap();
        let expected_ct = "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb\
                           731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
                           2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9\
                           21f9664c97637da9768812f615c68b13b52e";
        let expected_tag = "c0875924c1c7987947deafd8780acf49";
        assert_eq!(hex::encode(&sealed[25..sealed.len() - 16]), expected_ct);
        assert_eq!(hex::encode(&sealed[sealed.len() - 16..]), expected_tag);
    }

    #[test]
    fn open_rejects_wrong_key_aad_and_malformed() {
        let s = sealer(1);
        let aad = value_aad("t", b"k");
        let sealed = s.seal(&aad, b"secret").unwrap();
        assert!(sealer(2).open(&aad, &sealed).is_none());
        assert!(s.open(&value_aad("t", b"j"), &sealed).is_none());
        assert!(s.open(&value_aad("u", b"k"), &sealed).is_none());
        for cut in 0..sealed.len() {
            assert!(s.open(&aad, &sealed[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(s.open(&aad, &bad).is_none(), "flip at {i}");
        }
    }

    #[test]
    fn nonces_differ_between_seals() {
        let s = sealer(1);
        let a = s.seal(b"x", b"same").unwrap();
        let b = s.seal(b"x", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn key_check_binds_the_key() {
        let check = sealer(1).key_check().unwrap();
        assert!(sealer(1).verify_key_check(&check));
        assert!(!sealer(2).verify_key_check(&check));
        // A value sealed under the same key with another plaintext is not a key check.
        let other = sealer(1).seal(KEY_CHECK_AAD, b"something else").unwrap();
        assert!(!sealer(1).verify_key_check(&other));
    }

    #[test]
    fn aad_separates_table_and_key() {
        assert_ne!(value_aad("ab", b"c"), value_aad("a", b"bc"));
        assert!(!value_aad("a", b"").starts_with(KEY_CHECK_AAD));
    }
}
