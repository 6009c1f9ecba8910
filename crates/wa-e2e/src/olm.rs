//! Pairwise encryption: one Olm session per pair of devices.

use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{DecryptionError, OlmMessage, SessionConfig, SessionCreationError};
use wa_binary::Jid;
use zeroize::Zeroizing;

use crate::canonical_device;
use crate::error::{DecryptError, EncryptError};
use crate::machine::{DeviceEntry, Machine, OlmEntry};
use crate::store::Item;
use crate::types::{IdentityKeys, OlmCiphertext, OlmKind, b64};

impl Machine {
    /// Whether there is an Olm session with `device` (so [`encrypt`](Self::encrypt) needs no
    /// one-time key).
    pub fn has_session(&self, device: &Jid) -> bool {
        self.devices
            .get(&canonical_device(device))
            .is_some_and(|d| !d.sessions.is_empty())
    }

    /// Whether there is an Olm session with `device` made with these identity keys (a device
    /// whose keys changed needs a one-time key again: [`encrypt`](Self::encrypt) drops its old
    /// sessions).
    pub fn has_session_with(&self, device: &Jid, keys: &IdentityKeys) -> bool {
        self.devices
            .get(&canonical_device(device))
            .is_some_and(|d| {
                !d.sessions.is_empty()
                    && d.curve25519 == keys.curve25519
                    && d.ed25519.is_none_or(|ed| ed == keys.ed25519)
            })
    }

    /// Encrypts `plaintext` for `device`, whose identity keys are `keys`.
    ///
    /// Uses the device's most recently used session. When there is none, creates an outbound
    /// session from the device's Curve25519 identity key and `one_time_key` (a key claimed from
    /// the directory, or its fallback key). If `keys` differ from the keys the existing sessions
    /// were made with, the device has a new identity: the old sessions are dropped first (so a
    /// one-time key is needed again).
    ///
    /// The first messages of a new session are [`OlmKind::PreKey`] messages until the other side
    /// answers on it.
    ///
    /// # Errors
    /// [`EncryptError::NoSession`] without a session or one-time key,
    /// [`EncryptError::BadKey`] for a low-order key, [`EncryptError::OwnDevice`].
    pub fn encrypt(
        &mut self,
        device: &Jid,
        keys: &IdentityKeys,
        one_time_key: Option<&[u8; 32]>,
        plaintext: &[u8],
    ) -> Result<OlmCiphertext, EncryptError> {
        let device = canonical_device(device);
        if device == self.own {
            return Err(EncryptError::OwnDevice { device });
        }
        let tick = self.next_tick();

        let known = self.devices.get(&device).map(|entry| {
            let same_curve = entry.curve25519 == keys.curve25519;
            let same_ed = entry.ed25519.is_none_or(|ed| ed == keys.ed25519);
            (same_curve && same_ed, entry.ed25519.is_none())
        });
        match known {
            // A new identity: the old sessions are the old identity's.
            Some((false, _)) => self.forget_device(&device),
            Some((true, true)) => {
                // Learnt for sessions the other side started: persist it with them.
                if let Some(entry) = self.devices.get_mut(&device) {
                    entry.ed25519 = Some(keys.ed25519);
                    for s in &entry.sessions {
                        self.changed.insert(Item::Session {
                            device: device.clone(),
                            id: s.id.clone(),
                        });
                    }
                }
            }
            Some((true, false)) | None => {}
        }

        if !self.has_session(&device) {
            let one_time_key = one_time_key.ok_or_else(|| EncryptError::NoSession {
                device: device.clone(),
            })?;
            let session = self
                .account
                .create_outbound_session(
                    SessionConfig::version_1(),
                    Curve25519PublicKey::from_bytes(keys.curve25519),
                    Curve25519PublicKey::from_bytes(*one_time_key),
                )
                .map_err(|e| EncryptError::BadKey {
                    device: device.clone(),
                    message: e.to_string(),
                })?;
            let entry = self
                .devices
                .entry(device.clone())
                .or_insert_with(|| DeviceEntry {
                    curve25519: keys.curve25519,
                    ed25519: Some(keys.ed25519),
                    sessions: Vec::new(),
                });
            entry.sessions.insert(
                0,
                OlmEntry {
                    id: session.session_id(),
                    session,
                    used: tick,
                },
            );
            self.evict_devices(Some(&device));
        }

        let entry = self
            .devices
            .get_mut(&device)
            .and_then(|d| d.sessions.first_mut())
            .ok_or_else(|| EncryptError::NoSession {
                device: device.clone(),
            })?;
        let message = entry
            .session
            .encrypt(plaintext)
            .map_err(|e| EncryptError::BadKey {
                device: device.clone(),
                message: e.to_string(),
            })?;
        entry.used = tick;
        self.changed.insert(Item::Session {
            device,
            id: entry.id.clone(),
        });
        let (kind, body) = message.to_parts();
        Ok(OlmCiphertext {
            kind: if kind == 0 {
                OlmKind::PreKey
            } else {
                OlmKind::Normal
            },
            body,
        })
    }

