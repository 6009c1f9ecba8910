//! What a linked client keeps between runs to log in again without a new QR code.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The credentials of a linked client (PROTOCOL.md §2.4): the client id, the tokens of the last
/// `Conn`, the session keys and the own JID. The caller persists them (they are `serde`
/// values) every time the session emits [`Event::Credentials`](crate::Event::Credentials), and
/// hands them back to [`Session::restore`](crate::Session::restore).
///
/// They are secrets: keys and tokens are wiped on drop and `Debug` shows only the JID.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Credentials {
    /// Base64 of 16 random bytes, chosen at linking.
    pub client_id: String,
    /// `clientToken` of the last `Conn`.
    pub client_token: String,
    /// `serverToken` of the last `Conn`.
    pub server_token: String,
    /// `browserToken` of the last `Conn` (for logging out without a socket).
    pub browser_token: String,
    /// The AES-256 key of binary frames.
    #[serde(with = "key_base64")]
    pub enc_key: [u8; 32],
    /// The HMAC-SHA256 key of binary frames.
    #[serde(with = "key_base64")]
    pub mac_key: [u8; 32],
    /// The own JID (`wid` of the `Conn`), e.g. `15551234567@c.us`.
    #[zeroize(skip)]
    pub wid: wa_wire::Jid,
    /// This device's number within the account (end-to-end clients; 0 for a legacy client).
    #[serde(default)]
    pub device: u8,
}

impl Credentials {
    /// The frame keys.
    pub fn session_keys(&self) -> wa_crypto::SessionKeys {
        wa_crypto::SessionKeys::new(&self.enc_key, &self.mac_key)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("wid", &self.wid)
            .finish_non_exhaustive()
    }
}

mod key_base64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(key))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            serde::de::Error::custom(format!("a key is 32 bytes, not {}", bytes.len()))
        })
    }
}
