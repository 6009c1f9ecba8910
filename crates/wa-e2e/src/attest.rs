//! Device attestations: the phone signs each linked device's identity keys with its own
//! Ed25519 identity key, so that anyone who trusts the phone's key can trust the device's.

use vodozemac::{Ed25519PublicKey, Ed25519Signature};
use wa_binary::Jid;

use crate::error::SignatureError;
use crate::types::{IdentityKeys, Signature};

/// The domain separator every attestation message starts with.
pub const ATTESTATION_DOMAIN: &[u8] = b"wa-rs device attestation v1\0";

/// The message the phone signs to attest that `device` has `keys`:
///
/// ```text
/// b"wa-rs device attestation v1\0" ‖ device JID (its Display form, UTF-8) ‖ curve25519 ‖ ed25519
/// ```
///
/// The two keys have a fixed length at the end, so the JID between the prefix and them is
/// unambiguous. The domain separator keeps an attestation from ever being a valid signature of
/// anything else the phone's key signs.
///
/// ```
/// use wa_e2e::{IdentityKeys, Machine, device_attestation_message, verify_signature};
///
/// let phone = Machine::new("15551234567@c.us".parse().unwrap());
/// let web = Machine::new("15551234567:3@c.us".parse().unwrap());
/// let message = device_attestation_message(web.own_device(), &web.identity_keys());
/// let signature = phone.sign(&message);
/// assert!(verify_signature(&phone.identity_keys().ed25519, &message, &signature).is_ok());
/// ```
pub fn device_attestation_message(device: &Jid, keys: &IdentityKeys) -> Vec<u8> {
    let device = device.to_string();
    let mut message = Vec::with_capacity(ATTESTATION_DOMAIN.len() + device.len() + 64);
    message.extend_from_slice(ATTESTATION_DOMAIN);
    message.extend_from_slice(device.as_bytes());
    message.extend_from_slice(&keys.curve25519);
    message.extend_from_slice(&keys.ed25519);
    message
}

/// Verifies an Ed25519 `signature` of `message` by `ed25519` (strict verification: no
/// malleable or small-order signatures).
///
/// # Errors
/// [`SignatureError::BadKey`] when the key is not a valid point,
/// [`SignatureError::Malformed`] for a malformed signature, [`SignatureError::Invalid`] when it
/// does not verify.
pub fn verify_signature(
    ed25519: &[u8; 32],
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let key = Ed25519PublicKey::from_slice(ed25519).map_err(|e| SignatureError::BadKey {
        message: e.to_string(),
    })?;
    let signature =
        Ed25519Signature::from_slice(&signature.0).map_err(|e| SignatureError::Malformed {
            message: e.to_string(),
        })?;
    key.verify(message, &signature)
        .map_err(|e| SignatureError::Invalid {
            message: e.to_string(),
        })
}
