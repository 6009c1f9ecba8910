//! Device attestations: the phone signs each linked device's identity keys with its own
//! Ed25519 identity key, so that anyone who trusts the phone's key can trust the device's.

use vodozemac::{Ed25519PublicKey, Ed25519Signature};

use crate::error::SignatureError;
use crate::types::Signature;

pub use wa_wire::keys::{ATTESTATION_DOMAIN, attestation_message as device_attestation_message};

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
