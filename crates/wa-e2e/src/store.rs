//! Persistence: state keys, the change set, the records and the pickle envelope.
//!
//! Every piece of state is one record under one [`StateKey`]. A record is serialized
//! (serde_json; the vodozemac parts are vodozemac's own pickle structs), prefixed with its state
//! key, and sealed:
//!
//! ```text
//! envelope  = 0x01 ‖ HMAC-SHA256(mac, iv ‖ ct) ‖ iv ‖ ct
//! ct        = AES-256-CBC(enc, iv, PKCS#7(plain))
//! plain     = len(state key) as u32 BE ‖ state key ‖ record JSON
//! iv        = HMAC-SHA256(siv, plain)[..16]
//! enc‖mac‖siv = HKDF-SHA256(salt = "", ikm = pickle key, info = "wa-e2e pickle v1", 96 bytes)
//! ```
//!
//! The IV is synthetic (derived from the plaintext), so sealing needs no randomness; equal
//! records seal to equal bytes, which reveals nothing else. The state key inside the MAC means a
//! pickle cannot be replayed under another key (say, one device's session as another's). The
//! sealing is wa-crypto's reviewed AES-CBC + HMAC code; the MAC is checked in constant time
//! before anything is decrypted.

use std::fmt;
use std::io::Write;

use serde::{Deserialize, Serialize};
use vodozemac::megolm::{GroupSessionPickle, InboundGroupSessionPickle};
use vodozemac::olm::{AccountPickle, SessionPickle};
use wa_binary::Jid;
use wa_crypto::SessionKeys;
use zeroize::{Zeroize, Zeroizing};

use crate::error::PickleError;
use crate::replay::ReplayWindow;
use crate::types::PickleKey;

/// The name of one persisted piece of state: `account`, `session/<device>/<session id>`,
/// `out/<group>`, `in/<group>/<sender>/<session id>` or `identity/<user>`.
///
/// Treat it as an opaque key for the caller's store (session ids are base64 and may contain
/// `/`); each record also names itself inside its encrypted bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey(String);

impl StateKey {
    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for StateKey {
    fn from(key: String) -> StateKey {
        StateKey(key)
    }
}

impl From<&str> for StateKey {
    fn from(key: &str) -> StateKey {
        StateKey(key.to_owned())
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What changed since the last [`take_changes`](crate::Machine::take_changes): sealed records
/// to write (insert or replace) and keys to delete. Write both in one transaction.
///
/// A deletion may name a key that was never written (state created and dropped between two
/// calls); deleting it is a no-op.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Records to insert or replace.
    pub upserts: Vec<(StateKey, Vec<u8>)>,
    /// Keys to delete.
    pub deletions: Vec<StateKey>,
}

impl Changes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletions.is_empty()
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes")
            .field(
                "upserts",
                &self
                    .upserts
                    .iter()
                    .map(|(key, bytes)| format!("{key} ({} bytes)", bytes.len()))
                    .collect::<Vec<_>>(),
            )
            .field("deletions", &self.deletions)
            .finish()
    }
}

/// One piece of state, as the machine tracks what changed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Item {
    Account,
    Session { device: Jid, id: String },
    Outbound { group: Jid },
    Inbound { group: Jid, sender: Jid, id: String },
    Identity { user: Jid },
}

impl Item {
    pub(crate) fn state_key(&self) -> StateKey {
        StateKey(match self {
            Item::Account => "account".to_owned(),
            Item::Session { device, id } => format!("session/{device}/{id}"),
            Item::Outbound { group } => format!("out/{group}"),
            Item::Inbound { group, sender, id } => format!("in/{group}/{sender}/{id}"),
            Item::Identity { user } => format!("identity/{user}"),
        })
    }
}

/// The persisted form of each piece of state. Externally tagged, so deserializing never buffers
/// the secret parts in an intermediate tree.
#[derive(Serialize, Deserialize)]
pub(crate) enum Record {
    Account {
        device: Jid,
        account: Box<AccountPickle>,
    },
    Session {
        device: Jid,
        curve25519: [u8; 32],
        ed25519: Option<[u8; 32]>,
        used: u64,
        session: Box<SessionPickle>,
    },
    Outbound {
        group: Jid,
        used: u64,
        shared_with: Vec<Jid>,
        session: GroupSessionPickle,
    },
    Inbound {
        group: Jid,
        sender: Jid,
        used: u64,
        window: ReplayWindow,
        session: InboundGroupSessionPickle,
    },
    Identity {
        user: Jid,
        ed25519: [u8; 32],
        used: u64,
    },
}

