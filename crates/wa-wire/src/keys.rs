//! The key directory's vocabulary (this project's extension, docs/PROTOCOL.md "End-to-end
//! encryption"): identity keys, one-time keys, signed device lists and pre-key bundles.
//!
//! In nodes, keys are standard base64 in attributes; in the phone's JSON, base64 strings.

use serde::{Deserialize, Serialize};
use wa_binary::Node;

use crate::error::WireError;
use crate::ids::{Jid, parse_device, parse_user};
use crate::read::{self, b64};

/// A device's two public identity keys: Curve25519 (establishes Olm sessions) and Ed25519
/// (signs: one-time keys, attestations, logins; the phone's is the user's identity in security
/// codes).
///
/// `Display` writes `curve25519:<base64> ed25519:<base64>` (unpadded standard base64), which
/// `FromStr` reads back; serde writes `{"curve25519": "<base64>", "ed25519": "<base64>"}`.
/// Readers accept base64 with or without padding.
///
/// ```
/// use wa_wire::keys::IdentityKeys;
///
/// let keys = IdentityKeys { curve25519: [1; 32], ed25519: [2; 32] };
/// let text = keys.to_string();
/// assert!(text.starts_with("curve25519:AQEB"));
/// assert_eq!(text.parse::<IdentityKeys>().unwrap(), keys);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKeys {
    /// The Curve25519 identity key.
    pub curve25519: [u8; 32],
    /// The Ed25519 identity key.
    pub ed25519: [u8; 32],
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public keys: shown, shortened.
        write!(
            f,
            "IdentityKeys {{ curve25519: {}.., ed25519: {}.. }}",
            short(&self.curve25519),
            short(&self.ed25519)
        )
    }
}

fn short(key: &[u8; 32]) -> String {
    read::encode(key).chars().take(8).collect()
}

/// A key's text that is not base64 of 32 bytes, or identity keys not in their text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// Not `curve25519:<base64> ed25519:<base64>`.
    #[error("expected `curve25519:<base64> ed25519:<base64>`")]
    Format,
    /// Not base64.
    #[error("{what} is not base64: {message}")]
    Base64 {
        /// Which key.
        what: &'static str,
        /// The decoder's explanation.
        message: String,
    },
    /// Not 32 bytes.
    #[error("{what} is {len} bytes, expected 32")]
    Length {
        /// Which key.
        what: &'static str,
        /// Its length.
        len: usize,
    },
}

