//! Group encryption: one outbound Megolm session per (own device, group), its key shared with
//! each member device over Olm; inbound sessions per (group, sender device).

use std::collections::BTreeSet;

use vodozemac::megolm::{
    DecryptionError, GroupSession, InboundGroupSession, MegolmMessage, SessionConfig, SessionKey,
    SessionOrdering,
};
use wa_binary::Jid;
use zeroize::{Zeroize, Zeroizing};

use crate::canonical_device;
use crate::error::{DecryptError, GroupKeyError};
use crate::limits::MAX_SHARED_DEVICES;
use crate::machine::{InboundEntry, Machine, OutboundEntry};
use crate::replay::{ReplayWindow, Verdict};
use crate::store::Item;
use crate::types::{GroupCiphertext, GroupKey};

const WHAT: &str = "group message";

impl Machine {
    /// Encrypts `plaintext` for `group` with this device's outbound session, creating it on
    /// first use (or after [`rotate_group`](Self::rotate_group)). A new session is shared with
    /// nobody: send [`group_key`](Self::group_key) over Olm to every member device not in
    /// [`shared_with`](Self::shared_with) before (or with) the ciphertext, then
    /// [`mark_shared`](Self::mark_shared).
    ///
    /// Like matrix-sdk-crypto, the session is also kept as an inbound session of our own, so
    /// our own group messages decrypt here too.
    pub fn group_encrypt(&mut self, group: &Jid, plaintext: &[u8]) -> GroupCiphertext {
        let tick = self.next_tick();
        self.changed.insert(Item::Outbound {
            group: group.clone(),
        });
        self.ensure_outbound(group, tick);
        match self.outbound.get_mut(group) {
            Some(entry) => {
                entry.used = tick;
                GroupCiphertext(entry.session.encrypt(plaintext).to_bytes())
            }
            // `ensure_outbound` just made it.
            None => GroupCiphertext(Vec::new()),
        }
    }

    /// The key of our outbound session for `group` at the index the next message will use,
    /// making the session first if there is none. Share it before sending the next
    /// [`group_encrypt`](Self::group_encrypt) ciphertext, and its holders read that message and
    /// the ones after it.
    pub fn group_key_or_new(&mut self, group: &Jid) -> GroupKey {
        let tick = self.next_tick();
        if !self.outbound.contains_key(group) {
            self.changed.insert(Item::Outbound {
                group: group.clone(),
            });
        }
        self.ensure_outbound(group, tick);
        self.group_key(group).unwrap_or_else(|| GroupKey {
            group: group.clone(),
            session_id: String::new(),
            key: Zeroizing::new(Vec::new()),
        })
    }

    fn ensure_outbound(&mut self, group: &Jid, tick: u64) {
        if self.outbound.contains_key(group) {
            return;
        }
        let session = GroupSession::new(SessionConfig::version_1());
        // Our own inbound copy starts at index 0, before the first message.
        let mut key = session.session_key();
        let own_copy = InboundGroupSession::new(&key, SessionConfig::version_1());
        key.zeroize();
        let own = self.own.clone();
        self.insert_inbound(group, &own, own_copy, tick);
        self.outbound.insert(
            group.clone(),
            OutboundEntry {
                session,
                shared_with: BTreeSet::new(),
                used: tick,
            },
        );
        self.evict_outbound(Some(group));
    }

    /// The key of our current outbound session for `group`, exported at its current message
    /// index (so it decrypts this and later messages, not earlier ones), or `None` before the
    /// first [`group_encrypt`](Self::group_encrypt).
    pub fn group_key(&self, group: &Jid) -> Option<GroupKey> {
        let entry = self.outbound.get(group)?;
        let mut key = entry.session.session_key();
        let bytes = Zeroizing::new(key.to_bytes());
        key.zeroize();
        Some(GroupKey {
            group: group.clone(),
            session_id: entry.session.session_id(),
            key: bytes,
        })
    }

    /// The devices recorded (by [`mark_shared`](Self::mark_shared)) as holding the key of our
    /// current outbound session for `group`. Empty when there is no session.
    pub fn shared_with(&self, group: &Jid) -> BTreeSet<Jid> {
        self.outbound
            .get(group)
            .map(|e| e.shared_with.clone())
            .unwrap_or_default()
    }

    /// Records that the current outbound session's key was sent to `devices`. Does nothing
    /// without a session; records at most [`MAX_SHARED_DEVICES`] devices per session.
    pub fn mark_shared(&mut self, group: &Jid, devices: impl IntoIterator<Item = Jid>) {
        let Some(entry) = self.outbound.get_mut(group) else {
            return;
        };
        for device in devices {
            if entry.shared_with.len() >= MAX_SHARED_DEVICES {
                break;
            }
            entry.shared_with.insert(canonical_device(&device));
        }
        self.changed.insert(Item::Outbound {
            group: group.clone(),
        });
    }

    /// Drops our outbound session for `group` (membership changed: a removed device must not
    /// read what follows). The next [`group_encrypt`](Self::group_encrypt) creates a new
    /// session, shared with nobody yet.
    pub fn rotate_group(&mut self, group: &Jid) {
        if self.outbound.remove(group).is_some() {
            self.changed.insert(Item::Outbound {
                group: group.clone(),
            });
        }
    }

