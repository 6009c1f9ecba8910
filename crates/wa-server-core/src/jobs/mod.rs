//! The server's decisions that need the store, as jobs: each function checks a request against
//! the stored state, makes its writes, and returns what happened ([`Done`]) with the pushes it
//! causes ([`Effects`]). The connections turn outcomes into replies; the driver delivers the
//! effects through its hub.

pub(crate) mod accounts;
pub(crate) mod groups;
pub(crate) mod keys;
pub(crate) mod relay;

use wa_wire::Jid;
use wa_wire::json::GroupMetadata;
use wa_wire::keys::{Claimed, DeviceList};
use wa_wire::msg::Incoming;
use wa_wire::phone::{LinkedDevice, Ready};

use crate::action::{Push, Target};
use crate::job::Refusal;
use crate::model::{AccountRecord, DeviceRecord};

/// Who is acting: an account and one of its devices, from the login (never from the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Me {
    pub(crate) number: String,
    pub(crate) device: u8,
    /// The device's address.
    pub(crate) address: Jid,
    /// The user's address.
    pub(crate) user: Jid,
}

impl Me {
    pub(crate) fn new(number: &str, device: u8) -> Option<Me> {
        let user = wa_wire::ids::user_jid(number).ok()?;
        Some(Me {
            number: number.to_owned(),
            device,
            address: wa_wire::ids::device_jid(&user, device),
            user,
        })
    }
}

/// Where a reply goes: a web request's tag, or a phone request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    Tag(String),
    Id(u64),
}

/// Pushes a job causes, delivered after it is durable.
pub(crate) type Effects = Vec<(Target, Push)>;

/// The fresh tokens of a link or login, in clear (the store keeps their hashes).
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub(crate) struct Tokens {
    pub(crate) client: String,
    pub(crate) server: String,
    pub(crate) browser: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// What a web connection gets when it is linked or logged in.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) account: AccountRecord,
    pub(crate) device: DeviceRecord,
    pub(crate) tokens: Tokens,
    /// The `secret` of the key schedule, after a QR scan.
    pub(crate) secret: Option<String>,
    /// The ref that was scanned.
    pub(crate) r#ref: Option<String>,
}

/// Why a login failed.
#[derive(Debug)]
pub(crate) enum LoginRefused {
    /// A status for the login's tag.
    Status(u16),
    /// Tokens one rotation old: challenge the client to prove its keys (PROTOCOL.md §2.5).
    Challenge(Box<DeviceRecord>),
}

