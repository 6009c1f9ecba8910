//! The values that cross the crate's boundary: public keys, signatures, ciphertexts, group keys
//! and the pickle key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use wa_binary::Jid;
use zeroize::Zeroizing;

/// Unpadded standard base64, as Matrix and vodozemac write keys.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

pub use wa_wire::keys::{IdentityKeys, KeyParseError, OneTimeKey, Signature};

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