fn unpadded(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

fn key_from_base64(what: &'static str, text: &str) -> Result<[u8; 32], KeyParseError> {
    use base64::Engine as _;
    if text.len() > 48 {
        return Err(KeyParseError::Length {
            what,
            len: text.len() * 3 / 4,
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
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

impl IdentityKeys {
    /// The Curve25519 key in unpadded base64.
    pub fn curve25519_base64(&self) -> String {
        unpadded(&self.curve25519)
    }

    /// The Ed25519 key in unpadded base64.
    pub fn ed25519_base64(&self) -> String {
        unpadded(&self.ed25519)
    }

    /// The keys from their base64 forms (padded or not).
    ///
    /// # Errors
    /// [`KeyParseError`] when either is not base64 of exactly 32 bytes.
    pub fn from_base64(curve25519: &str, ed25519: &str) -> Result<IdentityKeys, KeyParseError> {
        Ok(IdentityKeys {
            curve25519: key_from_base64("curve25519 key", curve25519)?,
            ed25519: key_from_base64("ed25519 key", ed25519)?,
        })
    }

    fn write(&self, node: Node<'static>) -> Node<'static> {
        node.with_attr("curve", read::encode(&self.curve25519))
            .with_attr("ed", read::encode(&self.ed25519))
    }

    fn read(node: &Node<'_>, shape: &'static str) -> Result<IdentityKeys, WireError> {
        Ok(IdentityKeys {
            curve25519: read::b64_array(node, shape, "curve")?,
            ed25519: read::b64_array(node, shape, "ed")?,
        })
    }
}

impl std::fmt::Display for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "curve25519:{} ed25519:{}",
            self.curve25519_base64(),
            self.ed25519_base64()
        )
    }
}

impl std::str::FromStr for IdentityKeys {
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

/// The domain separator every attestation message starts with.
pub const ATTESTATION_DOMAIN: &[u8] = b"wa-rs device attestation v1\0";

/// What a phone signs to vouch for one of its linked devices:
///
/// ```text
/// b"wa-rs device attestation v1\0" ‖ user JID (Display form, UTF-8) ‖ 0x00 ‖ curve25519 ‖ ed25519
/// ```
///
/// It binds the device's identity keys to the account (the user), not to a device number: the
/// server assigns numbers, the phone vouches for keys. Senders encrypt only for devices whose
/// attestation verifies under the phone's Ed25519 key, so a server cannot add a device of its
/// own to an account. The domain separator keeps an attestation from ever being a valid
/// signature of anything else the phone's key signs (logins sign another domain).
pub fn attestation_message(user: &Jid, identity: &IdentityKeys) -> Vec<u8> {
    let user = crate::ids::user_of(user).to_string();
    let mut message = Vec::with_capacity(ATTESTATION_DOMAIN.len() + user.len() + 65);
    message.extend_from_slice(ATTESTATION_DOMAIN);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(&identity.curve25519);
    message.extend_from_slice(&identity.ed25519);
    message
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// The signature in unpadded base64.
    pub fn to_base64(&self) -> String {
        unpadded(&self.0)
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signature({}..)",
            self.to_base64().chars().take(8).collect::<String>()
        )
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        b64::array::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        b64::array::deserialize(d).map(Signature)
    }
}

/// A public one-time (or fallback) Curve25519 key, by the id its owner gave it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OneTimeKey {
    /// The key id (opaque to everyone but its owner; at most 64 characters).
    pub id: String,
    /// The public key.
    #[serde(with = "b64::array")]
    pub key: [u8; 32],
}

impl std::fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

impl OneTimeKey {
    fn read(node: &Node<'_>, shape: &'static str) -> Result<OneTimeKey, WireError> {
        let id = read::attr(node, shape, "id")?;
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
            return Err(WireError::bad(
                shape,
                "id",
                "empty or longer than 64 characters",
            ));
        }
        Ok(OneTimeKey {
            id: id.to_owned(),
            key: read::b64_array(node, shape, "key")?,
        })
    }

    fn write(&self, tag: &'static str) -> Node<'static> {
        Node::new(tag)
            .with_attr("id", self.id.clone())
            .with_attr("key", read::encode(&self.key))
    }
}

/// What a device publishes: its identity, fresh one-time keys, and optionally a fallback key
/// (used when the one-time keys run out).
///
/// Node: `["keys", {curve, ed}, [["otk", {id, key}], ..., ["fallback", {id, key}]]]`, a child of
/// `action set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUpload {
    /// The device's identity keys (they must match what the device was linked or registered
    /// with).
    pub identity: IdentityKeys,
    /// New one-time keys.
    #[serde(default)]
    pub one_time_keys: Vec<OneTimeKey>,
    /// A new fallback key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<OneTimeKey>,
}

/// One-time keys one upload may carry at most.
pub const MAX_KEYS_PER_UPLOAD: usize = 200;

impl KeyUpload {
    pub(crate) const SHAPE: &'static str = "keys";

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let mut children: Vec<Node<'static>> =
            self.one_time_keys.iter().map(|k| k.write("otk")).collect();
        if let Some(fallback) = &self.fallback {
            children.push(fallback.write("fallback"));
        }
        self.identity
            .write(Node::new("keys"))
            .with_children(children)
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On a missing or malformed key, or more than [`MAX_KEYS_PER_UPLOAD`] keys.
    pub fn from_node(node: &Node<'_>) -> Result<KeyUpload, WireError> {
        read::expect_tag(node, Self::SHAPE, "keys")?;
        let identity = IdentityKeys::read(node, Self::SHAPE)?;
        if node.children().len() > MAX_KEYS_PER_UPLOAD + 1 {
            return Err(WireError::new(Self::SHAPE, "too many keys"));
        }
        let mut one_time_keys = Vec::new();
        let mut fallback = None;
        for child in node.children() {
            match child.tag() {
                "otk" => one_time_keys.push(OneTimeKey::read(child, Self::SHAPE)?),
                "fallback" if fallback.is_none() => {
                    fallback = Some(OneTimeKey::read(child, Self::SHAPE)?);
                }
                other => {
                    return Err(WireError::new(
                        Self::SHAPE,
                        format!("unexpected child `{other}`"),
                    ));
                }
            }
        }
        Ok(KeyUpload {
            identity,
            one_time_keys,
            fallback,
        })
    }
}

/// One device of a user as the key directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device's address (the user's own address for the phone, device 0).
    pub device: Jid,
    /// Its identity keys.
    pub identity: IdentityKeys,
    /// For linked devices: the phone's signature over the device's identity keys, made when it
    /// approved the link (see `wa_e2e::device_attestation_message`). Senders encrypt only for
    /// devices whose attestation verifies under the phone's Ed25519 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Signature>,
}

/// A user's devices, the phone first.
///
/// Node: `["user", {jid}, [["device", {jid, curve, ed, sig?}], ...]]`, or `["user", {jid,
/// error: "404"}]` for a number without an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    /// The user.
    pub user: Jid,
    /// Its devices; empty when the user has no account.
    pub devices: Vec<DeviceInfo>,
}

