//! Security codes: the 60 digits two users compare (or scan) to check that each sees the
//! other's real identity key.
//!
//! The construction is libsignal's numeric fingerprint (`rust/protocol/src/fingerprint.rs`,
//! version 0, 5200 iterations). For each user:
//!
//! ```text
//! h = SHA-512(0x00 0x00 ‖ key ‖ id ‖ key)          (iteration 1)
//! h = SHA-512(h ‖ key)                              (iterations 2 ..= 5200)
//! half = for each of h[0..5], h[5..10], … h[25..30]: (40-bit big-endian integer mod 100000),
//!        as 5 zero-padded digits                    (30 digits)
//! ```
//!
//! and the code is the two halves concatenated, the lexicographically smaller half first, so
//! both users compute the same 60 digits.
//!
//! Signal's `key` is the 33-byte Curve25519 identity key with its `0x05` type prefix and its
//! `id` the phone number in E.164 (`+1555…`). Here the user's identity is their phone's Ed25519
//! key (32 bytes, no prefix: the key the phone signs device attestations with), and `id` is the
//! user part of the JID as ASCII digits (`15551234567`). It is the same construction over the
//! key that identifies a user in this protocol; the digits are therefore not Signal's for the
//! same person. A unit test checks the construction against libsignal's published vector.

use std::fmt;

use sha2::{Digest, Sha512};
use wa_binary::Jid;

use crate::user_of;

/// libsignal's iteration count (> 112 bits of work for a second-preimage of one half).
const ITERATIONS: u32 = 5200;

/// A 60-digit security code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecurityCode {
    digits: String,
}

impl SecurityCode {
    /// The 60 digits, without spaces.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The text to put in a QR code: `wa-rs-security-code:0:<60 digits>` (the `0` is the
    /// fingerprint version). Scanning the other side's code and comparing it to one's own is
    /// the same check as comparing the digits.
    pub fn qr_text(&self) -> String {
        format!("wa-rs-security-code:0:{}", self.digits)
    }
}

/// Twelve blocks of five digits separated by spaces.
impl fmt::Display for SecurityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, block) in self.digits.as_bytes().chunks(5).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(std::str::from_utf8(block).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SecurityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecurityCode({self})")
    }
}

/// The security code between user `a` (phone identity key `a_identity`) and user `b`.
/// Symmetric: `security_code(a, ka, b, kb) == security_code(b, kb, a, ka)`. Devices are
/// ignored (`15551234567:3@c.us` is user `15551234567`).
pub fn security_code(
    a_user: &Jid,
    a_identity: &[u8; 32],
    b_user: &Jid,
    b_identity: &[u8; 32],
) -> SecurityCode {
    let a = half(a_identity, stable_id(a_user).as_bytes());
    let b = half(b_identity, stable_id(b_user).as_bytes());
    let digits = if a <= b { a + &b } else { b + &a };
    SecurityCode { digits }
}

fn stable_id(user: &Jid) -> String {
    user_of(user).user().unwrap_or_default().to_owned()
}

/// One user's 30 digits: libsignal's `get_fingerprint` then its displayable encoding.
pub(crate) fn half(key: &[u8], id: &[u8]) -> String {
    let mut hash = Sha512::new()
        .chain_update([0u8, 0u8])
        .chain_update(key)
        .chain_update(id)
        .chain_update(key)
        .finalize();
    for _ in 1..ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(key)
            .finalize();
    }
    let mut digits = String::with_capacity(30);
    for chunk in hash.chunks_exact(5).take(6) {
        let n = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        digits.push_str(&format!("{:05}", n % 100_000));
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libsignal's own known answer (`fingerprint_test_v1`): the 33-byte Curve25519 identity
    /// keys with their 0x05 prefix and E.164 stable ids. This checks our construction is
    /// libsignal's, byte for byte.
    #[test]
    fn libsignal_known_answer() {
        let alice = hex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868");
        let bob = hex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b");
        let a = half(&alice, b"+14152222222");
        let b = half(&bob, b"+14153333333");
        let display = if a <= b { a + &b } else { b + &a };
        assert_eq!(
            display,
            "300354477692869396892869876765458257569162576843440918079131"
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
