//! Linking a web client (PROTOCOL.md §2.1–2.2): the QR code's text and the capabilities a client
//! announces in `admin init`.
//!
//! A legacy client shows `ref,public key,client id`. An end-to-end client (this project's
//! extension) announces its identity keys in `admin init` and appends them to the QR code,
//! `ref,public key,client id,curve25519,ed25519`, so that the phone that scans it signs exactly
//! those keys.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::error::WireError;
use crate::ids::valid_client_id;
use crate::keys::IdentityKeys;
use crate::read;

/// The text of a QR code.
#[derive(Clone, PartialEq, Eq)]
pub struct QrCode {
    /// The server's ref for this connection.
    pub r#ref: String,
    /// The client's X25519 public key for the key schedule (PROTOCOL.md §2.3).
    pub public_key: [u8; 32],
    /// The client id of `admin init`.
    pub client_id: String,
    /// An end-to-end client's identity keys.
    pub identity: Option<IdentityKeys>,
}

impl fmt::Debug for QrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrCode")
            .field("client_id", &self.client_id)
            .field("end_to_end", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

/// The longest ref accepted.
pub const MAX_REF_LEN: usize = 128;

impl QrCode {
    const SHAPE: &'static str = "QR code";

    /// Reads a QR code's text.
    ///
    /// # Errors
    /// When it does not have three or five comma-separated parts, a key is not base64 of 32
    /// bytes, or the client id or ref is malformed.
    pub fn parse(text: &str) -> Result<QrCode, WireError> {
        let parts: Vec<&str> = text.trim().split(',').collect();
        let (r, public, client_id, identity) = match parts.as_slice() {
            [r, public, client_id] => (*r, *public, *client_id, None),
            [r, public, client_id, curve, ed] => (*r, *public, *client_id, Some((*curve, *ed))),
            _ => {
                return Err(WireError::new(
                    Self::SHAPE,
                    "expected `ref,public key,client id` (and two identity keys for an end-to-end client)",
                ));
            }
        };
        if r.is_empty() || r.len() > MAX_REF_LEN {
            return Err(WireError::bad(Self::SHAPE, "ref", "empty or too long"));
        }
        if !valid_client_id(client_id) {
            return Err(WireError::bad(Self::SHAPE, "client id", "not a client id"));
        }
        let key = |field: &'static str, text: &str| {
            read::decode_array::<32>(text).map_err(|why| WireError::bad(Self::SHAPE, field, why))
        };
        let identity = match identity {
            Some((curve, ed)) => Some(IdentityKeys {
                curve25519: key("curve25519", curve)?,
                ed25519: key("ed25519", ed)?,
            }),
            None => None,
        };
        Ok(QrCode {
            r#ref: r.to_owned(),
            public_key: key("public key", public)?,
            client_id: client_id.to_owned(),
            identity,
        })
    }
}

impl fmt::Display for QrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{}",
            self.r#ref,
            read::encode(&self.public_key),
            self.client_id
        )?;
        if let Some(identity) = &self.identity {
            write!(
                f,
                ",{},{}",
                read::encode(&identity.curve25519),
                read::encode(&identity.ed25519)
            )?;
        }
        Ok(())
    }
}

/// What a client announces in the seventh element of `admin init` (this project's extension).
/// A client that announces nothing is a legacy client, linked as a mirror of its phone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientFeatures {
    /// An end-to-end client's identity keys: `{"e2e": {"curve": b64, "ed": b64}}`.
    pub end_to_end: Option<IdentityKeys>,
}

impl ClientFeatures {
    const SHAPE: &'static str = "admin init features";

    /// The features of an end-to-end client.
    pub fn end_to_end(identity: IdentityKeys) -> ClientFeatures {
        ClientFeatures {
            end_to_end: Some(identity),
        }
    }

    /// The object for `admin init`, or `None` for a legacy client.
    pub fn to_map(&self) -> Option<Map<String, Value>> {
        let identity = self.end_to_end.as_ref()?;
        let mut map = Map::new();
        map.insert(
            "e2e".to_owned(),
            json!({"curve": read::encode(&identity.curve25519), "ed": read::encode(&identity.ed25519)}),
        );
        Some(map)
    }

    /// Reads the features of an `admin init` (none: a legacy client). Unknown features are
    /// ignored, so that later clients can announce more.
    ///
    /// # Errors
    /// When `e2e` is present but malformed.
    pub fn from_init(init: &wa_frame::Init) -> Result<ClientFeatures, WireError> {
        let Some(e2e) = init.features.as_ref().and_then(|f| f.get("e2e")) else {
            return Ok(ClientFeatures::default());
        };
        let key = |field: &'static str| -> Result<[u8; 32], WireError> {
            let text = e2e
                .get(field)
                .and_then(Value::as_str)
                .ok_or_else(|| WireError::missing(Self::SHAPE, field))?;
            read::decode_array(text).map_err(|why| WireError::bad(Self::SHAPE, field, why))
        };
        Ok(ClientFeatures {
            end_to_end: Some(IdentityKeys {
                curve25519: key("curve")?,
                ed25519: key("ed")?,
            }),
        })
    }
}