/// What a job did. Kept small (the outcome of every job is moved from the store's thread to
/// its connection's, and through the connection's match): what only a login or a link carries
/// is boxed (a [`Grant`] is most of a kilobyte).
#[derive(Debug)]
pub(crate) enum Done {
    /// A QR ref is stored: send `reply` under `tag`.
    RefStored {
        tag: String,
        reply: serde_json::Value,
        r#ref: String,
    },
    /// A login (or a challenge answer, `challenged`) was checked.
    Login {
        tag: String,
        result: Result<Box<Grant>, LoginRefused>,
        challenged: bool,
    },
    /// The link this connection's QR code was approved for is made (or not).
    Linked(Result<(Box<Grant>, Effects), Refusal>),
    /// The queue of a device that just came online.
    Queue(Vec<(u64, Incoming)>),
    /// A relay was checked and stored.
    Relay {
        reply_to: ReplyTo,
        result: Result<(u64, Effects), relay::RelayRefused>,
    },
    /// An `action set` (receipts, presence, groups, keys) or one phone request of those kinds.
    Set {
        reply_to: ReplyTo,
        result: Result<SetOk, Refusal>,
        effects: Effects,
    },
    /// Device lists.
    Devices {
        reply_to: ReplyTo,
        lists: Vec<DeviceList>,
    },
    /// Claimed pre-keys.
    PreKeys {
        reply_to: ReplyTo,
        claimed: Vec<Claimed>,
        effects: Effects,
    },
    /// A group's metadata.
    GroupMetadata {
        reply_to: ReplyTo,
        result: Result<Box<GroupMetadata>, Refusal>,
    },
    /// Whether a number has an account.
    Exists { reply_to: ReplyTo, exists: bool },
    /// Whether this account may see `jid`'s presence.
    Subscribe {
        reply_to: ReplyTo,
        jid: Jid,
        allowed: bool,
    },
    /// Media upload auth is stored.
    MediaAuth { reply_to: ReplyTo, auth: String },
    /// The device logged out (and is unlinked).
    LoggedOut { effects: Effects },
    /// A phone asked for a registration code.
    CodeIssued {
        id: u64,
        result: Result<(String, zeroize::Zeroizing<String>), Refusal>,
    },
    /// A phone proved its code: it is the account's phone now.
    Verified {
        id: u64,
        result: Result<(Ready, Effects), Refusal>,
    },
    /// A phone said hello: the account's identity, to check its signature against.
    Hello {
        id: u64,
        number: String,
        identity: Result<[u8; 32], Refusal>,
    },
    /// A phone approved a QR code.
    LinkApproved {
        id: u64,
        result: Result<(String, Effects), Refusal>,
    },
    /// The linked web clients.
    LinkedDevices { id: u64, devices: Vec<LinkedDevice> },
    /// A web client was unlinked by its phone.
    Unlinked {
        reply_to: ReplyTo,
        result: Result<Effects, Refusal>,
    },
    /// Expired messages, refs, codes and media auth are gone.
    /// Messages deleted; whether the sweep stopped with more to do.
    Swept {
        messages: u64,
        more: bool,
        effects: Effects,
    },
}

impl Done {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Done::RefStored { .. } => "ref",
            Done::Login { .. } => "login",
            Done::Linked(_) => "linked",
            Done::Queue(_) => "queue",
            Done::Relay { .. } => "relay",
            Done::Set { .. } => "set",
            Done::Devices { .. } => "devices",
            Done::PreKeys { .. } => "prekeys",
            Done::GroupMetadata { .. } => "group metadata",
            Done::Exists { .. } => "exists",
            Done::Subscribe { .. } => "subscribe",
            Done::MediaAuth { .. } => "media auth",
            Done::LoggedOut { .. } => "logged out",
            Done::CodeIssued { .. } => "code",
            Done::Verified { .. } => "verified",
            Done::Hello { .. } => "hello",
            Done::LinkApproved { .. } => "link approved",
            Done::LinkedDevices { .. } => "linked devices",
            Done::Unlinked { .. } => "unlinked",
            Done::Swept { .. } => "swept",
        }
    }
}

/// What an `action set` answers besides its status.
#[derive(Debug, Default)]
pub(crate) struct SetOk {
    /// A created group.
    pub(crate) gid: Option<Jid>,
    /// One-time keys held after an upload.
    pub(crate) key_count: Option<u32>,
}

/// SHA-256 of a token, hex: what the store keeps.
pub(crate) fn token_hash(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Whether `token` hashes to `hash`, in constant time.
pub(crate) fn token_matches(token: &str, hash: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !hash.is_empty() && bool::from(token_hash(token).as_bytes().ct_eq(hash.as_bytes()))
}

/// Whether `signature` is `ed25519`'s signature of `message`.
pub(crate) fn verify_signature(
    ed25519: &[u8; 32],
    message: &[u8],
    signature: &wa_wire::keys::Signature,
) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(ed25519) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
        .is_ok()
}

#[cfg(test)]
mod tests {
    /// Every job's outcome is moved several times on its way to its connection (out of the
    /// job, through the store's channel, into the connection's match): a variant that grows
    /// past this should box what it carries, as a login's grant is.
    #[test]
    fn an_outcome_stays_small() {
        assert!(
            std::mem::size_of::<super::Done>() <= 128,
            "Done is {} bytes",
            std::mem::size_of::<super::Done>()
        );
    }
}