    /// Decrypts an Olm message from `sender_device`, whose Curve25519 identity key is
    /// `sender_curve25519` (from the key directory or the device list).
    ///
    /// Tries the device's sessions (with that identity key), most recently used first. A
    /// pre-key message whose session we do not have creates it, using up the one-time key it
    /// names; if the device had sessions under another identity key, those are dropped (the
    /// message proves the sender holds the new key). The session that decrypted becomes the one
    /// [`encrypt`](Self::encrypt) uses.
    ///
    /// A pre-key message encrypted to our *fallback* key can be replayed after its session was
    /// evicted (the fallback key is not used up); callers that must rule that out de-duplicate
    /// message ids, as matrix-sdk-crypto does.
    ///
    /// # Errors
    /// [`DecryptError`]: malformed bytes, no session, tampering, a replay, a gap too large, an
    /// unknown one-time key, or a pre-key message whose identity key is not the sender's.
    pub fn decrypt(
        &mut self,
        sender_device: &Jid,
        sender_curve25519: &[u8; 32],
        ciphertext: &OlmCiphertext,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let sender = canonical_device(sender_device);
        if sender == self.own {
            return Err(DecryptError::NoSession { device: sender });
        }
        let what = match ciphertext.kind {
            OlmKind::PreKey => "Olm pre-key message",
            OlmKind::Normal => "Olm message",
        };
        let message =
            OlmMessage::from_parts(usize::from(ciphertext.kind.number()), &ciphertext.body)
                .map_err(|e| DecryptError::Malformed {
                    what,
                    message: e.to_string(),
                })?;
        if let OlmMessage::PreKey(pre) = &message {
            // The keys of a pre-key message are outside its MAC, and X25519 ignores the top bit
            // of a key (and reduces it mod p): a re-encoded key would give the same session
            // under another session id, i.e. a replay that the id check below cannot see.
            for (name, key) in [
                ("one-time key", pre.one_time_key()),
                ("base key", pre.base_key()),
                ("identity key", pre.identity_key()),
            ] {
                if !is_canonical(key.as_bytes()) {
                    return Err(DecryptError::Malformed {
                        what,
                        message: format!("non-canonical Curve25519 {name}"),
                    });
                }
            }
        }
        let tick = self.next_tick();

        // The sessions we may try: only those made with this identity key.
        let known = self
            .devices
            .get(&sender)
            .is_some_and(|d| d.curve25519 == *sender_curve25519);

        let pre_key_session = match &message {
            OlmMessage::PreKey(pre) => Some(pre.session_id()),
            OlmMessage::Normal(_) => None,
        };
        if let (Some(id), true) = (&pre_key_session, known)
            && let Some(entry) = self
                .devices
                .get_mut(&sender)
                .and_then(|d| d.sessions.iter_mut().find(|s| &s.id == id))
        {
            {
                let plain = entry
                    .session
                    .decrypt(&message)
                    .map_err(|e| olm_error(what, &sender, e))?;
                entry.used = tick;
                let id = entry.id.clone();
                self.touched_session(&sender, id);
                return Ok(Zeroizing::new(plain));
            }
        }

        if let OlmMessage::PreKey(pre) = &message {
            let created = self
                .account
                .create_inbound_session(
                    SessionConfig::version_1(),
                    Curve25519PublicKey::from_bytes(*sender_curve25519),
                    pre,
                )
                .map_err(|e| creation_error(what, &sender, e))?;
            let plain = Zeroizing::new(created.plaintext);
            self.changed.insert(Item::Account);
            if !known {
                self.forget_device(&sender);
            }
            let session = created.session;
            let id = session.session_id();
            let entry = self
                .devices
                .entry(sender.clone())
                .or_insert_with(|| DeviceEntry {
                    curve25519: *sender_curve25519,
                    ed25519: None,
                    sessions: Vec::new(),
                });
            entry.sessions.insert(
                0,
                OlmEntry {
                    id: id.clone(),
                    session,
                    used: tick,
                },
            );
            self.touched_session(&sender, id);
            self.evict_devices(Some(&sender));
            return Ok(plain);
        }

        // A normal message: try each session of this identity.
        let sessions = match self.devices.get_mut(&sender) {
            Some(d) if known && !d.sessions.is_empty() => &mut d.sessions,
            _ => return Err(DecryptError::NoSession { device: sender }),
        };
        let mut best: Option<(u8, DecryptError)> = None;
        for entry in sessions.iter_mut() {
            match entry.session.decrypt(&message) {
                Ok(plain) => {
                    let plain = Zeroizing::new(plain);
                    entry.used = tick;
                    let id = entry.id.clone();
                    self.touched_session(&sender, id);
                    return Ok(plain);
                }
                Err(e) => {
                    // A session that knows the message's chain says "replayed" or "too far";
                    // every other session only fails its MAC. Report the most specific.
                    let rank = match &e {
                        DecryptionError::MissingMessageKey(_) => 3,
                        DecryptionError::TooBigMessageGap(..) => 2,
                        _ => 1,
                    };
                    if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                        best = Some((rank, olm_error(what, &sender, e)));
                    }
                }
            }
        }
        Err(best.map_or(DecryptError::NoSession { device: sender }, |(_, e)| e))
    }

    /// Marks a session of `device` changed and moves it to the front (most recently used).
    fn touched_session(&mut self, device: &Jid, id: String) {
        if let Some(entry) = self.devices.get_mut(device) {
            entry.sessions.sort_by_key(|e| std::cmp::Reverse(e.used));
        }
        self.changed.insert(Item::Session {
            device: device.clone(),
            id,
        });
        self.trim_sessions(device);
    }
}