/// Devices one list may hold at most (a phone and up to 255 linked devices).
pub const MAX_DEVICES: usize = 256;

impl DeviceList {
    const SHAPE: &'static str = "user";

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        let node = Node::new("user").with_attr("jid", self.user.to_wire_string());
        if self.devices.is_empty() {
            return node.with_attr("error", "404");
        }
        node.with_children(
            self.devices
                .iter()
                .map(|d| {
                    let mut n = d
                        .identity
                        .write(Node::new("device").with_attr("jid", d.device.to_wire_string()));
                    if let Some(sig) = &d.attestation {
                        n = n.with_attr("sig", read::encode(&sig.0));
                    }
                    n
                })
                .collect(),
        )
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On a malformed device, a device of another user, or too many devices.
    pub fn from_node(node: &Node<'_>) -> Result<DeviceList, WireError> {
        read::expect_tag(node, Self::SHAPE, "user")?;
        let user = parse_user(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?;
        if node.children().len() > MAX_DEVICES {
            return Err(WireError::new(Self::SHAPE, "too many devices"));
        }
        let mut devices = Vec::with_capacity(node.children().len());
        for child in node.children() {
            read::expect_tag(child, Self::SHAPE, "device")?;
            let device = parse_device(Self::SHAPE, "jid", read::attr(child, Self::SHAPE, "jid")?)?;
            if crate::ids::user_of(&device) != user {
                return Err(WireError::bad(
                    Self::SHAPE,
                    "jid",
                    format!("{device} is not a device of {user}"),
                ));
            }
            let attestation = match child.attr("sig") {
                Some(text) => Some(Signature(
                    read::decode_array(text)
                        .map_err(|why| WireError::bad(Self::SHAPE, "sig", why))?,
                )),
                None => None,
            };
            devices.push(DeviceInfo {
                device,
                identity: IdentityKeys::read(child, Self::SHAPE)?,
                attestation,
            });
        }
        Ok(DeviceList { user, devices })
    }
}

/// What a sender needs to start an Olm session with a device: the device's identity and one of
/// its one-time keys (claimed: the directory hands each out once), or its fallback key.
///
/// Node: `["device", {jid, curve, ed, id, key, fallback?: "true"}]`, or `["device", {jid,
/// error: "404"}]` when the device is gone or has no key left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyBundle {
    /// The device.
    pub device: Jid,
    /// Its identity keys.
    pub identity: IdentityKeys,
    /// The claimed key.
    pub one_time_key: OneTimeKey,
    /// Whether it is the device's fallback key (one-time keys ran out).
    #[serde(default)]
    pub fallback: bool,
}

/// The answer for one device of a pre-key claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Claimed {
    /// A bundle.
    Bundle(PreKeyBundle),
    /// No key for this device (gone, or none published).
    Missing {
        /// The device.
        device: Jid,
    },
}

impl Claimed {
    const SHAPE: &'static str = "device";

    /// The device this answer is about.
    pub fn device(&self) -> &Jid {
        match self {
            Claimed::Bundle(b) => &b.device,
            Claimed::Missing { device } => device,
        }
    }

    /// The node.
    pub fn to_node(&self) -> Node<'static> {
        match self {
            Claimed::Missing { device } => Node::new("device")
                .with_attr("jid", device.to_wire_string())
                .with_attr("error", "404"),
            Claimed::Bundle(b) => {
                let node = b
                    .identity
                    .write(Node::new("device").with_attr("jid", b.device.to_wire_string()))
                    .with_attr("id", b.one_time_key.id.clone())
                    .with_attr("key", read::encode(&b.one_time_key.key));
                if b.fallback {
                    node.with_attr("fallback", "true")
                } else {
                    node
                }
            }
        }
    }

    /// Reads the node.
    ///
    /// # Errors
    /// On a malformed device or key.
    pub fn from_node(node: &Node<'_>) -> Result<Claimed, WireError> {
        read::expect_tag(node, Self::SHAPE, "device")?;
        let device = parse_device(Self::SHAPE, "jid", read::attr(node, Self::SHAPE, "jid")?)?;
        if node.attr("error").is_some() {
            return Ok(Claimed::Missing { device });
        }
        Ok(Claimed::Bundle(PreKeyBundle {
            device,
            identity: IdentityKeys::read(node, Self::SHAPE)?,
            one_time_key: OneTimeKey::read(node, Self::SHAPE)?,
            fallback: read::opt_bool(node, Self::SHAPE, "fallback")?.unwrap_or(false),
        }))
    }
}
