//! Error types. vodozemac's errors are kept as their message text (their types are not part of
//! this crate's API), together with what was being done and for whom.

use wa_binary::Jid;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// There is no session with the device and no one-time key was given to create one: claim
    /// one from the key directory and call again.
    #[error("no Olm session with {device} and no one-time key to create one")]
    NoSession {
        /// The device.
        device: Jid,
    },
    /// A key of the device is unusable (a low-order Curve25519 point, so the key agreement
    /// would not depend on our secret).
    #[error("bad key for {device}: {message}")]
    BadKey {
        /// The device.
        device: Jid,
        /// vodozemac's explanation.
        message: String,
    },
    /// The device is this machine's own device: a device needs no session with itself.
    #[error("{device} is this machine's own device")]
    OwnDevice {
        /// The device.
        device: Jid,
    },
}

/// Why a message could not be decrypted. No variant carries any plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The bytes are not a message of the expected kind.
    #[error("malformed {what}: {message}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's explanation.
        message: String,
    },
    /// No session with this device (with this identity key) exists, and the message is not a
    /// pre-key message that could create one.
    #[error("no Olm session with {device} for this message")]
    NoSession {
        /// The sender device.
        device: Jid,
    },
    /// The message failed authentication (MAC, padding): it was altered, or was not made by
    /// any session we have with the sender.
    #[error("{what} from {sender} failed authentication: {message}")]
    Tampered {
        /// What was being decrypted.
        what: &'static str,
        /// The sender device.
        sender: Jid,
        /// vodozemac's explanation.
        message: String,
    },
    /// The message was already decrypted (a replay). For Olm this is also what a message whose
    /// key was discarded looks like (more than 40 messages of its chain were skipped).
    #[error("{what} from {sender} with index {index} was already decrypted (replay)")]
    Replayed {
        /// What was being decrypted.
        what: &'static str,
        /// The sender device.
        sender: Jid,
        /// The message (chain) index.
        index: u64,
    },
    /// The Olm message skips more messages than a session will derive keys for.
    #[error("Olm message from {sender} skips {gap} messages (at most {max})")]
    TooFarAhead {
        /// The sender device.
        sender: Jid,
        /// The gap.
        gap: u64,
        /// The limit.
        max: u64,
    },
    /// The pre-key message uses a one-time key we do not have: it was already used (a replay of
    /// a pre-key message), never ours, or evicted.
    #[error("pre-key message from {sender} uses an unknown one-time key {key}")]
    UnknownOneTimeKey {
        /// The sender device.
        sender: Jid,
        /// The one-time key, base64.
        key: String,
    },
    /// The pre-key message's identity key is not the Curve25519 key given for the sender.
    #[error("pre-key message from {sender} has identity key {got}, expected {expected}")]
    SenderKeyMismatch {
        /// The sender device.
        sender: Jid,
        /// The key given to `decrypt`, base64.
        expected: String,
        /// The key in the message, base64.
        got: String,
    },
    /// No inbound group session of this sender in this group verifies the message's signature:
    /// its key was never shared with us (e.g. we were removed), or it was evicted.
    #[error("no group session from {sender} in {group} matches this message")]
    UnknownGroupSession {
        /// The group.
        group: Jid,
        /// The sender device.
        sender: Jid,
    },
    /// The group message's index is below what the session can (still) decrypt: before the
    /// index at which the key was shared with us, or below the replay window.
    #[error(
        "group message index {index} from {sender} is before the first decryptable index {first}"
    )]
    TooOld {
        /// The sender device.
        sender: Jid,
        /// The first index still decryptable.
        first: u32,
        /// The message's index.
        index: u32,
    },
}

/// Why a group key could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupKeyError {
    /// The key bytes are not a signed Megolm session key.
    #[error("malformed group key from {sender}: {message}")]
    Malformed {
        /// The sender device.
        sender: Jid,
        /// vodozemac's explanation.
        message: String,
    },
    /// The key's session id is not the id it claims.
    #[error("group key from {sender} claims session {claimed} but is session {actual}")]
    SessionIdMismatch {
        /// The sender device.
        sender: Jid,
        /// The id in the [`GroupKey`](crate::GroupKey).
        claimed: String,
        /// The id of the key.
        actual: String,
    },
    /// A session with this id exists but the new key is not the same ratchet.
    #[error("group key from {sender} for session {session_id} conflicts with the one we have")]
    Conflict {
        /// The sender device.
        sender: Jid,
        /// The session id.
        session_id: String,
    },
}

/// Why pickled state could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The envelope's version byte is unknown (or the bytes are empty).
    #[error("pickle {key}: unknown envelope version {version:?}")]
    Version {
        /// The state key.
        key: String,
        /// The first byte, if any.
        version: Option<u8>,
    },
    /// The pickle failed authentication: wrong pickle key, corrupted bytes, or bytes pickled
    /// under another state key.
    #[error("pickle {key} failed authentication (wrong pickle key or corrupted): {message}")]
    Authentication {
        /// The state key.
        key: String,
        /// What failed.
        message: String,
    },
    /// The pickle decrypted but its content is not a record of this crate.
    #[error("pickle {key} is malformed: {message}")]
    Malformed {
        /// The state key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The same state key was given twice.
    #[error("pickle {key} given twice")]
    Duplicate {
        /// The state key.
        key: String,
    },
    /// No `account` pickle was given.
    #[error("no account pickle")]
    MissingAccount,
    /// The account pickle belongs to another device.
    #[error("the account pickle is {found}'s, not {expected}'s")]
    WrongDevice {
        /// The device restored.
        expected: Jid,
        /// The device in the pickle.
        found: Jid,
    },
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The Ed25519 public key is not a valid point.
    #[error("bad ed25519 key: {message}")]
    BadKey {
        /// vodozemac's explanation.
        message: String,
    },
    /// The signature is not a well-formed Ed25519 signature.
    #[error("malformed signature: {message}")]
    Malformed {
        /// vodozemac's explanation.
        message: String,
    },
    /// The signature is not the key's signature of the message.
    #[error("signature does not verify: {message}")]
    Invalid {
        /// vodozemac's explanation.
        message: String,
    },
}