/// Whether `key` is the canonical encoding of a Curve25519 u-coordinate: below
/// p = 2^255 - 19, so in particular with the top bit clear.
fn is_canonical(key: &[u8; 32]) -> bool {
    // Little-endian: compare from the most significant byte down with p's bytes
    // (0x7f, 0xff × 30, 0xed).
    let p_top = 0x7fu8;
    let (low, rest) = key.split_at(1);
    let (middle, top) = rest.split_at(30);
    let top = top.first().copied().unwrap_or(0xff);
    let low = low.first().copied().unwrap_or(0xff);
    if top != p_top {
        return top < p_top;
    }
    if middle.iter().any(|&b| b != 0xff) {
        return true;
    }
    low < 0xed
}

fn olm_error(what: &'static str, sender: &Jid, e: DecryptionError) -> DecryptError {
    let sender = sender.clone();
    match e {
        DecryptionError::MissingMessageKey(index) => DecryptError::Replayed {
            what,
            sender,
            index,
        },
        DecryptionError::TooBigMessageGap(gap, max) => {
            DecryptError::TooFarAhead { sender, gap, max }
        }
        DecryptionError::NonContributoryKey => DecryptError::Malformed {
            what,
            message: e.to_string(),
        },
        DecryptionError::InvalidMAC(_)
        | DecryptionError::InvalidMACLength(..)
        | DecryptionError::InvalidPadding(_) => DecryptError::Tampered {
            what,
            sender,
            message: e.to_string(),
        },
    }
}

fn creation_error(what: &'static str, sender: &Jid, e: SessionCreationError) -> DecryptError {
    match e {
        SessionCreationError::MissingOneTimeKey(key) => DecryptError::UnknownOneTimeKey {
            sender: sender.clone(),
            key: key.to_base64(),
        },
        SessionCreationError::MismatchedIdentityKey(expected, got) => {
            DecryptError::SenderKeyMismatch {
                sender: sender.clone(),
                expected: b64(expected.as_bytes()),
                got: b64(got.as_bytes()),
            }
        }
        SessionCreationError::Decryption(e) => olm_error(what, sender, e),
        SessionCreationError::MismatchedSessionConfig { .. }
        | SessionCreationError::NonContributoryKey => DecryptError::Malformed {
            what,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::is_canonical;

    #[test]
    fn canonical_curve25519_encodings() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!is_canonical(&p));
        let mut below = p;
        below[0] = 0xec;
        assert!(is_canonical(&below));
        let mut above = p;
        above[0] = 0xee;
        assert!(!is_canonical(&above));
        let mut mid = p;
        mid[15] = 0xfe;
        assert!(is_canonical(&mid));
        assert!(is_canonical(&[0; 32]));
        let mut top = [0u8; 32];
        top[31] = 0x80;
        assert!(!is_canonical(&top));
        top[31] = 0x7e;
        assert!(is_canonical(&top));
    }
}