    /// Adds the group session key `key` that `sender_device` sent us. Call it only for keys
    /// that arrived over an Olm session with `sender_device` (that is what authenticates them).
    ///
    /// A key for a session we already have replaces it only if it reaches further back (a lower
    /// first index) and is the same ratchet; the replay state is kept.
    ///
    /// # Errors
    /// [`GroupKeyError`]: not a signed session key, a session id that is not the key's, or a
    /// key that conflicts with the session of that id we have.
    pub fn add_group_key(
        &mut self,
        sender_device: &Jid,
        key: &GroupKey,
    ) -> Result<(), GroupKeyError> {
        let sender = canonical_device(sender_device);
        let mut session_key =
            SessionKey::from_bytes(&key.key).map_err(|e| GroupKeyError::Malformed {
                sender: sender.clone(),
                message: e.to_string(),
            })?;
        let mut session = InboundGroupSession::new(&session_key, SessionConfig::version_1());
        session_key.zeroize();
        let id = session.session_id();
        if id != key.session_id {
            return Err(GroupKeyError::SessionIdMismatch {
                sender,
                claimed: key.session_id.clone(),
                actual: id,
            });
        }
        let tick = self.next_tick();
        let slot = (key.group.clone(), sender.clone());
        if let Some(existing) = self
            .inbound
            .get_mut(&slot)
            .and_then(|list| list.iter_mut().find(|e| e.id == id))
        {
            match session.compare(&mut existing.session) {
                SessionOrdering::Better => {
                    existing.session = session;
                    existing.used = tick;
                    self.changed.insert(Item::Inbound {
                        group: slot.0,
                        sender: slot.1,
                        id,
                    });
                }
                SessionOrdering::Equal | SessionOrdering::Worse => {}
                SessionOrdering::Unconnected => {
                    return Err(GroupKeyError::Conflict {
                        sender,
                        session_id: id,
                    });
                }
            }
            return Ok(());
        }
        self.insert_inbound(&key.group, &sender, session, tick);
        Ok(())
    }

    fn insert_inbound(
        &mut self,
        group: &Jid,
        sender: &Jid,
        session: InboundGroupSession,
        tick: u64,
    ) {
        let slot = (group.clone(), sender.clone());
        let id = session.session_id();
        self.inbound.entry(slot.clone()).or_default().insert(
            0,
            InboundEntry {
                id: id.clone(),
                session,
                window: ReplayWindow::default(),
                used: tick,
            },
        );
        self.inbound_count += 1;
        self.changed.insert(Item::Inbound {
            group: group.clone(),
            sender: sender.clone(),
            id,
        });
        self.evict_inbound(Some(&slot));
    }

    /// Decrypts a group message from `sender_device` in `group`.
    ///
    /// The message does not name its session: each inbound session of this sender in this
    /// group is tried (an Ed25519 signature check each, at most
    /// [`MAX_INBOUND_PER_SENDER`](crate::limits::MAX_INBOUND_PER_SENDER)), most recently used
    /// first. A message index already decrypted in that session is refused as
    /// [`DecryptError::Replayed`].
    ///
    /// # Errors
    /// [`DecryptError`]: malformed bytes, [`UnknownGroupSession`](DecryptError::UnknownGroupSession)
    /// when no session of ours verifies the signature (e.g. we were removed before it was
    /// made), [`TooOld`](DecryptError::TooOld), [`Tampered`](DecryptError::Tampered),
    /// [`Replayed`](DecryptError::Replayed).
    pub fn group_decrypt(
        &mut self,
        group: &Jid,
        sender_device: &Jid,
        ciphertext: &GroupCiphertext,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let sender = canonical_device(sender_device);
        let message =
            MegolmMessage::from_bytes(&ciphertext.0).map_err(|e| DecryptError::Malformed {
                what: WHAT,
                message: e.to_string(),
            })?;
        let tick = self.next_tick();
        let slot = (group.clone(), sender.clone());
        let unknown = || DecryptError::UnknownGroupSession {
            group: group.clone(),
            sender: sender.clone(),
        };
        let list = self.inbound.get_mut(&slot).ok_or_else(unknown)?;
        let mut found = None;
        for (pos, entry) in list.iter_mut().enumerate() {
            match entry.session.decrypt(&message) {
                // Signed by another session's key: not this one.
                Err(DecryptionError::Signature(_)) => continue,
                Err(DecryptionError::UnknownMessageIndex(first, index)) => {
                    return Err(DecryptError::TooOld {
                        sender: sender.clone(),
                        first,
                        index,
                    });
                }
                Err(e) => {
                    return Err(DecryptError::Tampered {
                        what: WHAT,
                        sender: sender.clone(),
                        message: e.to_string(),
                    });
                }
                Ok(decrypted) => {
                    let plain = Zeroizing::new(decrypted.plaintext);
                    let index = decrypted.message_index;
                    match entry.window.check(index) {
                        Verdict::Fresh => {}
                        Verdict::Replayed => {
                            return Err(DecryptError::Replayed {
                                what: WHAT,
                                sender: sender.clone(),
                                index: u64::from(index),
                            });
                        }
                        Verdict::TooOld { first } => {
                            return Err(DecryptError::TooOld {
                                sender: sender.clone(),
                                first,
                                index,
                            });
                        }
                    }
                    entry.window.mark(index);
                    // Forget the keys below the window: they could only be replays now.
                    entry.session.advance_to(entry.window.floor());
                    entry.used = tick;
                    found = Some((pos, entry.id.clone(), plain));
                    break;
                }
            }
        }
        let (pos, id, plain) = found.ok_or_else(unknown)?;
        if pos != 0 {
            list.sort_by_key(|e| std::cmp::Reverse(e.used));
        }
        self.changed.insert(Item::Inbound {
            group: slot.0,
            sender: slot.1,
            id,
        });
        Ok(plain)
    }
}
