//! The values that cross the crate's boundary: public keys, signatures, ciphertexts, group keys
//! and the pickle key.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::{Deserialize, Serialize};
use wa_binary::Jid;
use zeroize::Zeroizing;

use crate::error::KeyParseError;

/// Unpadded standard base64, as Matrix and vodozemac write keys.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Decodes unpadded (or padded) standard base64 into exactly 32 bytes.
pub(crate) fn b64_32(what: &'static str, text: &str) -> Result<[u8; 32], KeyParseError> {
    let bytes = STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| KeyParseError::Base64 {
            what,
            message: e.to_string(),
        })?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| KeyParseError::Length { what, len })
}

/// A device's two public identity keys: Curve25519 (establishes Olm sessions) and Ed25519
/// (signs: one-time keys, attestations; the phone's is the user's identity in security codes).
///
/// `Display` writes `curve25519:<base64> ed25519:<base64>` (unpadded standard base64), which
/// `FromStr` reads back; serde writes `{"curve25519": "<base64>", "ed25519": "<base64>"}`.
///
/// ```
/// use wa_e2e::IdentityKeys;
///
/// let keys = IdentityKeys { curve25519: [1; 32], ed25519: [2; 32] };
/// let text = keys.to_string();
/// assert!(text.starts_with("curve25519:AQEB"));
/// assert_eq!(text.parse::<IdentityKeys>().unwrap(), keys);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdentityKeys {
    /// The Curve25519 identity key.
    pub curve25519: [u8; 32],
    /// The Ed25519 signing key.
    pub ed25519: [u8; 32],
}

impl IdentityKeys {
    /// The Curve25519 key in unpadded base64.
    pub fn curve25519_base64(&self) -> String {
        b64(&self.curve25519)
    }

    /// The Ed25519 key in unpadded base64.
    pub fn ed25519_base64(&self) -> String {
        b64(&self.ed25519)
    }

    /// The keys from their base64 forms (padded or not).
    ///
    /// # Errors
    /// [`KeyParseError`] when either is not base64 of exactly 32 bytes.
    pub fn from_base64(curve25519: &str, ed25519: &str) -> Result<IdentityKeys, KeyParseError> {
        Ok(IdentityKeys {
            curve25519: b64_32("curve25519 key", curve25519)?,
            ed25519: b64_32("ed25519 key", ed25519)?,
        })
    }
}

impl fmt::Display for IdentityKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "curve25519:{} ed25519:{}",
            self.curve25519_base64(),
            self.ed25519_base64()
        )
    }
}

impl FromStr for IdentityKeys {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (curve, ed) = s.split_once(' ').ok_or(KeyParseError::Format)?;
        let curve = curve
            .strip_prefix("curve25519:")
            .ok_or(KeyParseError::Format)?;
        let ed = ed.strip_prefix("ed25519:").ok_or(KeyParseError::Format)?;
        IdentityKeys::from_base64(curve, ed)
    }
}

#[derive(Serialize, Deserialize)]
struct IdentityKeysSerde {
    curve25519: String,
    ed25519: String,
}

impl Serialize for IdentityKeys {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        IdentityKeysSerde {
            curve25519: self.curve25519_base64(),
            ed25519: self.ed25519_base64(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IdentityKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let keys = IdentityKeysSerde::deserialize(deserializer)?;
        IdentityKeys::from_base64(&keys.curve25519, &keys.ed25519).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The signature in unpadded base64.
    pub fn to_base64(&self) -> String {
        b64(&self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

/// A public one-time (or fallback) Curve25519 key, to publish in the key directory.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeKey {
    /// vodozemac's key id (a counter, base64): names the key in the directory.
    pub id: String,
    /// The public key.
    pub key: [u8; 32],
}

impl fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public material, but it says nothing useful in logs: the id is enough.
        f.debug_struct("OneTimeKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The two kinds of Olm message: a pre-key message (the session is not yet confirmed by the
/// other side, so the message carries what is needed to create it) and a normal one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OlmKind {
    /// Olm message type 0.
    PreKey,
    /// Olm message type 1.
    Normal,
}

impl OlmKind {
    /// The Olm message type number (0 or 1).
    pub fn number(self) -> u8 {
        match self {
            OlmKind::PreKey => 0,
            OlmKind::Normal => 1,
        }
    }

    /// The kind with Olm type number `n`, if any.
    pub fn from_number(n: u8) -> Option<OlmKind> {
        match n {
            0 => Some(OlmKind::PreKey),
            1 => Some(OlmKind::Normal),
            _ => None,
        }
    }
}

/// An Olm message for one device: the kind (which the transport must carry) and vodozemac's
/// message bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OlmCiphertext {
    /// Pre-key or normal.
    pub kind: OlmKind,
    /// The message bytes.
    pub body: Vec<u8>,
}

/// A Megolm message: vodozemac's `MegolmMessage` bytes (signed by the sender's group session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCiphertext(pub Vec<u8>);

/// The key of one outbound Megolm session, to send to each member device over its pairwise Olm
/// session. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    /// The group the session encrypts for.
    pub group: Jid,
    /// The session's id (its Ed25519 key, base64).
    pub session_id: String,
    /// vodozemac's `SessionKey` bytes (229: version, index, ratchet, public key, signature),
    /// exported at the session's current message index.
    pub key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("group", &self.group)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The 32-byte key that encrypts pickles. Wiped on drop; `Debug` prints `PickleKey { .. }`.
#[derive(Clone)]
pub struct PickleKey(Zeroizing<[u8; 32]>);

impl PickleKey {
    /// The key from its bytes (the caller keeps it, e.g. in the OS key store).
    pub fn new(bytes: [u8; 32]) -> PickleKey {
        PickleKey(Zeroizing::new(bytes))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PickleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickleKey { .. }")
    }
}

/// What [`Machine::observe_identity`](crate::Machine::observe_identity) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityChange {
    /// No identity was known for this user: it is now remembered.
    New,
    /// The same identity as before.
    Same,
    /// A different identity than before (new phone, reinstall, or an attack): the new one is
    /// now remembered, and the user should be told (the security code changed).
    Changed {
        /// The identity remembered until now.
        previous: [u8; 32],
    },
}
