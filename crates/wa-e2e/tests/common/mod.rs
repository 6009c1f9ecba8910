//! Helpers shared by the integration tests: JIDs, session set-up, and a toy transport for group
//! keys over Olm (the real wire format is the caller's).

#![allow(dead_code, unreachable_pub)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use wa_binary::Jid;
use wa_e2e::{GroupKey, Machine, OlmCiphertext};
use zeroize::Zeroizing;

pub fn jid(text: &str) -> Jid {
    text.parse().unwrap()
}

pub const ALICE: &str = "15551234567@c.us";
pub const BOB: &str = "447700900123:3@c.us";
pub const GROUP: &str = "15551234567-1600000000@g.us";

/// `from` sends `plaintext` to `to`, claiming a one-time key from `to` when there is no session.
pub fn send(from: &mut Machine, to: &mut Machine, plaintext: &[u8]) -> OlmCiphertext {
    let to_jid = to.own_device().clone();
    let otk = if from.has_session(&to_jid) {
        None
    } else {
        let key = to
            .generate_one_time_keys(1)
            .pop()
            .expect("a one-time key")
            .key;
        to.mark_keys_as_published();
        Some(key)
    };
    from.encrypt(&to_jid, &to.identity_keys(), otk.as_ref(), plaintext)
        .unwrap()
}

/// `to` decrypts a message from `from`.
pub fn receive(to: &mut Machine, from: &Machine, ct: &OlmCiphertext) -> Zeroizing<Vec<u8>> {
    to.decrypt(from.own_device(), &from.identity_keys().curve25519, ct)
        .unwrap()
}

/// Sends and decrypts, checking the plaintext arrives intact.
pub fn roundtrip(from: &mut Machine, to: &mut Machine, plaintext: &[u8]) {
    let ct = send(from, to, plaintext);
    assert_eq!(&receive(to, from, &ct)[..], plaintext);
}

/// A toy encoding of a group key inside an Olm plaintext: `len(group) ‖ group ‖ len(id) ‖ id ‖
/// key`.
pub fn encode_group_key(key: &GroupKey) -> Vec<u8> {
    let group = key.group.to_string();
    let mut out = vec![group.len() as u8];
    out.extend_from_slice(group.as_bytes());
    out.push(key.session_id.len() as u8);
    out.extend_from_slice(key.session_id.as_bytes());
    out.extend_from_slice(&key.key);
    out
}

pub fn decode_group_key(bytes: &[u8]) -> GroupKey {
    let (glen, rest) = bytes.split_first().unwrap();
    let (group, rest) = rest.split_at(*glen as usize);
    let (ilen, rest) = rest.split_first().unwrap();
    let (id, key) = rest.split_at(*ilen as usize);
    GroupKey {
        group: jid(std::str::from_utf8(group).unwrap()),
        session_id: String::from_utf8(id.to_vec()).unwrap(),
        key: Zeroizing::new(key.to_vec()),
    }
}

/// `sender` shares its current key for `group` with each of `receivers` over Olm and records
/// it as shared.
pub fn share_group_key(sender: &mut Machine, group: &Jid, receivers: &mut [&mut Machine]) {
    let key = sender.group_key(group).expect("an outbound session");
    let payload = encode_group_key(&key);
    let mut shared = Vec::new();
    for receiver in receivers.iter_mut() {
        let ct = send(sender, receiver, &payload);
        let plain = receive(receiver, sender, &ct);
        let key = decode_group_key(&plain);
        receiver.add_group_key(sender.own_device(), &key).unwrap();
        shared.push(receiver.own_device().clone());
    }
    sender.mark_shared(group, shared);
}
