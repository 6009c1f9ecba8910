//! Every bound the [`Machine`](crate::Machine) keeps on its state.
//!
//! Each map the machine holds is capped; when a cap is reached the least recently used entry is
//! evicted (and its pickle deleted at the next [`take_changes`](crate::Machine::take_changes)).
//! "Recently used" is a logical counter that the machine bumps on every operation, so eviction is
//! deterministic and needs no clock. Eviction scans the map for its oldest entry, which costs
//! O(n) only when the map is full.

/// One-time keys that may wait unpublished at once: vodozemac's
/// `Account::max_number_of_one_time_keys` (50). [`generate_one_time_keys`] creates no more than
/// this many unpublished keys in total.
///
/// [`generate_one_time_keys`]: crate::Machine::generate_one_time_keys
pub const MAX_UNPUBLISHED_ONE_TIME_KEYS: usize = 50;

/// Olm sessions kept per remote device, most recently used first. A device that re-establishes a
/// session (a new pre-key message) pushes its oldest session out. Decrypting tries each of them.
pub const MAX_SESSIONS_PER_DEVICE: usize = 5;

/// Remote devices with Olm sessions. Beyond this, the least recently used device loses all its
/// sessions (the next message to it needs a one-time key again).
pub const MAX_DEVICES: usize = 10_000;

/// Groups with an outbound Megolm session of ours. Beyond this, the least recently used group's
/// session is dropped, as by [`rotate_group`](crate::Machine::rotate_group).
pub const MAX_OUTBOUND_GROUPS: usize = 10_000;

/// Devices recorded as holding the key of one outbound group session. Devices past this are not
/// recorded, so the caller shares the key with them again (harmless, merely redundant).
pub const MAX_SHARED_DEVICES: usize = 4096;

/// Inbound Megolm sessions kept per (group, sender device): the current one and older ones, so
/// that late messages encrypted before a rotation still decrypt. Decrypting checks the message's
/// signature against each, most recently used first.
pub const MAX_INBOUND_PER_SENDER: usize = 16;

/// Inbound Megolm sessions in total, across all groups and senders.
pub const MAX_INBOUND_GROUP_SESSIONS: usize = 20_000;

/// Message indices remembered per inbound Megolm session for replay protection (a bitmap of 128
/// bytes). A message whose index lies this far or further below the highest index decrypted so
/// far is refused as [`TooOld`](crate::DecryptError::TooOld), and the session forgets the keys
/// below that window (forward secrecy for old messages).
pub const REPLAY_WINDOW: u32 = 1024;

/// Users whose phone identity key is remembered (trust on first use).
pub const MAX_IDENTITIES: usize = 100_000;