const ENVELOPE_VERSION: u8 = 1;
const HKDF_INFO: &[u8] = b"wa-e2e pickle v1";

/// The three keys derived from a pickle key. Wiped on drop.
struct EnvelopeKeys {
    sealing: SessionKeys,
    siv: Zeroizing<[u8; 32]>,
}

impl EnvelopeKeys {
    fn new(pickle_key: &PickleKey) -> EnvelopeKeys {
        let mut okm = Zeroizing::new([0u8; 96]);
        // 96 bytes is far below HKDF-SHA256's limit of 8160, so this cannot fail; should it
        // ever, the all-zero keys would only make every later `open` fail authentication.
        let _ = wa_crypto::hkdf_sha256(&[], pickle_key.as_bytes(), HKDF_INFO, &mut okm[..]);
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 32]);
        let mut siv = Zeroizing::new([0u8; 32]);
        let (e, rest) = okm.split_at(32);
        let (m, s) = rest.split_at(32);
        enc.copy_from_slice(e);
        mac.copy_from_slice(m);
        siv.copy_from_slice(s);
        EnvelopeKeys {
            sealing: SessionKeys::new(&enc, &mac),
            siv,
        }
    }
}

/// Counts the bytes serde_json writes, so that the real buffer is allocated once (no copies of
/// secrets left behind by reallocation).
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Seals records under one pickle key.
pub(crate) struct Sealer {
    keys: EnvelopeKeys,
}

impl Sealer {
    pub(crate) fn new(pickle_key: &PickleKey) -> Sealer {
        Sealer {
            keys: EnvelopeKeys::new(pickle_key),
        }
    }

    /// Seals `record` under `key`. Serializing our own records into memory cannot fail (no maps
    /// with non-string keys, no failing `Serialize` impls, no IO); `None` if it ever did.
    pub(crate) fn seal(&self, key: &StateKey, record: &Record) -> Option<Vec<u8>> {
        let name = key.as_str().as_bytes();
        let name_len = u32::try_from(name.len()).ok()?;
        let mut counter = Counter(0);
        serde_json::to_writer(&mut counter, record).ok()?;
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + name.len() + counter.0));
        plain.extend_from_slice(&name_len.to_be_bytes());
        plain.extend_from_slice(name);
        serde_json::to_writer(&mut *plain, record).ok()?;

        let mut tag = wa_crypto::hmac_sha256(&self.keys.siv[..], &plain);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(tag.get(..16)?);
        tag.zeroize();
        let mut out = Vec::with_capacity(1 + wa_crypto::sealed_len(plain.len()));
        out.push(ENVELOPE_VERSION);
        self.keys.sealing.seal_into(&plain, &iv, &mut out);
        Some(out)
    }

    /// Opens the envelope of `key` and returns the record.
    pub(crate) fn open(&self, key: &StateKey, bytes: &[u8]) -> Result<Record, PickleError> {
        let name = key.as_str();
        let (&version, sealed) = bytes.split_first().ok_or(PickleError::Version {
            key: name.to_owned(),
            version: None,
        })?;
        if version != ENVELOPE_VERSION {
            return Err(PickleError::Version {
                key: name.to_owned(),
                version: Some(version),
            });
        }
        let mut plain = Zeroizing::new(Vec::with_capacity(sealed.len()));
        self.keys
            .sealing
            .open_into(sealed, &mut plain)
            .map_err(|e| PickleError::Authentication {
                key: name.to_owned(),
                message: e.to_string(),
            })?;
        let malformed = |message: String| PickleError::Malformed {
            key: name.to_owned(),
            message,
        };
        let (len, rest) = plain
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("shorter than its state key length".into()))?;
        let (inner, json) = usize::try_from(u32::from_be_bytes(*len))
            .ok()
            .and_then(|len| rest.split_at_checked(len))
            .ok_or_else(|| malformed("shorter than its state key".into()))?;
        if inner != name.as_bytes() {
            // Authentic, but sealed under another state key: a swapped pickle.
            return Err(PickleError::Authentication {
                key: name.to_owned(),
                message: format!(
                    "sealed as {:?}, not {name:?}",
                    String::from_utf8_lossy(inner)
                ),
            });
        }
        serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))
    }
}
